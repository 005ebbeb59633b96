"""Second moments: sample `variance` and `stddev` (n - 1), exactly rounded within the tolerance of
`astra.ops.exact`.
"""

from __future__ import annotations

import math

from astra.lang.types import FLOAT64
from astra.ops.aggregations.algebra import PowerSums
from astra.ops.aggregations.base import Aggregation, _masked, _need, _present
from astra.ops.exact import exact_variance
from astra.ops.registry import LazyModule, Vec

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time


class Variance(Aggregation):
    algebra = PowerSums("variance")
    name, doc = "variance", "sample variance (n - 1) of non-null values; null with fewer than two"

    def infer(self, column, param):
        _need(column, column.is_numeric, self.name, "a numeric column")
        return FLOAT64.nullable()

    def reference(self, values, param):
        return exact_variance(_present(values))

    def offline_window(self, w, column, param):
        n, variance = w.variance(column)
        with np.errstate(invalid="ignore"):  # garbage where n < 2 is masked
            return _masked(self.finish(variance), n >= 2)

    def finish(self, variance):
        return variance

    online_needs, online_mergeable = frozenset({"gather", "moments"}), True  # evicted rows: shifted sums

    def online(self, w, out, param):
        n, m2 = w.moments()
        with np.errstate(invalid="ignore", over="ignore"):
            return Vec(self.finish(m2 / np.maximum(n - 1, 1)), n >= 2)


class Stddev(Variance):
    algebra = PowerSums("stddev")
    name, doc = "stddev", "sample standard deviation (n - 1) of non-null values; null with fewer than two"

    def reference(self, values, param):
        v = super().reference(values, param)
        return None if v is None else math.sqrt(v)

    def finish(self, variance):
        return np.sqrt(variance)

