"""The scalar rules of docs/semantics.md ("Scalar semantics"), each checked in the offline engine,
both online plans and the reference interpreter.  Expected values are worked out by hand from
the documented rule (see the comments), never from running an engine."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from three_engines import CompileFailed, Near, check, compile_features, run_all

NAN, INF = math.nan, math.inf
I32_MIN, I32_MAX, I64_MIN, I64_MAX = -(2**31), 2**31 - 1, -(2**63), 2**63 - 1


def test_integer_arithmetic_computes_in_int64_and_wraps_past_its_range():
    plan = compile_features("""
        inc: int64 = r.rank + 1
        dec: int64 = r.rank - 1
        sq: int64 = r.rank * r.rank
        neg32: int64 = -r.rank
        abs32: int64 = abs(r.rank)
        add: int64 = r.big + 1
        sub: int64 = r.big - 1
        dbl: int64 = r.big * 2
        neg: int64 = -r.big
        mag: int64 = abs(r.big)
    """, "rank: int32  big: int64")
    spine = [dict(ts=1, rank=I32_MAX, big=I64_MAX), dict(ts=1, rank=I32_MIN, big=I64_MIN),
             dict(ts=1, rank=-5, big=-3)]
    check(run_all(plan, spine), {
        # int32 operands: exact in int64
        "inc": [2**31, I32_MIN + 1, -4],
        "dec": [I32_MAX - 1, -(2**31) - 1, -6],
        "sq": [I32_MAX**2, 2**62, 25],
        "neg32": [-I32_MAX, 2**31, 5],
        "abs32": [I32_MAX, 2**31, 5],
        # int64: two's complement wrap-around modulo 2**64
        "add": [I64_MIN, I64_MIN + 1, -2],
        "sub": [I64_MAX - 1, I64_MAX, -4],
        "dbl": [-2, 0, -6],
        "neg": [-I64_MAX, I64_MIN, 3],
        "mag": [I64_MAX, I64_MIN, 3],
    })


def _wrap(v: int) -> int:
    """The documented int64 rule: the exact result modulo 2**64, read as two's complement."""
    return (v + 2**63) % 2**64 - 2**63


int64s = st.one_of(st.sampled_from([I64_MIN, I64_MIN + 1, -1, 0, 1, I64_MAX - 1, I64_MAX, I32_MIN, I32_MAX]),
                   st.integers(I64_MIN, I64_MAX))
int32s = st.one_of(st.sampled_from([I32_MIN, -1, 0, 1, I32_MAX]), st.integers(I32_MIN, I32_MAX))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(int64s, int64s, int32s, int32s), min_size=1, max_size=12))
def test_integer_arithmetic_on_random_values(rows):
    plan = _arith_plan()
    spine = [dict(ts=1, a=a, b=b, c=c, d=d) for a, b, c, d in rows]
    check(run_all(plan, spine), {
        "add": [_wrap(a + b) for a, b, _, _ in rows], "sub": [_wrap(a - b) for a, b, _, _ in rows],
        "mul": [_wrap(a * b) for a, b, _, _ in rows], "neg": [_wrap(-a) for a, _, _, _ in rows],
        "mag": [_wrap(abs(a)) for a, _, _, _ in rows],
        "mod": [None if b == 0 else a % b for a, b, _, _ in rows],  # Python's % is floor modulo
        "add32": [c + d for _, _, c, d in rows], "mul32": [c * d for _, _, c, d in rows],
        "mixed": [_wrap(a * c) for a, _, c, _ in rows],
    })


_PLANS: dict[str, object] = {}


def _arith_plan():
    if "arith" not in _PLANS:
        _PLANS["arith"] = compile_features("""
            add: int64 = r.a + r.b
            sub: int64 = r.a - r.b
            mul: int64 = r.a * r.b
            neg: int64 = -r.a
            mag: int64 = abs(r.a)
            mod: int64? = r.a % r.b
            add32: int64 = r.c + r.d
            mul32: int64 = r.c * r.d
            mixed: int64 = r.a * r.c
        """, "a: int64  b: int64  c: int32  d: int32")
    return _PLANS["arith"]


def test_int32_arithmetic_is_int64_so_an_int32_declaration_is_refused():
    with pytest.raises(CompileFailed, match="E0204"):
        compile_features("x: int32 = r.rank + 1", "rank: int32")
    compile_features("x: int32? = (r.rank + 1) as int32", "rank: int32")  # an explicit, checked narrowing


