"""Exactly rounded sums, means and variances, and the test that tells a fast answer from one that
needs them.

Both engines answer `sum`, `mean`, `variance` and `stddev` from prefix structures: fast, and
within a few ulps of the exact answer for ordinary data.  Each also carries an error bound; when
the bound is not far below the answer (values many orders of magnitude apart, cancellation,
overflow, NaN or infinities in the window), that window alone is recomputed here from its values.
The reference interpreter uses the same functions, so the three agree on every IEEE special case:

- NaN anywhere makes the answer NaN; +inf and -inf together make NaN; otherwise an infinity wins;
- a finite sum too large for a float64 is +inf or -inf (the exact sum, rounded);
- the variance of values that include NaN or an infinity is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

TOLERANCE = 1e-10  # recompute a window when its error bound exceeds this fraction of the answer
U = 2.0 ** -53  # unit roundoff of float64


def _rounded(x: Fraction) -> float:
    """The float nearest an exact rational (+/-inf beyond the float64 range)."""
    try:
        return float(x)  # int / int in Python rounds correctly
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _special(xs: Sequence[float]) -> float | None:
    """The IEEE answer of a sum over values that include NaN or an infinity, else None."""
    pos = neg = False
    for x in xs:
        if math.isnan(x):
            return math.nan
        pos, neg = pos or x == math.inf, neg or x == -math.inf
    if pos and neg:
        return math.nan
    return math.inf if pos else -math.inf if neg else None


def exact_sum(xs: Sequence[float]) -> float:
    """The exactly rounded sum of floats (IEEE specials as in the module docstring)."""
    try:
        return math.fsum(xs)
    except (OverflowError, ValueError):  # an infinity or NaN, or an intermediate overflow
        special = _special(xs)
        return special if special is not None else _rounded(sum(map(Fraction, xs), Fraction(0)))


def exact_mean(xs: Sequence[float], n: int | None = None) -> float | None:
    """The sum of floats divided by n (default: their number) within two roundings of exact
    (None when n is 0); finite values whose sum overflows still have their (finite) mean."""
    n = len(xs) if n is None else n
    if not n:
        return None
    s = exact_sum(xs)
    if math.isfinite(s) or _special(xs) is not None:
        return s / n
    return _rounded(sum(map(Fraction, xs), Fraction(0)) / n)


def exact_variance(xs: Sequence[float]) -> float | None:
    """The sample variance (n - 1) of floats, exactly rounded (None with fewer than two values;
    NaN when a value is NaN or infinite; +inf beyond the float64 range)."""
    n = len(xs)
    if n < 2:
        return None
    if any(not math.isfinite(x) for x in xs):
        return math.nan
    if min(xs) == max(xs):  # the common exact zero, without rationals
        return 0.0
    q = [Fraction(x) for x in xs]
    mean = sum(q, Fraction(0)) / n
    return _rounded(sum(((x - mean) ** 2 for x in q), Fraction(0)) / (n - 1))


def suspect(approx, bound):
    """Where a fast answer (a NumPy array) may be off by more than `TOLERANCE` of itself: its
    error bound is not small enough, or it is not finite (NaN bounds count as too large)."""
    import numpy as np  # not at import time: the compiler never needs NumPy

    with np.errstate(invalid="ignore", over="ignore"):
        return ~((bound <= TOLERANCE * np.abs(approx)) & np.isfinite(approx))
