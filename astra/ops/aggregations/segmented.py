"""Aggregations whose one numpy kernel reads a window's values as `Segments`, in both engines.

A `SegmentAggregation` declares `kernel(segments, param)` once; its offline kernel asks the
offline `Window.segments` for the segments, its online kernel `WindowView.segments`, and the
single-entity plan runs the online kernel on a one-query view (`Aggregation.online_one`), so the
three cannot drift apart: only the way the answer is handed back differs (a Polars Series in
sorted-query order offline, a `Vec` online).  The kernel returns a `Vec` for scalar results
(null where not valid) or `Segments` for list results (each query's list as its run of values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from astra.lang.types import FLOAT64
from astra.ops.aggregations.base import Aggregation, _need
from astra.ops.registry import LazyModule, TypeRuleError, Vec
from astra.ops.segments import Segments, offsets_of

if TYPE_CHECKING:
    import polars as pl

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time


class SegmentAggregation(Aggregation):
    """Base: subclasses implement `kernel`; `reads_times` asks the engines for row and query times."""

    reads_times: bool = False
    online_mergeable = False  # lifetime windows: the store keeps every row (online/layout.py)

    def kernel(self, seg: Segments, param) -> Vec | Segments:
        raise NotImplementedError

    def offline_window(self, w, column, param) -> pl.Series:
        return to_series(self.kernel(w.segments(column, times=self.reads_times), param))

    def online(self, w, out, param) -> Vec:
        return to_vec(self.kernel(w.segments(times=self.reads_times), param))


def to_series(got: Vec | Segments) -> pl.Series:
    """A kernel's answer as a Polars Series (nulls where not valid; lists from runs), no Python
    loop over queries: a list per query is grouped from its values plus one null per query
    (dropped), so that queries without values get an empty list."""
    import polars as pl

    if isinstance(got, Vec):
        values = pl.Series(got.values)
        return pl.select(pl.when(pl.Series(got.valid)).then(values)).to_series()
    n = got.n
    values = got.values
    dtype = pl.String if values.dtype.kind in "OT" else None
    flat = pl.Series("v", values if dtype is None else values.astype(object), dtype=dtype)
    pad = pl.Series("v", [None] * n, dtype=flat.dtype)
    frame = pl.DataFrame({"q": np.concatenate([got.query_ids(), np.arange(n, dtype=np.int64)]),
                          "v": pl.concat([flat, pad])})
    return frame.group_by("q").agg(pl.col("v").drop_nulls()).sort("q")["v"]


def to_vec(got: Vec | Segments) -> Vec:
    """A kernel's answer as an online `Vec` (lists: a tuple of Python values per query)."""
    if isinstance(got, Vec):
        return got
    values = got.values.tolist()
    bounds = got.offsets.tolist()
    out = np.empty(got.n, object)
    for j in range(got.n):  # Python tuples are built per query (as last_k does)
        out[j] = tuple(values[bounds[j]:bounds[j + 1]])
    return Vec(out, np.ones(got.n, bool))


def take_first(seg: Segments, k: int) -> Segments:
    """The first k values of each query's run (all when it has fewer)."""
    lengths = seg.lengths()
    rank = np.arange(len(seg.values), dtype=np.int64) - np.repeat(seg.starts(), lengths)
    return Segments(values=seg.values[rank < k], offsets=offsets_of(np.minimum(lengths, k)))


def as_floats(seg: Segments) -> np.ndarray:
    """The values as float64 (integers rounded to the nearest float64, booleans 0/1)."""
    return np.asarray(seg.values).astype(np.float64)


def quantile_type(name: str, column, param):
    """The type rule of a quantile of a numeric column at a fraction q in [0, 1] (`percentile`,
    `approx_percentile`): float64?, null when no value is visible."""
    _need(column, column.is_numeric, name, "a numeric column")
    if not isinstance(param, float) or not 0.0 <= param <= 1.0:
        raise TypeRuleError(f"`{name}` needs a fraction q in [0, 1], e.g. `{name}(src.col, 0.9, 7d)`", arg=1)
    return FLOAT64.nullable()
