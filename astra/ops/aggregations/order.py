"""Order aggregations over a window's values: first_k, top_k, bottom_k, median and percentile.

Each has one numpy kernel over `Segments` (astra.ops.segments) that both engines call.  Order is
the language's: numbers by value with NaN above every number (as Polars and numpy sort it),
strings by code point, times and booleans as their integers (docs/semantics.md).
"""

from __future__ import annotations

import math

from astra.lang.types import FLOAT64, Type
from astra.ops.aggregations.algebra import Buffer, Quantile
from astra.ops.aggregations.base import _need, _present
from astra.ops.aggregations.segmented import SegmentAggregation, as_floats, quantile_type, take_first
from astra.ops.registry import LazyModule, TypeRuleError, Vec
from astra.ops.segments import Segments

np = LazyModule("numpy", "np", globals())


def _k(name: str, param) -> None:
    if param is None or isinstance(param, bool) or not isinstance(param, int) or param < 1:
        raise TypeRuleError(f"`{name}` needs a positive integer k, e.g. `{name}(src.col, 5, 7d)`", arg=1)


class FirstK(SegmentAggregation):
    name, takes_param = "first_k", True
    algebra = Buffer("earliest")
    doc = "the k earliest non-null values, oldest first (ties: source order); an empty list when none"

    def infer(self, column, param):
        _need(column, column.name not in ("list", "vector"), self.name, "a scalar column")
        _k(self.name, param)
        return Type.list_of(column.non_null())

    def reference(self, values, param):
        return tuple(_present(values)[:param])

    def kernel(self, seg, param):
        return take_first(seg, param)


def _order_key(v):
    """Ascending order with NaN above every number; equal values keep their row order (stable)."""
    return (1, 0.0) if isinstance(v, float) and math.isnan(v) else (0, v)


class _Ranked(SegmentAggregation):
    largest = True

    def infer(self, column, param):
        _need(column, column.name not in ("list", "vector") and column.is_orderable, self.name,
              "an ordered column (number, string, time, bool)")
        _k(self.name, param)
        return Type.list_of(column.non_null())

    def reference(self, values, param):
        # sorted() is stable also with reverse=True: equal values keep their row order
        return tuple(sorted(_present(values), key=_order_key, reverse=self.largest)[:param])

    def kernel(self, seg, param):
        values = seg.values
        if values.dtype.kind in "OT":  # strings: Python's code-point order
            values = values.astype(object)
        if not len(values):
            return take_first(seg, param)
        # ranks of the values (equal values, 0.0 and -0.0 among them, share one; NaN ranks last),
        # then a stable sort by (query, rank): ties stay in row order
        _, rank = np.unique(values, return_inverse=True)
        rank = rank.astype(np.int64).reshape(-1)
        order = np.lexsort((np.arange(len(values)), -rank if self.largest else rank, seg.query_ids()))
        return take_first(Segments(values=seg.values[order], offsets=seg.offsets), param)


class TopK(_Ranked):
    name, takes_param, largest = "top_k", True, True
    algebra = Buffer("largest")
    doc = "the k largest non-null values, largest first (NaN above every number; ties: source order)"


class BottomK(_Ranked):
    name, takes_param, largest = "bottom_k", True, False
    algebra = Buffer("smallest")
    doc = "the k smallest non-null values, smallest first (NaN above every number; ties: source order)"


def interpolate(a: float, b: float, g: float) -> float:
    """The value a fraction g of the way from order statistic a to b (a <= b): a itself when g
    is 0 or a == b, else (1 - g) a + g b, which keeps an infinite end infinite (-inf and +inf:
    NaN).  The reference; `_percentiles` is its vectorised twin."""
    if g == 0.0 or a == b:
        return a
    return (1.0 - g) * a + g * b


def _percentiles(seg: Segments, q: float) -> Vec:
    """Each query's q-quantile, linear between the order statistics at h = (n - 1) q (float64)."""
    x = as_floats(seg)
    n = seg.lengths()
    ok = n > 0
    if not len(x):
        return Vec(np.zeros(seg.n), ok)
    xs = x[np.lexsort((x, seg.query_ids()))]  # by query, then value; NaN last in each query
    start = seg.starts()
    last = np.where(ok, start + n - 1, 0)
    h = np.maximum(n - 1, 0) * q
    i = np.floor(h)
    g = h - i
    lo = np.where(ok, start + i.astype(np.int64), 0)
    a, b = xs[lo], xs[np.minimum(lo + 1, last)]
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.where((g == 0.0) | (a == b), a, (1.0 - g) * a + g * b)
    out[ok & np.isnan(xs[last])] = np.nan  # a NaN in the window
    return Vec(out, ok)


def _reference_percentile(values, q: float) -> float | None:
    xs = [float(v) for v in _present(values)]
    if not xs:
        return None
    if any(math.isnan(v) for v in xs):
        return math.nan
    xs.sort()
    h = (len(xs) - 1) * q
    i = math.floor(h)
    return interpolate(xs[i], xs[min(i + 1, len(xs) - 1)], h - i)


class Percentile(SegmentAggregation):
    name, takes_param = "percentile", True
    algebra = Quantile()
    param_kind, param_label = "fraction", "q"
    doc = "the q-quantile (q in [0, 1]) of non-null values, linear between order statistics; null when none"

    def infer(self, column, param):
        return quantile_type(self.name, column, param)

    def reference(self, values, param):
        return _reference_percentile(values, param)

    def kernel(self, seg, param):
        return _percentiles(seg, param)


class Median(SegmentAggregation):
    name = "median"
    algebra = Quantile()
    doc = "the median of non-null values (the mean of the two middle ones when their number is even); null when none"

    def infer(self, column, param):
        _need(column, column.is_numeric, self.name, "a numeric column")
        return FLOAT64.nullable()

    def reference(self, values, param):
        return _reference_percentile(values, 0.5)

    def kernel(self, seg, param):
        return _percentiles(seg, 0.5)
