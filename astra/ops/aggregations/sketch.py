"""Sketch aggregations: approx_count_distinct (HyperLogLog) and approx_percentile (DDSketch).

One numpy kernel each over `Segments` (astra.ops.segments) that both engines call; the sketches,
their hash and their guarantees are in `astra.ops.sketches`, whose plain-Python references are
these aggregations' references (they agree with the numpy kernels bit for bit).  A window's answer
depends only on the multiset of its non-null values: not on their order, nor on how its rows were
split and merged.
"""

from __future__ import annotations

from astra.lang.types import INT64
from astra.ops import sketches
from astra.ops.aggregations.algebra import DDSketch, HyperLogLog
from astra.ops.aggregations.base import _need, _present
from astra.ops.aggregations.segmented import SegmentAggregation, as_floats, quantile_type
from astra.ops.registry import LazyModule, Vec

np = LazyModule("numpy", "np", globals())


class ApproxCountDistinct(SegmentAggregation):
    name = "approx_count_distinct"
    algebra = HyperLogLog()
    doc = ("estimated number of distinct non-null values (HyperLogLog, 16384 registers: about 0.81% "
           "standard error); 0 when empty")

    def infer(self, column, param):
        _need(column, column.name not in ("list", "vector") and not column.is_float, self.name,
              "a column of integers, strings, booleans or times (floats have no exact identity)")
        return INT64

    def reference(self, values, param):
        return sketches.approx_count_distinct_ref(_present(values))

    def kernel(self, seg, param):
        values = seg.values
        if values.dtype.kind == "b":  # booleans hash as the integers 0 and 1
            values = values.astype(np.int64)
        return Vec(sketches.approx_count_distinct(values, seg.offsets), np.ones(seg.n, bool))


class ApproxPercentile(SegmentAggregation):
    name, takes_param = "approx_percentile", True
    algebra = DDSketch()
    param_kind = "fraction"
    doc = ("the q-quantile (q in [0, 1]) of non-null values, within 1% of x[floor((n - 1) q)] of the n sorted "
           "values (DDSketch; the lower value `percentile` interpolates from); NaN when one is NaN; null when none")

    def infer(self, column, param):
        return quantile_type(self.name, column, param)

    def reference(self, values, param):
        return sketches.approx_percentile_ref([float(v) for v in _present(values)], param)

    def kernel(self, seg, param):
        out, valid = sketches.approx_percentile(as_floats(seg), seg.offsets, param)
        out[~valid] = 0.0  # filler of null slots
        return Vec(out, valid)
