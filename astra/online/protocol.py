"""What a server needs of an online store, whichever holds the rows.

Two implementations: the embedded `astra.online.store.Store` (rows in this process's memory) and
`astra.online.redis_store.RedisStore` (rows in a Redis shared by every replica).  Both answer a
`lookup` (a typed `astra.online.lookup.Lookup`) with the same compiled plans over the same rows, so
they return the same values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import polars as pl

from astra.online.lookup import Lookup
from astra.online.result import Result
from astra.row_counts import SourceRows


@runtime_checkable
class OnlineStore(Protocol):
    allowed_lateness: int
    max_future: int | None
    horizon_lag: int

    def push(self, source: str, rows: list[dict] | pl.DataFrame, on_late: str = "raise"):
        """Store rows of a source (`astra.online.store.PushReport`); too-late rows raise or are reported."""

    def lookup(self, query: Lookup) -> Result:
        """Feature values of a checked, typed query: the service as the plan's IR object, one key
        tuple per entity (see `Store.lookup`).  What a server calls."""

    def get(self, service: str, entities: list[dict], at=None, request=None, validity: bool = False) -> Result:
        """`lookup` from a service name and entity dicts (see `Store.get`), for Python callers."""

    @property
    def horizon(self) -> int | None:
        """The earliest query time answered exactly (None: nothing evicted yet)."""

    @property
    def watermark(self) -> dict[str, int]:
        """Per source, the latest event time stored."""

    def materialize(self, data_root: str | Path, until: int | None = None) -> dict[str, SourceRows]:
        """Bootstrap every source from its offline file."""

    def nbytes(self) -> int:
        """Bytes the store holds (for stats)."""

    def close(self) -> None:
        """Release connections (a no-op for the embedded store)."""
