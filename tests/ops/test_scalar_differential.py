"""Every scalar operator on hostile values (NaN, infinities, signed zeros, the int32 and int64
limits, float32 overflow): the offline engine and both online plans equal the reference."""

from __future__ import annotations

import functools
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from three_engines import check, compile_features, run_all

from astra.plan import reference

EXPRESSIONS = """
    add32: int64 = r.i + r.j
    mul: int64 = r.i * r.k
    rem: int64? = r.k % r.i
    quot: float64? = r.k / r.j
    mul32: float32 = r.f * r.g
    rem32: float32? = r.f % r.g
    sub: float64 = r.v - r.f
    remf: float64? = r.v % r.w
    lt: bool = r.v < r.f
    ge: bool = r.i >= r.f
    ne: bool = r.v != r.w
    to64: int64? = r.v as int64
    to32: int32? = r.f as int32
    narrow: int32? = r.k as int32
    r2: float64 = round(r.v, 2)
    r1: float32 = round(r.f, 1)
    lim: float64 = clip(r.v, r.w, 5.0)
    mag: int64 = abs(r.i)
    whole: float64 = floor(r.v) + ceil(r.w)
    text: string = r.k as string
    single: float32 = r.k as float32
    member: bool = r.v in [0.5, 1.0, 2.0]
    pick: float64 = if r.v > r.w then r.v else r.w
    root: float64? = sqrt(r.v)
    neg: int64 = -r.k
"""
FIELDS = "i: int32  j: int32  k: int64  f: float32  g: float32  v: float64  w: float64"

F32_MAX = 3.4028234663852886e38
specials = [math.nan, math.inf, -math.inf, 0.0, -0.0, 0.5, 1.0, 2.0, -2.5, 0.35, 2.0**31, 2.0**63, -(2.0**63)]
doubles = st.one_of(st.sampled_from([*specials, 1e308, 5e-324]), st.floats())
singles = st.one_of(st.sampled_from([*specials, F32_MAX, 1e-45]), st.floats(width=32))
int32s = st.one_of(st.sampled_from([-(2**31), 2**31 - 1, 0, 1, -1]), st.integers(-(2**31), 2**31 - 1))
int64s = st.one_of(st.sampled_from([-(2**63), 2**63 - 1, 0, 1, -1, 2**53 + 1]), st.integers(-(2**63), 2**63 - 1))
rows = st.fixed_dictionaries(dict(i=int32s, j=int32s, k=int64s, f=singles, g=singles, v=doubles, w=doubles))


@functools.cache
def _plan():
    return compile_features(EXPRESSIONS, FIELDS)


@settings(max_examples=25, deadline=None)
@given(st.lists(rows, min_size=1, max_size=25))
def test_every_engine_equals_the_reference_on_hostile_values(values):
    plan = _plan()
    spine = [dict(ts=1, **v) for v in values]
    want = reference.evaluate(plan, "svc", 1, [{"uid": 1, **r} for r in spine], {"ev": []})
    names = [o.name for o in plan.service("svc", 1).outputs]
    check(run_all(plan, spine), {n: [w[n] for w in want] for n in names})
