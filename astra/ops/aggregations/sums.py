"""Sums and means: exact int64 (wrapping) or exactly rounded float sums; means from them.
"""

from __future__ import annotations

from fractions import Fraction

from astra.lang.types import FLOAT64, INT64
from astra.ops import vectors
from astra.ops.aggregations.algebra import Summing
from astra.ops.aggregations.base import Aggregation, _masked, _need, _present
from astra.ops.exact import exact_mean, exact_sum
from astra.ops.registry import LazyModule, Vec

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time


class Sum(Aggregation):
    name = "sum"
    algebra = Summing()
    doc = "sum of non-null values; 0 when empty (int64 for integers, float64 for floats)"

    def infer(self, column, param):
        _need(column, column.is_numeric, "sum", "a numeric column")
        return INT64 if column.is_integer else FLOAT64

    def reference(self, values, param):
        xs = _present(values)
        # exactly rounded float sum (an overflow is +/-inf); callers convert to the result type
        if any(isinstance(x, float) for x in xs):
            return exact_sum(xs)
        return (sum(xs) + (1 << 63)) % (1 << 64) - (1 << 63)  # int64 wraps around (semantics rule 11)

    def offline_window(self, w, column, param):
        import polars as pl

        return pl.Series(w.sum(column))  # exact int64 or compensated float64; 0 when empty

    online_needs, online_mergeable = frozenset({"sum"}), True

    def online(self, w, out, param):
        return Vec(w.sum().astype(np.int64 if out.is_integer else np.float64, copy=False), w.ones)

    def online_one(self, q, ti, i, j, out, param):
        s = q.sum(ti, i, j)
        return s if out.is_integer else float(s)


class Mean(Aggregation):
    name = "mean"
    algebra = Summing(mean=True)
    doc = "arithmetic mean of non-null values (of vectors: element by element); null when there are none"

    # a vector column's mean is element-wise (astra.ops.vectors); the checker sets `param` to its length
    vector_width_param = True

    def infer(self, column, param):
        if column is not None and column.name == "vector":
            return vectors.mean_type(column)
        _need(column, column.is_numeric, "mean", "a numeric column or a vector")
        return FLOAT64.nullable()

    def reference(self, values, param):
        if param is not None:
            return vectors.mean_reference(values, param)
        xs = _present(values)
        if not xs:
            return None
        return exact_mean(xs) if any(isinstance(x, float) for x in xs) else float(Fraction(sum(xs), len(xs)))

    def offline_window(self, w, column, param):
        if param is not None:
            return vectors.offline_mean(w, column, param)
        mean, n = w.mean(column)
        return _masked(mean, n > 0)

    online_needs, online_mergeable = frozenset({"cnt", "sum"}), True

    def online_needs_for(self, column):
        """A vector mean reads its window's rows, not running sums."""
        return frozenset({"gather"}) if column is not None and column.name == "vector" else self.online_needs

    def online_mergeable_for(self, column):
        return column is None or column.name != "vector"

    def online(self, w, out, param):
        if param is not None:
            return vectors.online_mean(w, param)
        n = w.count()
        s = w.sum()
        mean = s / np.maximum(n, 1)
        # floats: finite values whose sum overflows still have a finite mean; integers: an
        # int64 sum that may have wrapped around
        floats = s.dtype.kind == "f"
        redo = np.isinf(s) & (n > 0) if floats else n * float(w.magnitude()) >= 2.0 ** 62
        for j in np.flatnonzero(redo).tolist():
            mean[j] = w.exact_mean(j, int(n[j]))
        return Vec(mean, n > 0)

    def online_one(self, q, ti, i, j, out, param):
        if param is not None:
            return q.vector(ti, i, j, lambda w: self.online(w, out, param))
        return q.mean(ti, i, j)

