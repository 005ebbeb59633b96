"""Row accounting of source files: how many rows an engine read and why it left some out.

Both engines read source files through `astra.io.load_source`, which records a
`SourceRows` per source inside `counting_rows()`; `astra parity` prints both engines' counts, so a
silently dropped row shows up as a number.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import attrs
import polars as pl

from astra.plan import ir


@attrs.define
class SourceRows:
    """How many rows of a source file an engine read, and why it left some out.

    `null_time` rows are invisible to every entity; `null_key[entity]` counts the rows with a
    time whose key for that entity is null (invisible to it alone).  `skipped` rows are visible
    to no entity the engine reads: a null time, or a null in every such entity's key."""

    source: str
    rows: int = 0
    null_time: int = 0
    null_key: dict[str, int] = attrs.field(factory=dict)
    skipped: int = 0

    def used(self, entity: str) -> int:
        """Rows visible to `entity` (a time and a complete key)."""
        return self.rows - self.null_time - self.null_key.get(entity, 0)


_COUNTS: contextvars.ContextVar[dict[str, SourceRows] | None] = contextvars.ContextVar("source_rows", default=None)


@contextlib.contextmanager
def counting_rows() -> Iterator[dict[str, SourceRows]]:
    """Within the block, `load_source` records a `SourceRows` per source it reads (by name)."""
    counts: dict[str, SourceRows] = {}
    token = _COUNTS.set(counts)
    try:
        yield counts
    finally:
        _COUNTS.reset(token)


def recording() -> dict[str, SourceRows] | None:
    """Where `load_source` records its counts: the innermost `counting_rows()` dict, else None."""
    return _COUNTS.get()


def source_entities(source: ir.Source, key_columns: set[str]) -> list[tuple[str, ir.SourceKey]]:
    """The (entity, key) pairs of a source whose key columns are all in `key_columns`."""
    return [(e, k) for e, k in zip(source.entities, source.keys) if set(k.columns) <= key_columns]


def count_rows(source: ir.Source, frame: pl.DataFrame, entities: list[tuple[str, ir.SourceKey]]) -> SourceRows:
    """What a read of `frame` keeps: rows, null times, null keys per entity, and rows visible to
    none of `entities` (a null time, or a null in each entity's key)."""
    has_time = pl.col(source.time).is_not_null()
    null_key = [pl.any_horizontal(pl.col(c).is_null() for c in k.columns) for _, k in entities]
    exprs = [has_time.not_().sum().alias("null_time"),
             (~has_time | (pl.all_horizontal(null_key) if null_key else pl.lit(False))).sum().alias("skipped")]
    exprs += [(has_time & nk).sum().alias(f"key:{e}") for (e, _), nk in zip(entities, null_key)]
    got = frame.select(exprs).row(0, named=True)
    return SourceRows(source.name, frame.height, got["null_time"], {e: got[f"key:{e}"] for e, _ in entities},
                      got["skipped"])
