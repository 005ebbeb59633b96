"""The one exception the offline engine raises for bad inputs: `astra.errors.DataError`, under
the name backfill users know (the table reader in `astra.io` raises the same class)."""

from __future__ import annotations

from astra.errors import DataError as BackfillError

__all__ = ["BackfillError"]
