"""skew and kurtosis: one body through the reference, the offline backfill and the online store
(batch and single-entity plans, fed several ways), checked against scipy.stats (bias=False) on
ordinary data and against values derived by hand where float arithmetic cancels
(docs/semantics.md, "Order, shape and decay aggregations")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from segment_cases import FLOATS, SETTINGS, SPINE, T0, H, answers, each, events, same_float, window

FEATURES = """
    sx: float64? = skew(ev.x, 3h)
    kx: float64? = kurtosis(ev.x)
    sn: float64? = skew(ev.n)
    kn: float64? = kurtosis(ev.n, 3h)
"""
EXPECTED = {"sx": ("x", 3, 3), "kx": ("x", None, 4), "sn": ("n", None, 3), "kn": ("n", 3, 4)}
MODERATE = st.one_of(st.integers(-1000, 1000).map(float), st.floats(-1e3, 1e3).map(lambda v: round(v, 3)))


def expected(xs: list, need: int, kurt: bool) -> float | None:
    """docs: null below `need` values; NaN with a NaN or infinity; null when all are equal;
    else scipy's bias=False estimator."""
    if len(xs) < need:
        return None
    arr = np.array(xs, dtype=np.float64)
    if not np.isfinite(arr).all():
        return math.nan
    if len(set(xs)) == 1:
        return None
    if kurt:
        return float(stats.kurtosis(arr, fisher=True, bias=False))
    return float(stats.skew(arr, bias=False))


@SETTINGS
@given(events(floats=MODERATE, ints=st.integers(-1000, 1000), max_size=14))
def test_skew_and_kurtosis_match_scipy_in_every_engine(rows):
    got = answers(FEATURES, rows)
    bad = []
    for name, (column, hours, need) in EXPECTED.items():
        for engine, j, value in each(got, name):
            xs = window(rows, SPINE[j], column, hours)
            want = expected(xs, need, kurt=need == 4)
            # scipy computes in float64 without an exactness fallback: near-zero answers carry its
            # cancellation error, about 1e-12 of the moments' scale here
            if not same_float(value, want, rtol=1e-8, atol=1e-9):
                bad.append(f"{engine} {name} query {j}: {value} != {want} ({xs})")
    assert not bad, "\n".join(bad[:10])


@SETTINGS
@given(events(floats=FLOATS, max_size=10))
def test_hostile_values_follow_the_null_and_nan_rules(rows):
    """Nulls, NaN, infinities, huge and tiny values: the rules decide null / NaN exactly, and a
    number is a number in every engine (its value is checked against scipy only where scipy is
    exact enough: see the hand-derived cases below)."""
    got = answers(FEATURES, rows)
    for name, (column, hours, need) in EXPECTED.items():
        for engine, j, value in each(got, name):
            xs = window(rows, SPINE[j], column, hours)
            arr = np.array(xs, dtype=np.float64)
            # too few, then NaN or an infinity, then all equal; else some finite number
            want = (None if len(xs) < need else math.nan if not np.isfinite(arr).all()
                    else None if len(set(xs)) == 1 else 0.0)
            if want is None:
                assert value is None, (engine, name, j, value, xs)
            elif math.isnan(want):
                assert isinstance(value, float) and math.isnan(value), (engine, name, j, value, xs)
            else:
                assert isinstance(value, float) and math.isfinite(value), (engine, name, j, value, xs)


def _one(features: str, values: list, column: str = "x") -> dict[str, dict]:
    rows = [{"id": 1, "ts": T0 + h * H, "x": None, "n": None, "s": None, column: v} for h, v in enumerate(values)]
    got = answers(features, rows, [{"id": 1, "ts": T0 + 100 * H}])
    return {engine: r[0] for engine, r in got.items()}


SQRT3 = math.sqrt(3.0)  # skew of {0, 0, 1}: m2 = 2/9, m3 = 2/27, G1 = sqrt(6) * (2/27) / (2/9)^1.5 = sqrt(3)


