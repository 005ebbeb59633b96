"""approx_count_distinct and approx_percentile in every engine (the reference interpreter, offline,
both online plans however the store was fed): the same answers to the bit, within the documented
guarantees of the exact ones (docs/semantics.md), with nulls, NaN, infinities and extremes."""

from __future__ import annotations

import math
import random

import pytest
from agg_engines import check, compile_features, run_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra.ops import sketches

S = 1_000_000  # µs
H = 3600 * S
T = 1_000 * H
I64_MIN, I64_MAX = -2**63, 2**63 - 1


def bucket_value(x: float) -> float:
    """What approx_percentile answers for a window whose order statistic is x (docs/semantics.md):
    x = m 2^e with 1 <= m < 2 lies in the step (2^e (1 + (j - 1)/50), 2^e (1 + j/50)] with
    j = ceil(50 (m - 1)) (for j = 0, x = 2^e: the last step below it, (0.99 * 2^e, 2^e]); the
    answer is the harmonic mean of the step's bounds."""
    if x == 0 or math.isinf(x) or math.isnan(x):
        return x
    m, e = abs(x), 0
    while m >= 2:
        m, e = m / 2, e + 1
    while m < 1:
        m, e = m * 2, e - 1
    j = math.ceil(50 * (m - 1))
    a, b = (1 + (j - 1) / 50, 1 + j / 50) if j else (0.99, 1.0)
    return math.copysign(2 * a * b / (a + b) * 2.0 ** e, x)


COLUMNS = "n: int64?  s: string?  b: bool?  at: timestamp?  x: float64?  f: float32?"
FEATURES = """
    acd_n: int64 = approx_count_distinct(ev.n)
    acd_n_1h: int64 = approx_count_distinct(ev.n, 1h)
    acd_s: int64 = approx_count_distinct(ev.s, 1h)
    acd_b: int64 = approx_count_distinct(ev.b)
    acd_at: int64 = approx_count_distinct(ev.at, 2h)
    p50_x: float64? = approx_percentile(ev.x, 0.5)
    p0_x_1h: float64? = approx_percentile(ev.x, 0, 1h)
    p99_x_2h: float64? = approx_percentile(ev.x, 0.99, 2h)
    p90_n: float64? = approx_percentile(ev.n, 0.9, 1h)
    p25_f: float64? = approx_percentile(ev.f, 0.25)"""


