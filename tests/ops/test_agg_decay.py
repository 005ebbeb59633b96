"""exp_decay_sum(x, half_life): one body through the reference, the offline backfill and the online
store (batch and single-entity plans, fed several ways), checked against a plain `math.fsum` of
x * 0.5 ** (age / half_life) over each query's window (docs/semantics.md, "Order, shape and decay
aggregations")."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from segment_cases import FLOATS, SETTINGS, SPINE, T0, H, answers, each, events, same_float, timed_window
from three_engines import CompileFailed, compile_features

FEATURES = """
    d1: float64 = exp_decay_sum(ev.x, 1h, 3h)
    d2: float64 = exp_decay_sum(ev.x, 90m)
    dn: float64 = exp_decay_sum(ev.n, 1d, 3h)
"""
EXPECTED = {"d1": ("x", 3, H), "d2": ("x", None, 90 * 60 * 1_000_000), "dn": ("n", 3, 24 * H)}


def decayed(pairs: list[tuple], t: int, half_life: int) -> tuple[float, float]:
    """(the documented value, the sum of the terms' magnitudes) for (value, time) pairs at t."""
    terms = [float(x) if math.isinf(x) else float(x) * 0.5 ** ((t - ti) / half_life) for x, ti in pairs]
    if any(math.isnan(v) for v in terms):
        return math.nan, 0.0
    signs = {math.copysign(1, v) for v in terms if math.isinf(v)}
    if signs:
        return (math.nan if len(signs) == 2 else math.copysign(math.inf, signs.pop())), 0.0
    return math.fsum(terms), math.fsum(abs(v) for v in terms)


@SETTINGS
@given(events(floats=FLOATS))
def test_exp_decay_sum_matches_a_plain_sum_of_weighted_terms_in_every_engine(rows):
    got = answers(FEATURES, rows)
    bad = []
    for name, (column, hours, half_life) in EXPECTED.items():
        for engine, j, value in each(got, name):
            pairs = timed_window(rows, SPINE[j], column, hours)
            want, magnitude = decayed(pairs, SPINE[j]["ts"], half_life)
            if not same_float(value, want, rtol=1e-9, atol=1e-9 * magnitude):
                bad.append(f"{engine} {name} query {j}: {value} != {want} ({pairs})")
    assert not bad, "\n".join(bad[:10])


def test_whole_half_lives_halve_exactly_and_an_empty_window_is_zero():
    """8 at 1h before t weighs 1/2, 8 at 2h before 1/4, 8 at 3h before 1/8: 4 + 2 + 1 = 7; a
    window of 90m sees only the first (4.0); nothing visible at T0 gives 0.0, not null."""
    rows = [{"id": 1, "ts": T0 + h * H, "x": 8.0, "n": 8, "s": None} for h in (1, 2, 3)]
    got = answers("""
    a: float64 = exp_decay_sum(ev.x, 1h)
    b: float64 = exp_decay_sum(ev.n, 1h, 90m)""", rows, [{"id": 1, "ts": T0 + 4 * H}, {"id": 1, "ts": T0}])
    for engine, r in got.items():
        assert [x["a"] for x in r] == [7.0, 0.0], engine
        assert [x["b"] for x in r] == [4.0, 0.0], engine


def test_infinities_keep_their_sign_whatever_the_weight():
    """An infinite value far older than the half-life still counts as itself; +inf and -inf: NaN."""
    one = [{"id": 1, "ts": T0, "x": math.inf, "n": None, "s": None}]
    both = [*one, {"id": 1, "ts": T0 + H, "x": -math.inf, "n": None, "s": None}]
    for rows, want in ((one, math.inf), (both, math.nan)):
        got = answers("    a: float64 = exp_decay_sum(ev.x, 1s)", rows, [{"id": 1, "ts": T0 + 1000 * H}])
        for engine, r in got.items():
            assert same_float(r[0]["a"], want), (engine, r[0]["a"], want)


@pytest.mark.parametrize("expr", ["exp_decay_sum(ev.x)", "exp_decay_sum(ev.x, 0s)", "exp_decay_sum(ev.x, 2)",
                                  "exp_decay_sum(ev.x, 0.5, 7d)"])
def test_a_missing_or_bad_half_life_is_e0211(expr):
    with pytest.raises(CompileFailed, match="E0211"):
        compile_features(f"    y: float64 = {expr}")


def test_a_string_column_is_refused():
    with pytest.raises(CompileFailed, match="numeric column"):
        compile_features("    y: float64 = exp_decay_sum(ev.s, 1h)")