@pytest.mark.parametrize(("values", "column", "skew"), [
    ([0.0, 0.0, 1.0], "x", SQRT3),
    ([1e9, 1e9, 1e9 + 1], "x", SQRT3),  # shifted: the mean's rounding would swamp m3 in float64
    ([2.0 ** 52, 2.0 ** 52, 2.0 ** 52 + 1], "x", SQRT3),
    ([2**62, 2**62, 2**62 + 1], "n", SQRT3),  # integers beyond 2^53: inexact as floats
    ([1e200, 1e200, 2e200], "x", SQRT3),  # cubes overflow float64
    ([1e-200, 1e-200, 2e-200], "x", SQRT3),  # cubes underflow
    ([1.0, 2.0, 3.0], "x", 0.0),  # symmetric: exactly 0, not rounding noise
    ([1e6 + 0.1, 1e6 + 0.2, 1e6 + 0.3, 1e6 + 0.4], "x", None),  # stated below from exact rationals
])
def test_skew_is_exact_where_float64_cancels(values, column, skew):
    from fractions import Fraction

    if skew is None:  # exact G1 from rationals (Fraction) and a Decimal square root
        xs = [Fraction(v) for v in values]
        n = len(xs)
        mean = sum(xs) / n
        m2 = sum((x - mean) ** 2 for x in xs) / n
        m3 = sum((x - mean) ** 3 for x in xs) / n
        r = Fraction(n * (n - 1)) * m3 * m3 / ((n - 2) ** 2 * m2 ** 3)
        skew = math.copysign(math.sqrt(float(r)), float(m3)) if m3 else 0.0
    got = _one(f"    s: float64? = skew(ev.{column})", values, column)
    for engine, row in got.items():
        assert same_float(row["s"], skew, rtol=1e-9), (engine, row["s"], skew)
        if skew == 0.0:
            assert row["s"] == 0.0, (engine, row["s"])


@pytest.mark.parametrize(("values", "column", "kurt"), [
    # {0, 0, 0, 1}: m2 = 3/16, m4 = 21/256, m4/m2^2 = 7/3, G2 = 3/2 (5 * 7/3 - 9) = 4
    ([0.0, 0.0, 0.0, 1.0], "x", 4.0),
    ([1e12, 1e12, 1e12, 1e12 + 1], "x", 4.0),
    ([2**62, 2**62, 2**62, 2**62 + 1], "n", 4.0),
    ([1e150, 1e150, 1e150, 2e150], "x", 4.0),  # fourth powers overflow float64
    # {0, 1, 2, 3}: m2 = 5/4, m4 = 41/16, m4/m2^2 = 41/25, G2 = 3/2 (5 * 41/25 - 9) = -1.2
    ([0.0, 1.0, 2.0, 3.0], "x", -1.2),
    ([3.0, 3.0, 3.0, 3.0], "x", None),  # all equal: null
    ([1.0, 2.0, 3.0], "x", None),  # fewer than 4: null
    ([1.0, 2.0, math.inf, 3.0], "x", math.nan),
])
def test_kurtosis_edge_cases(values, column, kurt):
    got = _one(f"    k: float64? = kurtosis(ev.{column})", values, column)
    for engine, row in got.items():
        assert same_float(row["k"], kurt, rtol=1e-9), (engine, row["k"], kurt)


def test_skew_rules_for_few_equal_and_special_values():
    for values, want in (([1.0, 2.0], None), ([5.0, 5.0, 5.0], None), ([1.0, math.nan, 2.0], math.nan),
                         ([1.0, -math.inf, 2.0], math.nan), ([], None)):
        got = _one("    s: float64? = skew(ev.x)", values)
        for engine, row in got.items():
            assert same_float(row["s"], want), (engine, values, row["s"])


def exact_shape(xs: list, order: int) -> float | None:
    """G1 / G2 from exact rationals in scipy's arrangement, via 50-digit decimals."""
    from decimal import Decimal, localcontext
    from fractions import Fraction

    q = [Fraction(x) for x in xs]
    n = len(q)
    mean = sum(q) / n
    m = {k: sum((x - mean) ** k for x in q) / n for k in (2, 3, 4)}
    if m[2] == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 50
        dec = {k: Decimal(v.numerator) / Decimal(v.denominator) for k, v in m.items()}
        if order == 3:
            return float(dec[3] / dec[2] ** Decimal("1.5") * (Decimal(n * (n - 1)).sqrt() / (n - 2)))
        return float(((n * n - 1) * dec[4] / dec[2] ** 2 - 3 * (n - 1) ** 2) / ((n - 2) * (n - 3)))


@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.integers(-3, 3).map(lambda v: 1e6 + v)), min_size=4, max_size=40))
@SETTINGS
def test_the_kernel_alone_is_within_1e_9_of_the_exact_estimators(xs):
    """The shared kernel over one segment (no engine around it), ties and shifted values included."""
    from astra.ops.aggregations.shape import _shape
    from astra.ops.segments import Segments

    seg = Segments(values=np.array(xs), offsets=np.array([0, len(xs)]))
    for order in (3, 4):
        got = _shape(seg, order)
        want = exact_shape(xs, order)
        assert bool(got.valid[0]) == (want is not None)
        if want is not None:
            assert same_float(float(got.values[0]), want, rtol=1e-9), (order, got.values[0], want)
