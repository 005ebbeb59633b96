"""exp_decay_sum(x, half_life): a sum whose older values count less, one numpy kernel over
`Segments` (with row and query times) that both engines call.

The value at query time t is sum x_i * 2^(-(t - t_i) / half_life) over the window's non-null
values x_i at times t_i < t; 0 when there are none.  NaN when a value is NaN; an infinite value
keeps its sign whatever its weight (+inf and -inf together: NaN).  Precision: each weight within a
few ulps of 2^(-(t - t_i) / half_life) (numpy's exp2 of the float64 quotient), then the terms
x_i * weight summed with compensation, so the answer is within 1e-9 of the exact sum of those
terms relative to the sum of their magnitudes (weights below 2^-1074 are 0).
"""

from __future__ import annotations

import math

from astra.lang.types import FLOAT64
from astra.ops.aggregations.algebra import DecayTerms
from astra.ops.aggregations.base import _need
from astra.ops.aggregations.segmented import SegmentAggregation, as_floats
from astra.ops.exact import exact_sum
from astra.ops.registry import LazyModule, TypeRuleError, Vec
from astra.ops.segments import Segments

np = LazyModule("numpy", "np", globals())


def _sums(terms: np.ndarray, seg: Segments) -> np.ndarray:
    """Each query's sum of its terms: compensated (the rounding error of every step kept and
    added back), IEEE specials as `exact_sum`."""
    from astra.ops.summation import compensated_runs

    n = seg.lengths()
    out = np.zeros(seg.n)
    has = np.flatnonzero(n > 0)
    if not len(has):
        return out
    starts = seg.starts()[has]
    with np.errstate(invalid="ignore", over="ignore"):
        p, e = compensated_runs(terms, starts)
        ends = starts + n[has] + np.arange(len(has))  # run r's total sits at its end + r
        out[has] = p[ends] + e[ends]
    for j in np.flatnonzero(~np.isfinite(out)).tolist():  # specials, or a sum that overflowed
        lo = int(seg.offsets[j])
        out[j] = exact_sum(terms[lo:lo + int(n[j])].tolist())
    return out


class ExpDecaySum(SegmentAggregation):
    name, takes_param, reads_times = "exp_decay_sum", True, True
    algebra = DecayTerms()
    param_kind, param_label = "duration", "half_life"
    doc = ("sum of non-null values, each weighted 2^(-age / half_life) (age: t minus its time); "
           "0 when empty")

    def infer(self, column, param):
        _need(column, column.is_numeric, self.name, "a numeric column")
        if not isinstance(param, int) or isinstance(param, bool) or param <= 0:
            raise TypeRuleError(f"`{self.name}` needs a positive half-life, e.g. `{self.name}(src.col, 1h, 7d)`",
                                arg=1)
        return FLOAT64

    def reference(self, values, param):
        raise TypeError("exp_decay_sum needs the rows' times: call `reference_at`")

    def reference_at(self, values, times, t, param) -> float:
        """The value over visible rows' inputs (None: null) at times `times`, for query time t (µs)."""
        terms = []
        for x, ti in zip(values, times):
            if x is None:
                continue
            x = float(x)
            terms.append(x if math.isinf(x) else x * 2.0 ** (-((t - ti) / param)))
        return exact_sum(terms)

    def kernel(self, seg, param):
        x = as_floats(seg)
        age = (seg.query_times[seg.query_ids()] - seg.times).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            terms = np.where(np.isinf(x), x, x * np.exp2(-(age / float(param))))
        return Vec(_sums(terms, seg), np.ones(seg.n, bool))
