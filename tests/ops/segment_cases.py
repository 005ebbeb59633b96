"""Random windows for the order, shape and decay aggregations: one entity's events with hostile
values (nulls, NaN, infinities, int64 extremes, ties in time and value), query times among and
between them, and the window each query sees, picked from the events by docs/semantics.md rules 1
and 2 alone, so a test states the expected value with an independent implementation (numpy,
scipy, sorted) over exactly those values."""

from __future__ import annotations

import math

from agg_engines import compile_features, run_all
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

H = 3_600_000_000  # one hour in µs
T0 = 1_700_000_000_000_000
COLUMNS = "x: float64?  n: int64?  s: string?"
I64_MIN, I64_MAX = -2**63, 2**63 - 1
WINDOW_HOURS = 3  # features below read `3h` windows and lifetimes

# bounded: no shrinking (a failure prints its rows), no example database
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))

FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, 1e300, -1e300, 1e-300, math.nan, math.inf, -math.inf]),
                   st.floats(-1e6, 1e6), st.integers(-5, 5).map(float))
INTS = st.one_of(st.sampled_from([0, 1, -1, 7, I64_MIN, I64_MAX, 2**62, 2**53 + 1]), st.integers(-100, 100))
STRINGS = st.sampled_from(["", "a", "b", "ab", "Z", "é", "😀"])


def events(floats=FLOATS, ints=INTS, max_size: int = 12):
    """Rows of entity 1 (some of entity 2) at whole hours 0..8 (ties in time likely), each column
    null a fifth of the time."""
    row = st.fixed_dictionaries({
        "id": st.sampled_from([1, 1, 1, 2]),
        "ts": st.integers(0, 8).map(lambda h: T0 + h * H),
        "x": st.one_of(st.none(), floats) if floats is not None else st.none(),
        "n": st.one_of(st.none(), ints) if ints is not None else st.none(),
        "s": st.one_of(st.none(), STRINGS),
    })
    return st.lists(row, max_size=max_size)


SPINE = [{"id": 1, "ts": T0 + h * H + d} for h, d in ((0, 0), (2, 0), (4, 1), (6, 0), (9, 0), (12, 0))] + \
    [{"id": 2, "ts": T0 + 9 * H}, {"id": 3, "ts": T0 + 9 * H}]


def window(rows: list[dict], query: dict, column: str, hours: int | None) -> list:
    """The non-null values of `column` the query sees (time < t, and >= t - window), in (time,
    file position) order."""
    t = query["ts"]
    seen = [r for r in rows if r["id"] == query["id"] and r["ts"] < t
            and (hours is None or r["ts"] >= t - hours * H) and r[column] is not None]
    return [r[column] for r in sorted(seen, key=lambda r: r["ts"])]  # stable: file order on ties


def timed_window(rows: list[dict], query: dict, column: str, hours: int | None) -> list[tuple]:
    """(value, time) pairs of `window`."""
    t = query["ts"]
    seen = [r for r in rows if r["id"] == query["id"] and r["ts"] < t
            and (hours is None or r["ts"] >= t - hours * H) and r[column] is not None]
    return [(r[column], r["ts"]) for r in sorted(seen, key=lambda r: r["ts"])]


_PLANS: dict[str, object] = {}


def answers(features: str, rows: list[dict], spine: list[dict] = SPINE) -> dict[str, list[dict]]:
    """Every engine's answers (reference, offline, online fed several ways) for `features`."""
    plan = _PLANS.get(features)
    if plan is None:
        plan = _PLANS[features] = compile_features(COLUMNS, features)
    return run_all(plan, rows, spine)


def each(results: dict[str, list[dict]], name: str):
    """(engine, query index, value) of feature `name` across every engine and query."""
    for engine, got in results.items():
        for j, r in enumerate(got):
            yield engine, j, r[name]


def same_float(got, want, rtol: float = 1e-9, atol: float = 0.0) -> bool:
    """Floats equal within tolerance; NaN for NaN, infinities exactly; None for None."""
    if got is None or want is None:
        return got is None and want is None
    if not isinstance(got, float):
        return False
    if math.isnan(want) or math.isinf(want):
        return (math.isnan(got) and math.isnan(want)) or got == want
    return abs(got - want) <= rtol * abs(want) + atol
