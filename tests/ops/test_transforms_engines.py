"""Bound fitted transforms on hostile values and hostile statistics: the offline engine and both
online plans equal the reference interpreter to the bit (NaN, infinities, signed zeros, the
integer limits, huge and tiny scales, unseen categories, values equal to bin edges)."""

from __future__ import annotations

import functools
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from three_engines import check, compile_features, run_all

from astra.plan import reference
from astra.plan.fit import bind_features

FEATURES = """
    z: float64? = standard_scale(r.v)
    z32: float64 = min_max_scale(r.f)
    zi: float64 = robust_scale(r.k)
    zi32: float64? = standard_scale(r.i)
    b: int32? = quantile_bucketize(r.v, 5)
    bi: int32 = quantile_bucketize(r.k, 4)
    o: int32 = ordinal(r.k)
    os: int32? = ordinal(r.s)
    im: float64 = impute(r.v, mean)
    mode: string = impute(r.s, mode)
    mode32: int32 = impute(r.i, mode)
    const: float64 = impute(r.f, -0.0)
"""
FIELDS = "i: int32?  k: int64  f: float32  v: float64?  s: string?"

specials = [math.nan, math.inf, -math.inf, 0.0, -0.0, 0.5, 1.0, -2.5, 2.0**63, 1e308, 5e-324]
doubles = st.one_of(st.sampled_from(specials), st.floats())
finite = st.floats(allow_nan=False, allow_infinity=False)
scales = finite.filter(lambda x: x != 0.0)
int64s = st.one_of(st.sampled_from([-(2**63), 2**63 - 1, 0, 1, -1, 2**53 + 1]), st.integers(-(2**63), 2**63 - 1))
int32s = st.one_of(st.none(), st.sampled_from([-(2**31), 2**31 - 1, 0, 3]), st.integers(-(2**31), 2**31 - 1))
words = st.sampled_from(["a", "b", "", "ä", "日本", "a "])
rows = st.fixed_dictionaries(dict(
    i=int32s, k=int64s, f=st.one_of(st.sampled_from(specials[:6]), st.floats(width=32)),
    v=st.one_of(st.none(), doubles), s=st.one_of(st.none(), words)))


@st.composite
def fits(draw):
    """Statistics as a fit could have written them (and some it could not: tiny or negative scales)."""
    def scale():
        return {"center": draw(finite), "scale": draw(scales)}

    def edges(n):
        return {"edges": sorted(set(draw(st.lists(finite, max_size=n - 1))))}

    return {
        "g@v1.z#0": scale(), "g@v1.z32#0": scale(), "g@v1.zi#0": scale(), "g@v1.zi32#0": scale(),
        "g@v1.b#0": edges(5), "g@v1.bi#0": edges(4),
        "g@v1.o#0": {"categories": sorted(set(draw(st.lists(int64s, max_size=4))))},
        "g@v1.os#0": {"categories": sorted(set(draw(st.lists(words, max_size=4))))},
        "g@v1.im#0": {"value": draw(finite)}, "g@v1.mode#0": {"value": draw(words)},
        "g@v1.mode32#0": {"value": draw(st.integers(-(2**31), 2**31 - 1))},
    }


@functools.cache
def _plan():
    return compile_features(FEATURES, FIELDS)


@settings(max_examples=20, deadline=None)
@given(fits(), st.lists(rows, min_size=1, max_size=20))
def test_every_engine_equals_the_reference_on_hostile_values(stats, values) -> None:
    plan = bind_features(_plan(), stats)
    spine = [{"ts": 1_700_000_000_000_000 + i, **r} for i, r in enumerate(values)]
    results = run_all(plan, spine)
    ref = reference.evaluate(plan, "svc", 1, [{"uid": 1, **r} for r in spine], {"ev": []})
    names = [o.name for o in plan.service("svc", 1).outputs]
    check(results, {n: [r[n] for r in ref] for n in names})


def test_the_documented_rules_on_a_fixed_fit() -> None:
    stats = {
        "g@v1.z#0": {"center": 1.0, "scale": 2.0}, "g@v1.z32#0": {"center": 0.0, "scale": 1.0},
        "g@v1.zi#0": {"center": 0.0, "scale": 1.0}, "g@v1.zi32#0": {"center": 0.0, "scale": 1.0},
        "g@v1.b#0": {"edges": [0.0, 10.0]}, "g@v1.bi#0": {"edges": [0.0]},
        "g@v1.o#0": {"categories": [-5, 7]}, "g@v1.os#0": {"categories": ["a", "b"]},
        "g@v1.im#0": {"value": 2.5}, "g@v1.mode#0": {"value": "b"}, "g@v1.mode32#0": {"value": 3},
    }
    plan = bind_features(_plan(), stats)
    rows = [dict(i=None, k=7, f=math.nan, v=None, s=None), dict(i=4, k=-6, f=1.5, v=10.0, s="b"),
            dict(i=0, k=0, f=-0.0, v=math.nan, s="z"), dict(i=1, k=-5, f=2.0, v=-math.inf, s="a")]
    results = run_all(plan, [{"ts": 1_700_000_000_000_000 + i, **r} for i, r in enumerate(rows)])
    check(results, {
        "z": [None, 4.5, math.nan, -math.inf],  # null stays null, NaN stays NaN, (x - 1) / 2
        "b": [None, 2, None, 0],  # a value on an edge goes above it; NaN has no bin
        "bi": [1, 0, 1, 0],
        "o": [1, -1, -1, 0],  # a category the fit never saw is -1
        "os": [None, 1, -1, 0],  # null stays null
        "im": [2.5, 10.0, 2.5, -math.inf],  # null and NaN are missing, -inf is a value
        "mode": ["b", "b", "z", "a"],
        "mode32": [3, 4, 0, 1],
        "const": [-0.0, 1.5, -0.0, 2.0],
    })
