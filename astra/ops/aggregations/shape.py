"""Shape aggregations over a window's values: skew and kurtosis (sample estimators, as scipy.stats
with bias=False), one numpy kernel over `Segments` that both engines call.

With m_k = (1/n) sum (x - mean)^k over the n non-null values:
- skew: G1 = sqrt(n (n - 1)) / (n - 2) * m3 / m2^(3/2), null with fewer than 3 values;
- kurtosis (excess): G2 = (n - 1) / ((n - 2)(n - 3)) * ((n + 1) m4 / m2^2 - 3 (n - 1)), null with
  fewer than 4.
Both are NaN when a value is NaN or infinite, and null when every value is equal (m2 = 0).
Precision: within 1e-9 relative of the exactly computed value.  The fast path takes two passes in
float64 and bounds its own error; a window whose bound is not far below its answer (near-zero
skew, cancellation, integers beyond 2^53, values so large or small that powers overflow or
underflow) is computed exactly from rationals instead (`exact_skew`, `exact_kurtosis`).
"""

from __future__ import annotations

import math
from fractions import Fraction

from astra.lang.types import FLOAT64
from astra.ops.aggregations.algebra import PowerSums
from astra.ops.aggregations.base import _need, _present
from astra.ops.aggregations.segmented import SegmentAggregation
from astra.ops.exact import U
from astra.ops.registry import LazyModule, Vec
from astra.ops.segments import Segments

np = LazyModule("numpy", "np", globals())

_TOL = 1e-11  # recompute exactly when a bound exceeds this fraction of the quantity it bounds
_SCALE = 2.0 ** 120  # deviations beyond [1/_SCALE, _SCALE]: powers may overflow or underflow


def _central(xs: list, k: int) -> tuple[int, list[Fraction]]:
    """(n, [m2, ..., mk]) exactly, from Python numbers."""
    vals = [Fraction(x) for x in xs]
    n = len(vals)
    mean = sum(vals, Fraction(0)) / n
    d = [v - mean for v in vals]
    return n, [sum((e ** p for e in d), Fraction(0)) / n for p in range(2, k + 1)]


def _special(xs: list, need: int) -> tuple[bool, float | None]:
    """(decided, value) for the rules before the moments: too few values, NaN or infinities."""
    if len(xs) < need:
        return True, None
    if any(isinstance(x, float) and not math.isfinite(x) for x in xs):
        return True, math.nan
    return False, None


def exact_skew(xs: list) -> float | None:
    """G1 of finite values, from exact rationals: sign(m3) sqrt(n (n-1) m3^2 / ((n-2)^2 m2^3)),
    the rational rounded once, then its square root (None when m2 is 0)."""
    n, (m2, m3) = _central(xs, 3)
    return skew_of(n, m2, m3)


def skew_of(n: int, m2: Fraction, m3: Fraction) -> float | None:
    """G1 from n and the exact central moments m2, m3 (None when m2 is 0)."""
    if m2 == 0:
        return None
    r = Fraction(n * (n - 1)) * m3 * m3 / (Fraction((n - 2) ** 2) * m2 ** 3)
    return math.copysign(math.sqrt(float(r)), 1.0 if m3 > 0 else -1.0) if m3 else 0.0  # m3 may be past float64


def exact_kurtosis(xs: list) -> float | None:
    """G2 of finite values, an exact rational rounded once (None when m2 is 0)."""
    n, (m2, m3, m4) = _central(xs, 4)
    return kurtosis_of(n, m2, m3, m4)


def kurtosis_of(n: int, m2: Fraction, m3: Fraction, m4: Fraction) -> float | None:
    """G2 from n and the exact central moments m2, m3, m4 (None when m2 is 0)."""
    if m2 == 0:
        return None
    return float(Fraction(n - 1, (n - 2) * (n - 3)) * ((n + 1) * m4 / (m2 * m2) - 3 * (n - 1)))


def _reference(values, order: int):
    xs = _present(values)
    decided, value = _special(xs, order)
    if decided:
        return value
    return exact_skew(xs) if order == 3 else exact_kurtosis(xs)


