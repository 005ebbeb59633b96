"""Errors of the vector index: bad input or configuration, and a memory limit reached."""

from __future__ import annotations

from astra.errors import DataError


class VectorError(DataError, ValueError):
    """Bad vectors, keys, times, filters or index settings; the message says what and where."""


class VectorMemoryError(VectorError):
    """A change would take the index over its configured memory limit (the index is left unchanged)."""
