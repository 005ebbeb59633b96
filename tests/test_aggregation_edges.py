"""No value of any type stands for "no value", and NaN, infinities and string order follow
docs/semantics.md, in every engine (offline, both online plans however the store was fed, the
reference).  Expected values are derived by hand in the comments."""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent / "offline")]

from agg_engines import check, compile_features, run_all  # noqa: E402

S = 1_000_000  # µs
T = 1_000 * S
I64_MIN, I64_MAX, I32_MIN, I32_MAX = -2**63, 2**63 - 1, -2**31, 2**31 - 1


def test_integer_extremes_are_values_not_missing():
    """Events (1, receiver -2^63, q -2^31 at T) then (1, 5, 5 at T + 1µs): at T + 10µs the
    smallest values are the types' minimums, in a window and over the lifetime; the same for
    the maximums with the types' maximums; count_distinct counts each extreme once."""
    plan = compile_features("receiver: int64  q: int32", """
    min_r: int64? = min(ev.receiver)
    min_r_1h: int64? = min(ev.receiver, 1h)
    min_q: int32? = min(ev.q)
    min_q_1h: int32? = min(ev.q, 1h)
    max_r: int64? = max(ev.receiver, 1h)
    max_q: int32? = max(ev.q)
    distinct_r: int64 = count_distinct(ev.receiver)
    first_r: int64? = first(ev.receiver, 1h)
    last_q: int32? = last(ev.q)""")
    events = [dict(id=1, ts=T, receiver=I64_MIN, q=I32_MIN), dict(id=1, ts=T + 1, receiver=5, q=5),
              dict(id=2, ts=T, receiver=I64_MAX, q=I32_MAX), dict(id=2, ts=T + 1, receiver=5, q=5),
              dict(id=2, ts=T + 2, receiver=I64_MIN, q=I32_MIN)]
    spine = [dict(id=1, ts=T + 10), dict(id=2, ts=T + 10), dict(id=2, ts=T + 2)]
    check(run_all(plan, events, spine), {
        "min_r": [I64_MIN, I64_MIN, 5], "min_r_1h": [I64_MIN, I64_MIN, 5],
        "min_q": [I32_MIN, I32_MIN, 5], "min_q_1h": [I32_MIN, I32_MIN, 5],
        "max_r": [5, I64_MAX, I64_MAX], "max_q": [5, I32_MAX, I32_MAX],
        "distinct_r": [2, 3, 2], "first_r": [I64_MIN, I64_MAX, I64_MAX], "last_q": [5, I32_MIN, 5]})


def test_empty_string_and_epoch_are_values():
    """"" is the smallest string and the epoch (0) an ordinary time: min, first and last return
    them; a null is skipped.  Rows of id 1 by time: ("", 0), (null, null), ("b", 5s)."""
    plan = compile_features("s: string?  at: timestamp?", """
    min_s: string? = min(ev.s)
    max_s: string? = max(ev.s, 1h)
    first_s: string? = first(ev.s)
    last_s: string? = last(ev.s, 1h)
    min_at: timestamp? = min(ev.at)
    max_at: timestamp? = max(ev.at, 1h)
    first_at: timestamp? = first(ev.at)
    distinct_s: int64 = count_distinct(ev.s)""")
    events = [dict(id=1, ts=T, s="", at=0), dict(id=1, ts=T + 1, s=None, at=None),
              dict(id=1, ts=T + 2, s="b", at=5 * S), dict(id=2, ts=T, s="", at=0)]
    spine = [dict(id=1, ts=T + 2), dict(id=1, ts=T + 3), dict(id=2, ts=T + 1)]
    check(run_all(plan, events, spine), {
        "min_s": ["", "", ""], "max_s": ["", "b", ""], "first_s": ["", "", ""], "last_s": ["", "b", ""],
        "min_at": [0, 0, 0], "max_at": [0, 5 * S, 0], "first_at": [0, 0, 0], "distinct_s": [1, 2, 1]})


def test_strings_are_ordered_by_code_point():
    """min/max compare strings as Python does (code points): "Z" (U+005A) < "a" < "ab" <
    "é" (U+00E9) < "😀" (U+1F600), whatever order they arrive in."""
    plan = compile_features("s: string", """
    lo: string? = min(ev.s)
    hi: string? = max(ev.s)
    lo_1h: string? = min(ev.s, 1h)
    hi_1h: string? = max(ev.s, 1h)""")
    words = ["é", "ab", "😀", "Z", "a"]
    events = [dict(id=1, ts=T + j, s=w) for j, w in enumerate(words)]
    spine = [dict(id=1, ts=T + 2), dict(id=1, ts=T + 5)]
    # before T + 2: "é", "ab"; before T + 5: all five
    check(run_all(plan, events, spine), {"lo": ["ab", "Z"], "hi": ["é", "😀"], "lo_1h": ["ab", "Z"],
                                         "hi_1h": ["é", "😀"]})