def test_modulo_takes_the_sign_of_the_divisor_and_is_null_for_zero():
    plan = compile_features("""
        m: int64? = r.a % r.b
        f: float64? = r.x % r.y
    """, "a: int64  b: int64  x: float64  y: float64")
    rows = [(7, 2, 7.5, 2.0), (-7, 2, -7.5, 2.0), (7, -2, 7.5, -2.0), (-7, -2, -7.5, -2.0), (7, 0, 5.0, 0.0),
            (I64_MIN, -1, INF, 2.0), (0, 5, 1.0, NAN), (3, 5, -0.0, 0.0)]
    spine = [dict(ts=1, a=a, b=b, x=x, y=y) for a, b, x, y in rows]
    check(run_all(plan, spine), {
        # floor modulo: a - b * floor(a / b)
        "m": [1, 1, -1, -1, None, 0, 0, 3],
        # -7.5 - 2 * floor(-3.75) = 0.5; 7.5 - (-2) * floor(-3.75) = -0.5; inf and NaN give NaN
        "f": [1.5, 0.5, -0.5, -1.5, None, NAN, NAN, None],
    })


def test_division_is_float64_of_float64_operands_and_null_for_zero():
    plan = compile_features("q: float64? = r.a / r.b", "a: int64  b: int64")
    spine = [dict(ts=1, a=a, b=b) for a, b in [(7, 2), (-7, 2), (7, 0), (0, 0), (2**53 + 1, 3)]]
    # 2**53 + 1 becomes the double 2**53 before dividing: 2**53 / 3 = 3002399751580330.67 rounds
    # to 3002399751580330.5 (doubles there are 0.5 apart), not the exact quotient 3002399751580331
    check(run_all(plan, spine), {"q": [3.5, -3.5, None, None, 3002399751580330.5]})


def test_a_null_where_condition_drops_the_row():
    plan = compile_features("""
        big: int64 = count(ev where x > 1.0)
        not_big: int64 = count(ev where not (x > 1.0))
        either: int64 = count(ev where x > 1.0 or x <= 1.0)
        unknown: int64 = count(ev where is_null(x))
        big_sum: float64 = sum(ev.x where x > 1.0 or s == "keep")
    """)
    events = [dict(uid=1, ts=1, x=2.0, s="a"), dict(uid=1, ts=2, x=None, s="keep"), dict(uid=1, ts=3, x=0.5, s=None)]
    # row 2's `x > 1.0` is null: in neither `big` nor `not_big`; `null or true` is true
    check(run_all(plan, [dict(ts=10)], events), {"big": [1], "not_big": [1], "either": [2], "unknown": [1],
                                                 "big_sum": [2.0]})


def test_strings_count_code_points_and_change_case_with_full_unicode_mappings():
    plan = compile_features("""
        up: string = upper(r.s)
        low: string = lower(r.s)
        n: int64 = length(r.s)
    """, "s: string")
    texts = ["ß", "Straße", "İ", "ΑΣ", "e\u0301", "😀x", ""]
    check(run_all(plan, [dict(ts=1, s=s) for s in texts]), {
        "up": ["SS", "STRASSE", "İ", "ΑΣ", "E\u0301", "😀X", ""],
        # İ lowers to i + combining dot; a final capital sigma lowers to ς
        "low": ["ß", "straße", "i\u0307", "ας", "e\u0301", "😀x", ""],
        "n": [1, 6, 1, 2, 2, 2, 0],
    })


def test_casts_truncate_toward_zero_and_are_null_out_of_range():
    plan = compile_features("""
        i32: int32? = r.v as int32
        i64: int64? = r.v as int64
    """, "v: float64")
    values = [-1.7, 2.5, -0.9, -2147483648.5, 2147483648.0, NAN, INF, -INF, 2.0**63, -(2.0**63)]
    check(run_all(plan, [dict(ts=1, v=v) for v in values]), {
        "i32": [-1, 2, 0, I32_MIN, None, None, None, None, None, None],
        "i64": [-1, 2, 0, I32_MIN, 2**31, None, None, None, None, I64_MIN],
    })


