"""mode: the most frequent non-null value of a window, one numpy kernel over `Segments` that both
engines call.

Ties between equally frequent values go to the smallest of them, in the language's order (numbers
by value, strings by code point, false before true), as scipy.stats.mode and pandas' mode do;
null when the window has no value.  Floats are refused: they have no exact identity (as in
count_distinct), so "the same value twice" would depend on rounding.
"""

from __future__ import annotations

from collections import Counter

from astra.ops.aggregations.algebra import Mode as ModeState
from astra.ops.aggregations.base import _need, _present
from astra.ops.aggregations.segmented import SegmentAggregation
from astra.ops.registry import LazyModule, Vec
from astra.ops.segments import Segments

np = LazyModule("numpy", "np", globals())


def _modes(seg: Segments) -> Vec:
    """Each query's mode: its values grouped by (query, value rank), then per query the run with
    the largest count, the smallest value among equal counts."""
    strings = seg.values.dtype.kind in "OT"
    values = seg.values.astype(object) if strings else seg.values  # np.unique sorts str objects
    valid = seg.lengths() > 0
    # the answer keeps the engine's string dtype (StringDType online, object offline)
    out = np.full(seg.n, "", seg.values.dtype) if strings else np.zeros(seg.n, values.dtype)
    if not len(values):
        return Vec(out, valid)
    distinct, rank = np.unique(values, return_inverse=True)  # ranks ascend with the values
    rank = rank.astype(np.int64).reshape(-1)
    q = seg.query_ids()
    order = np.lexsort((rank, q))
    qs, rs = q[order], rank[order]
    new = np.ones(len(qs), bool)
    new[1:] = (qs[1:] != qs[:-1]) | (rs[1:] != rs[:-1])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(qs)))
    run_q, run_r = qs[starts], rs[starts]
    best = np.lexsort((run_r, -counts, run_q))  # per query: most frequent first, then smallest
    first = np.ones(len(best), bool)
    first[1:] = run_q[best][1:] != run_q[best][:-1]
    pick = best[first]
    out[run_q[pick]] = distinct[run_r[pick]]
    return Vec(out, valid)


class Mode(SegmentAggregation):
    name = "mode"
    algebra = ModeState()
    doc = "the most frequent non-null value (ties: the smallest of them); null when there are none"

    def infer(self, column, param):
        _need(column, column.is_integer or column.name in ("string", "bool"), self.name,
              "a column of integers, strings or booleans (floats have no exact identity)")
        return column.nullable()

    def reference(self, values, param):
        counts = Counter(_present(values))
        if not counts:
            return None
        top = max(counts.values())
        return min(v for v, c in counts.items() if c == top)

    def kernel(self, seg, param):
        return _modes(seg)