def _shape(seg: Segments, order: int) -> Vec:
    """G1 (order 3) or G2 (order 4) of every query's values (see the module docstring)."""
    n = seg.lengths()
    m = seg.n
    ok = n >= order
    out = np.full(m, np.nan)
    if not ok.any():
        return Vec(out, ok)
    raw = np.asarray(seg.values)
    x = raw.astype(np.float64)
    qid = seg.query_ids()
    nf = np.maximum(n, 1).astype(np.float64)
    with np.errstate(all="ignore"):  # overflow, 0/0 and inf - inf: those windows are redone below
        special = np.bincount(qid, weights=~np.isfinite(x), minlength=m) > 0
        s1a = np.bincount(qid, weights=np.abs(x), minlength=m)
        mean = np.bincount(qid, weights=x, minlength=m) / nf
        d = x - mean[qid]
        d2 = d * d
        c2 = np.bincount(qid, weights=d2, minlength=m)
        c3 = np.bincount(qid, weights=d2 * d, minlength=m)
        a3 = np.bincount(qid, weights=np.abs(d2 * d), minlength=m)
        top = np.zeros(m)
        some = np.flatnonzero(n > 0)
        top[some] = np.maximum.reduceat(np.abs(d), seg.starts()[some])
        # error bounds (twice the first-order terms): the mean's error db moves C_k by k db C_(k-1)
        db = 2.0 * (nf + 2.0) * U * s1a / nf
        b2 = 2.0 * (2.0 * (nf + 4.0) * U * c2 + nf * db * db)
        b3 = 2.0 * (2.0 * (nf + 5.0) * U * a3 + 3.0 * db * c2 + nf * db ** 3)
        e2 = b2 / c2
        if order == 3:
            g = (c3 / nf) / (c2 / nf) ** 1.5 * (np.sqrt(nf * (nf - 1.0)) / (nf - 2.0))
            fine = (b3 <= _TOL * np.abs(c3)) & (e2 <= _TOL)
        else:
            c4 = np.bincount(qid, weights=d2 * d2, minlength=m)
            b4 = 2.0 * (2.0 * (nf + 6.0) * U * c4 + 4.0 * db * a3 + 6.0 * db * db * c2 + nf * db ** 4)
            r = (c4 / nf) / ((c2 / nf) * (c2 / nf))
            num = (nf + 1.0) * r - 3.0 * (nf - 1.0)
            err = (nf + 1.0) * r * (b4 / c4 + 2.0 * e2 + 4.0 * U) + 8.0 * U * (nf + 1.0) * (r + 3.0)
            g = num * (nf - 1.0) / ((nf - 2.0) * (nf - 3.0))
            fine = (err <= _TOL * np.abs(num)) & (e2 <= _TOL)
        fine &= (top >= 1.0 / _SCALE) & (top <= _SCALE) & np.isfinite(g)
    if raw.dtype.kind in "iu":  # integers beyond 2^53 are not exact as floats
        big = np.bincount(qid, weights=np.abs(x) >= 2.0 ** 53, minlength=m) > 0
        fine &= ~big
    out[ok] = g[ok]
    out[ok & special] = np.nan
    valid = ok.copy()
    starts = seg.starts()
    for j in np.flatnonzero(ok & ~special & ~fine).tolist():  # rare: see the module docstring
        got = (exact_skew if order == 3 else exact_kurtosis)(raw[starts[j]:starts[j] + n[j]].tolist())
        if got is None:
            valid[j] = False
        else:
            out[j] = got
    return Vec(out, valid)


class Skew(SegmentAggregation):
    name = "skew"
    algebra = PowerSums("skew")
    doc = "sample skewness G1 (scipy's bias=False) of non-null values; null with fewer than 3 or all equal"

    def infer(self, column, param):
        _need(column, column.is_numeric, self.name, "a numeric column")
        return FLOAT64.nullable()

    def reference(self, values, param):
        return _reference(values, 3)

    def kernel(self, seg, param):
        return _shape(seg, 3)


class Kurtosis(SegmentAggregation):
    name = "kurtosis"
    algebra = PowerSums("kurtosis")
    doc = "sample excess kurtosis G2 (scipy's bias=False) of non-null values; null with fewer than 4 or all equal"

    def infer(self, column, param):
        _need(column, column.is_numeric, self.name, "a numeric column")
        return FLOAT64.nullable()

    def reference(self, values, param):
        return _reference(values, 4)

    def kernel(self, seg, param):
        return _shape(seg, 4)