def test_integer_bool_and_string_casts():
    plan = compile_features("""
        narrow: int32? = r.big as int32
        text: string = r.big as string
        flag_text: string = r.flag as string
        truth: bool = r.big as bool
        single: float32 = r.big as float32
    """, "big: int64  flag: bool")
    bigs = [I32_MAX, 2**31, I32_MIN, I32_MIN - 1, 0, I64_MAX]
    spine = [dict(ts=1, big=b, flag=b > 0) for b in bigs]
    check(run_all(plan, spine), {
        "narrow": [I32_MAX, None, I32_MIN, None, 0, None],
        "text": [str(b) for b in bigs],
        "flag_text": ["true", "true", "false", "false", "false", "true"],
        "truth": [True, True, True, True, False, True],
        # nearest float32: 2**31 - 1 -> 2**31; 2**63 - 1 -> 2**63
        "single": [2.0**31, 2.0**31, -(2.0**31), -(2.0**31), 0.0, 2.0**63],
    })


def test_float_comparisons_use_a_total_order_with_nan_above_everything():
    plan = compile_features("""
        eq: bool = r.v == r.w
        ne: bool = r.v != r.w
        lt: bool = r.v < r.w
        le: bool = r.v <= r.w
        gt: bool = r.v > r.w
        ge: bool = r.v >= r.w
    """, "v: float64  w: float64")
    pairs = [(NAN, NAN), (1.0, NAN), (NAN, 1.0), (INF, NAN), (-0.0, 0.0), (1.0, 2.0)]
    check(run_all(plan, [dict(ts=1, v=v, w=w) for v, w in pairs]), {
        "eq": [True, False, False, False, True, False],
        "ne": [False, True, True, True, False, True],
        "lt": [False, True, False, True, False, True],
        "le": [True, True, False, True, True, True],
        "gt": [False, False, True, False, False, False],
        "ge": [True, False, True, False, True, False],
    })


def test_an_integer_compared_with_a_float_is_compared_as_float64():
    plan = compile_features("""
        eq: bool = r.big == r.v
        gt: bool = r.big > r.v
        nan_gt: bool = r.big < r.v
    """, "big: int64  v: float64")
    # 2**53 + 1 becomes the double 2**53
    spine = [dict(ts=1, big=2**53 + 1, v=2.0**53), dict(ts=1, big=3, v=NAN)]
    check(run_all(plan, spine), {"eq": [True, False], "gt": [False, False], "nan_gt": [False, True]})


def test_in_compares_like_equality():
    plan = compile_features("""
        half: bool = r.big in [1.5, 2.0]
        ints: bool = r.v in [1, 3]
        words: bool = r.s in ["a", "ß"]
    """, "big: int64  v: float64  s: string")
    # 1 is not 1.5 (the integer is compared as a float, not the literal truncated to 1)
    spine = [dict(ts=1, big=1, v=1.0, s="ß"), dict(ts=1, big=2, v=NAN, s="b"), dict(ts=1, big=0, v=3.0, s="a")]
    check(run_all(plan, spine), {"half": [False, True, False], "ints": [True, False, True],
                                 "words": [True, False, True]})


def test_strings_compare_by_code_point():
    plan = compile_features("lt: bool = r.a < r.b", "a: string  b: string")
    pairs = [("z", "é"), ("a", "ab"), ("B", "a"), ("😀", "\uffff"), ("", "a")]
    # é is U+00E9 > z U+007A; a prefix sorts first; U+1F600 > U+FFFF
    check(run_all(plan, [dict(ts=1, a=a, b=b) for a, b in pairs]), {"lt": [True, True, True, False, True]})
    plan = compile_features("lt: bool = r.a < r.b", "a: bool  b: bool")
    pairs = [(False, True), (True, False), (True, True)]
    check(run_all(plan, [dict(ts=1, a=a, b=b) for a, b in pairs]), {"lt": [True, False, False]})


def test_round_takes_a_non_negative_literal_number_of_decimals():
    with pytest.raises(CompileFailed, match="E0207"):
        compile_features("x: float64 = round(r.v, -1)", "v: float64")
    with pytest.raises(CompileFailed, match="E0207"):
        compile_features("x: float64 = round(r.v, r.n)", "v: float64  n: int64")