def test_small_windows_in_every_engine():
    """Rows of item 1 by time (hours after T): 0: n 5, s "a", x 3.0; 0.5: n 5, s "é", x -8.0;
    1.5: n -2^63, s null, x null; 2.5: n 7, s "a", x 0.0.  Item 2: one row at 0 with every value
    null.  Below 50 distinct values the estimate is the count here; percentiles answer the bucket
    value of the order statistic of rank floor(q (n - 1)) + 1."""
    plan = compile_features(COLUMNS, FEATURES)
    rows = [(0, 5, "a", True, 10, 3.0, 1.5), (H // 2, 5, "é", False, 20, -8.0, 2.5),
            (3 * H // 2, I64_MIN, None, True, 10, None, None), (5 * H // 2, 7, "a", None, 30, 0.0, -1.0)]
    events = [dict(id=1, ts=T + t, n=n, s=s, b=b, at=at, x=x, f=f) for t, n, s, b, at, x, f in rows]
    events.append(dict(id=2, ts=T, n=None, s=None, b=None, at=None, x=None, f=None))
    spine = [dict(id=1, ts=T + H), dict(id=1, ts=T + 3 * H), dict(id=2, ts=T + H), dict(id=1, ts=T)]
    got = run_all(plan, events, spine)
    v = bucket_value
    check(got, {
        # at T+1h: rows 0 and 0.5 are visible; at T+3h: all four (1h window: 2.5; 2h: 1.5, 2.5)
        "acd_n": [1, 3, 0, 0], "acd_n_1h": [1, 1, 0, 0], "acd_s": [2, 1, 0, 0], "acd_b": [2, 2, 0, 0],
        "acd_at": [2, 2, 0, 0],
        # x at T+1h: 3, -8; at T+3h: -8, 0, 3 (median rank 2: 0.0); 1h and 2h windows: 0.0 (nulls skipped)
        "p50_x": [v(-8.0), 0.0, None, None], "p0_x_1h": [v(-8.0), 0.0, None, None],
        "p99_x_2h": [v(-8.0), 0.0, None, None],  # two values: rank floor(0.99) + 1 = 1
        # n in the 1h window at T+1h: 5, 5 -> 5; at T+3h: 7
        "p90_n": [v(5.0), v(7.0), None, None],
        # f (float32 values, exact in float64) lifetime at T+3h: -1, 1.5, 2.5: rank floor(0.5) + 1 = 1
        "p25_f": [v(1.5), v(-1.0), None, None]}, rtol=1e-12)
    same_in_every_engine(got)


def same_in_every_engine(got: dict[str, list[dict]]) -> None:
    """Every engine's answers equal the reference's to the bit."""
    ref = got["reference"]
    for engine, rows in got.items():
        for r, w in zip(rows, ref, strict=True):
            for name, want in w.items():
                g = r[name]
                ok = (g == want and type(g) is type(want)) or (
                    isinstance(g, float) and isinstance(want, float) and math.isnan(g) and math.isnan(want))
                assert ok, f"{engine}: {name} = {g!r}, reference {want!r}"


def test_nan_infinities_and_signed_zero():
    """A NaN in the window makes every quantile NaN; -inf and +inf are the ends; -0.0 is zero."""
    plan = compile_features("x: float64?", """
    lo: float64? = approx_percentile(ev.x, 0)
    mid: float64? = approx_percentile(ev.x, 0.5)
    hi: float64? = approx_percentile(ev.x, 1, 1h)""")
    events = [dict(id=1, ts=T, x=-math.inf), dict(id=1, ts=T + 1, x=-0.0), dict(id=1, ts=T + 2, x=math.inf),
              dict(id=2, ts=T, x=1.0), dict(id=2, ts=T + 1, x=math.nan)]
    spine = [dict(id=1, ts=T + 3), dict(id=2, ts=T + 1), dict(id=2, ts=T + 2)]
    got = run_all(plan, events, spine)
    check(got, {"lo": [-math.inf, v1 := bucket_value(1.0), math.nan], "mid": [0.0, v1, math.nan],
                "hi": [math.inf, v1, math.nan]}, rtol=1e-12)
    same_in_every_engine(got)


def test_floats_have_no_distinct_count():
    from three_engines import CompileFailed
    from three_engines import compile_features as compile_one

    with pytest.raises(CompileFailed, match="approx_count_distinct"):
        compile_one("a: int64 = approx_count_distinct(ev.x)")
    with pytest.raises(CompileFailed, match="fraction"):
        compile_one("a: float64? = approx_percentile(ev.x, 1.5)")
    with pytest.raises(CompileFailed, match="fraction"):
        compile_one("a: float64? = approx_percentile(ev.x)")
    with pytest.raises(CompileFailed, match="numeric"):
        compile_one("a: float64? = approx_percentile(ev.s, 0.5)")


def exact_windows(events, spine, column, window):
    """Each spine row's non-null values of `column` in its window (independent of the engines)."""
    out = []
    for q in spine:
        out.append([e[column] for e in events if e["id"] == q["id"] and e["ts"] < q["ts"]
                    and (window is None or e["ts"] >= q["ts"] - window) and e[column] is not None])
    return out


def random_events(rng: random.Random, n: int, ids: int) -> list[dict]:
    specials = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, -1e300]
    ints = [I64_MIN, I64_MAX, 0, -1]
    out = []
    for _ in range(n):
        x = rng.choice(specials) if rng.random() < 0.05 else rng.lognormvariate(0, 3) * rng.choice([1, -1])
        k = rng.choice(ints) if rng.random() < 0.05 else rng.randrange(-50, 400)
        out.append(dict(id=rng.randrange(ids), ts=T + rng.randrange(0, 6 * H, S),
                        n=None if rng.random() < 0.1 else k,
                        s=None if rng.random() < 0.1 else rng.choice(["", "a", "é", "😀"]) + str(rng.randrange(300)),
                        b=None if rng.random() < 0.3 else rng.random() < 0.5,
                        at=None if rng.random() < 0.1 else rng.randrange(0, 10**6) * S,
                        x=None if rng.random() < 0.1 else x, f=None if rng.random() < 0.1 else float(rng.randrange(9))))
    return out


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_random_windows_same_bits_everywhere_and_within_the_guarantees(seed):
    rng = random.Random(seed)
    events = random_events(rng, rng.randrange(0, 600), rng.randrange(1, 4))
    spine = [dict(id=rng.randrange(4), ts=T + rng.randrange(0, 7 * H)) for _ in range(12)]
    plan = compile_features(COLUMNS, FEATURES)
    got = run_all(plan, events, spine)
    same_in_every_engine(got)
    ref = got["reference"]
    for name, column, window in (("acd_n", "n", None), ("acd_n_1h", "n", H), ("acd_s", "s", H)):
        for r, vals in zip(ref, exact_windows(events, spine, column, window)):
            exact = len(set(vals))
            assert abs(r[name] - exact) <= 2 + 5 * hll_sigma(exact)
    for name, column, window, q in (("p50_x", "x", None, 0.5), ("p99_x_2h", "x", 2 * H, 0.99),
                                    ("p90_n", "n", H, 0.9)):
        for r, vals in zip(ref, exact_windows(events, spine, column, window)):
            if not vals:
                assert r[name] is None
                continue
            xs = [float(v) for v in vals]
            if any(math.isnan(v) for v in xs):
                assert math.isnan(r[name])
                continue
            exact = sorted(xs)[math.floor(q * (len(xs) - 1))]
            assert abs(r[name] - exact) <= 0.01 * abs(exact) or r[name] == exact


def sketches_se() -> float:
    return 1.04 / math.sqrt(sketches.M)


def hll_sigma(n: int) -> float:
    """The estimate's standard deviation at n distinct values: as linear counting's,
    sqrt(m (e^t - t - 1)) with t = n / m, for few values; 1.04 n / sqrt(m) for many."""
    m = sketches.M
    t = n / m
    return max(math.sqrt(m * (math.expm1(t) - t)), sketches_se() * n)


def test_large_windows_in_every_engine():
    """Thousands of distinct values per window (past the small range), one push online."""
    from three_engines import compile_features as compile_one
    from three_engines import run_all as run_three

    plan = compile_one("""
    a: int64 = approx_count_distinct(ev.n)
    b: int64 = approx_count_distinct(ev.s, 2h)
    c: float64? = approx_percentile(ev.x, 0.99)
    d: float64? = approx_percentile(ev.n, 0.5, 2h)""")
    rng = random.Random(17)
    events = [dict(uid=1, ts=T + rng.randrange(0, 4 * H), n=rng.randrange(10**9), x=rng.lognormvariate(0, 2),
                   s=str(rng.randrange(10**9))) for _ in range(8_000)]
    spine = [dict(ts=T + 4 * H), dict(ts=T + 3 * H)]
    got = run_three(plan, spine, events)
    same_in_every_engine(got)
    for r, q in zip(got["reference"], spine, strict=True):
        visible = [e for e in events if e["ts"] < q["ts"]]
        recent = [e for e in visible if e["ts"] >= q["ts"] - 2 * H]
        assert abs(r["a"] / len({e["n"] for e in visible}) - 1) < 4 * sketches_se()
        assert abs(r["b"] / len({e["s"] for e in recent}) - 1) < 4 * sketches_se()
        xs = sorted(e["x"] for e in visible)
        assert abs(r["c"] / xs[math.floor(0.99 * (len(xs) - 1))] - 1) <= 0.01
        ns = sorted(float(e["n"]) for e in recent)
        assert abs(r["d"] / ns[math.floor(0.5 * (len(ns) - 1))] - 1) <= 0.01
