"""`round(x, n)` is Python's correctly rounded `round` (docs/semantics.md, "Scalar semantics"),
in the shared kernel and in every engine."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from three_engines import check, compile_features, identical, run_all

from astra.ops.rounding import round_half_even

# Hand-derived from each double's exact value:
#   0.35  = 0.34999999999999997779... -> 0.3      0.05  = 0.05000000000000000277... -> 0.1
#   2.675 = 2.67499999999999982236... -> 2.67     0.125 and 0.375 are exact ties -> even digit
CASES = [  # (x, n, round(x, n))
    (0.35, 1, 0.3), (0.05, 1, 0.1), (-0.35, 1, -0.3), (2.675, 2, 2.67), (0.125, 2, 0.12),
    (0.375, 2, 0.38), (2.5, 0, 2.0), (-2.5, 0, -2.0), (3.5, 0, 4.0), (-0.04, 1, -0.0),
    (1e300, 2, 1e300), (2.0**52 + 1, 3, 2.0**52 + 1), (123.456, 30, 123.456),
    (math.inf, 1, math.inf), (-math.inf, 0, -math.inf),
]


def test_kernel_on_hand_checked_values():
    for x, n, want in CASES:
        assert identical(round_half_even(np.array([x]), n).tolist()[0], want), (x, n)
    assert math.isnan(round_half_even(np.array([math.nan]), 2)[0])


def _python(xs: list[float], n: int) -> list[float]:
    return [round(x, n) for x in xs]


def _same(got: np.ndarray, xs: list[float], n: int) -> None:
    for x, g, w in zip(xs, got.tolist(), _python(xs, n)):
        assert (math.isnan(g) and math.isnan(w)) or identical(g, w), (x, n, g, w)


@settings(max_examples=300)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50),
       st.integers(0, 40))
def test_kernel_matches_python_on_any_double(xs, n):
    _same(round_half_even(np.array(xs, dtype=np.float64), n), xs, n)


@settings(max_examples=300)
@given(st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=50), st.integers(0, 12), st.integers(0, 25),
       st.sampled_from([0.0, 0.5, -0.5]))
def test_kernel_matches_python_near_decimal_ties(ks, places, n, shift):
    """Short decimals (prices, rates) and values a half unit from a tie, the misrounded kind."""
    xs = [(k + shift) / 10.0**places for k in ks] + [(k + 0.5) / 10.0**n for k in ks]
    _same(round_half_even(np.array(xs), n), xs, n)


def test_every_engine_rounds_the_exact_value():
    plan = compile_features("""
        r1: float64 = round(r.v, 1)
        r2: float64 = round(r.v, 2)
        r0: float64 = round(r.v)
        r32: float32 = round(r.w, 1)
        ri: int64 = round(r.i, 3)
    """, "v: float64  w: float32  i: int64")
    values = [0.35, 0.05, -0.35, 2.675, 0.125, 2.5, -2.5, 1e300, math.inf]
    singles = [1e30 if v == 1e300 else v for v in values]  # 1e300 does not fit a float32
    spine = [dict(ts=1, v=v, w=w, i=7) for v, w in zip(values, singles)]
    check(run_all(plan, spine), {
        "r1": [0.3, 0.1, -0.3, 2.7, 0.1, 2.5, -2.5, 1e300, math.inf],
        "r2": [0.35, 0.05, -0.35, 2.67, 0.12, 2.5, -2.5, 1e300, math.inf],
        "r0": [0.0, 0.0, -0.0, 3.0, 0.0, 2.0, -2.0, 1e300, math.inf],
        # float32: the float32 value's exact decimal, rounded in float64, stored as float32
        "r32": [float(np.float32(round(float(np.float32(v)), 1))) for v in singles],
        "ri": [7] * len(values),
    })


def test_every_engine_matches_python_on_random_doubles():
    rng = np.random.default_rng(21)
    xs = (rng.integers(-10**6, 10**6, 200) / 10.0 ** rng.integers(0, 6, 200)).tolist()
    xs += rng.integers(0, 2**63, 50, dtype=np.int64).view(np.float64).tolist()
    plan = compile_features("a: float64 = round(r.v, 2)\n b: float64 = round(r.v, 4)", "v: float64")
    results = run_all(plan, [dict(ts=1, v=x) for x in xs])
    for engine, rows in results.items():
        for x, row in zip(xs, rows):
            for name, n in (("a", 2), ("b", 4)):
                want = round(x, n)
                assert (math.isnan(want) and math.isnan(row[name])) or identical(row[name], want), (engine, x, n)