def test_time_arithmetic_is_int64_microseconds_and_wraps_the_same_way():
    plan = compile_features("""
        later: timestamp = now() + r.d
        twice: duration = r.d + r.d
        back: duration = -r.d
    """, "d: duration")
    spine = [dict(ts=10, d=2**62), dict(ts=10, d=I64_MIN + 5), dict(ts=10, d=I64_MIN)]
    check(run_all(plan, spine), {
        "later": [2**62 + 10, I64_MIN + 15, I64_MIN + 10],
        "twice": [I64_MIN, 10, 0],  # 2**63 and -2**64 + 10 and -2**64, modulo 2**64
        "back": [-(2**62), I64_MAX - 4, I64_MIN],
    })


def test_math_functions_keep_nan_and_follow_ieee_at_the_edges():
    plan = compile_features("""
        ln: float64? = log(r.v)
        root: float64? = sqrt(r.v)
        ex: float64 = exp(r.v)
        lim: float64 = clip(r.v, -1.0, 1.0)
        down: float64 = floor(r.v)
        up: float64 = ceil(r.v)
        mag: float64 = abs(r.v)
    """, "v: float64")
    values = [NAN, INF, -INF, -0.0, 1000.0, -0.5, 2.5]
    check(run_all(plan, [dict(ts=1, v=v) for v in values]), {
        # log: null for x <= 0 (-0.0 included), NaN for NaN; sqrt(-0.0) is -0.0 (IEEE)
        "ln": [NAN, INF, None, None, Near(math.log(1000.0)), None, Near(math.log(2.5))],
        "root": [NAN, INF, None, -0.0, math.sqrt(1000.0), None, math.sqrt(2.5)],  # sqrt is exact in IEEE
        "ex": [NAN, INF, 0.0, 1.0, INF, Near(math.exp(-0.5)), Near(math.exp(2.5))],
        "lim": [NAN, 1.0, -1.0, -0.0, 1.0, -0.5, 1.0],
        "down": [NAN, INF, -INF, -0.0, 1000.0, -1.0, 2.0],
        "up": [NAN, INF, -INF, -0.0, 1000.0, -0.0, 3.0],
        "mag": [NAN, INF, INF, 0.0, 1000.0, 0.5, 2.5],
    })
    plan = compile_features("lim: float64 = clip(r.v, 0.0, r.w)", "v: float64  w: float64")
    rows = [(-0.0, 1.0), (0.0, -0.0), (5.0, 2.0), (-3.0, -1.0)]
    # min(max(x, lo), hi), a tie taking the bound: max(-0.0, 0.0) is 0.0, min(0.0, -0.0) is -0.0;
    # lo > hi gives hi
    check(run_all(plan, [dict(ts=1, v=v, w=w) for v, w in rows]), {"lim": [0.0, -0.0, 2.0, -1.0]})


def test_float32_operands_and_widening_keep_their_precision():
    plan = compile_features("""
        plus: float32 = r.i + r.f
        minus: float32 = r.f - r.i
        eq: bool = r.f == r.w
        mixed: float64 = r.f + r.w
        rem: float32? = r.f % r.g
        lim: float32 = clip(r.i, r.f, r.g)
    """, "i: int32  f: float32  g: float32  w: float64")
    f01 = 0.10000000149011612  # the float32 nearest 0.1
    spine = [dict(ts=1, i=16777217, f=1.0, g=3.0e7, w=1.0), dict(ts=1, i=0, f=0.1, g=0.0, w=0.1),
             dict(ts=1, i=1, f=3.4e38, g=0.1, w=0.0)]
    check(run_all(plan, spine), {
        # int32 16777217 widens to the float32 16777216 before the operation
        "plus": [16777216.0, f01, 3.3999999521443642e38],
        "minus": [-16777215.0, f01, 3.3999999521443642e38],
        # a float32 field holds float32(0.1), which is not the double 0.1
        "eq": [True, False, False],
        "mixed": [2.0, f01 + 0.1, 3.3999999521443642e38],
        # float32 steps: 3.4e38 / 0.1 overflows to inf, so there is no quotient: NaN
        "rem": [1.0, None, NAN],
        # clip(16777216f, 1, 3e7) = 16777216; clip(0, 0.1f, 0) = 0 (hi wins); clip(1, 3.4e38, 0.1f) = 0.1f
        "lim": [16777216.0, 0.0, f01],
    })