def test_nan_is_a_value_that_poisons_arithmetic_and_extremes():
    """NaN is a value, not a null: count counts it, last returns it, and sum, mean, variance,
    min and max of a window holding it are NaN.  Rows of id 1: 1.0, NaN, null, 4.0 at T..T+3;
    the 1h window and the lifetime both hold 1, NaN, 4 at T + 4; at T + 1 only 1.0."""
    plan = compile_features("x: float64?", """
    n: int64 = count(ev.x)
    s: float64 = sum(ev.x, 1h)
    m: float64? = mean(ev.x)
    v: float64? = variance(ev.x, 1h)
    lo: float64? = min(ev.x, 1h)
    hi: float64? = max(ev.x)
    last_x: float64? = last(ev.x, 1h)""")
    nan = math.nan
    events = [dict(id=1, ts=T, x=1.0), dict(id=1, ts=T + 1, x=nan), dict(id=1, ts=T + 2, x=None),
              dict(id=1, ts=T + 3, x=4.0)]
    spine = [dict(id=1, ts=T + 1), dict(id=1, ts=T + 3), dict(id=1, ts=T + 4)]
    check(run_all(plan, events, spine), {
        "n": [1, 2, 3], "s": [1.0, nan, nan], "m": [1.0, nan, nan], "v": [None, nan, nan],
        "lo": [1.0, nan, nan], "hi": [1.0, nan, nan], "last_x": [1.0, nan, 4.0]})


def test_overflowing_sums_are_infinite_and_never_null():
    """Three amounts of 1.7e308 sum to 5.1e308, beyond float64: +inf (declared float64, never
    null); their mean is 1.7e308.  +inf and -inf together sum to NaN; one -inf gives -inf."""
    plan = compile_features("amount: float64", """
    s: float64 = sum(ev.amount, 1h)
    m: float64? = mean(ev.amount, 1h)
    life: float64 = sum(ev.amount)""")
    big = 1.7e308
    events = [dict(id=1, ts=T + j, amount=big) for j in range(3)]
    events += [dict(id=2, ts=T, amount=math.inf), dict(id=2, ts=T + 1, amount=-math.inf),
               dict(id=3, ts=T, amount=-big), dict(id=3, ts=T + 1, amount=-math.inf)]
    spine = [dict(id=1, ts=T + 3), dict(id=1, ts=T + 2), dict(id=2, ts=T + 2), dict(id=3, ts=T + 2)]
    inf = math.inf
    check(run_all(plan, events, spine), {
        "s": [inf, inf, math.nan, -inf], "m": [big, big, math.nan, -inf], "life": [inf, inf, math.nan, -inf]})


def test_integer_sums_wrap_and_their_means_and_variances_are_exact():
    """int64 sums wrap around like int64 arithmetic (rule 11): three values of 2^62 sum to
    3 * 2^62 - 2^64 = -2^62, but their mean is 2^62.  2^62 and 2^62 + 1 (beyond 2^53, not exact
    as floats) have variance 0.5; three equal values of 0.1 have variance exactly 0."""
    plan = compile_features("i: int64?  x: float64?", """
    s: int64 = sum(ev.i, 1h)
    m: float64? = mean(ev.i, 1h)
    v: float64? = variance(ev.i, 1h)
    vx: float64? = variance(ev.x, 1h)""")
    big = 2**62
    events = [dict(id=1, ts=T + j, i=big, x=0.1) for j in range(3)]
    events += [dict(id=2, ts=T, i=big, x=None), dict(id=2, ts=T + 1, i=big + 1, x=None)]
    spine = [dict(id=1, ts=T + 3), dict(id=2, ts=T + 2)]
    check(run_all(plan, events, spine), {"s": [-big, 2 * big + 1 - 2**64], "m": [float(big), float(big)],
                                         "v": [0.0, 0.5], "vx": [0.0, None]})


def test_variance_beyond_the_float_range_is_infinite():
    """1e300 and -1e300: the exact variance, 2e600, is beyond float64, so +inf (not NaN), in a
    window and over the lifetime; stddev is +inf too."""
    plan = compile_features("x: float64", """
    v: float64? = variance(ev.x)
    v1h: float64? = variance(ev.x, 1h)
    sd: float64? = stddev(ev.x)""")
    events = [dict(id=1, ts=T, x=1e300), dict(id=1, ts=T + 1, x=-1e300)]
    inf = math.inf
    check(run_all(plan, events, [dict(id=1, ts=T + 2)]), {"v": [inf], "v1h": [inf], "sd": [inf]})


def test_variance_of_values_with_an_infinity_is_nan():
    """Two +inf then 1.0 (semantics: the variance of values that include an infinity is NaN),
    in a window and over the lifetime, also once the infinities were evicted into the lifetime
    state (the replay evicts rows older than the 10s window)."""
    plan = compile_features("x: float64", """
    v10: float64? = variance(ev.x, 10s)
    v: float64? = variance(ev.x)""")
    events = [dict(id=1, ts=T, x=math.inf), dict(id=1, ts=T, x=math.inf), dict(id=1, ts=T + 2 * S, x=1.0)]
    nan = math.nan
    check(run_all(plan, events, [dict(id=1, ts=T + 1), dict(id=1, ts=T + 3 * S), dict(id=1, ts=T + 30 * S)]),
          {"v10": [nan, nan, None], "v": [nan, nan, nan]})
