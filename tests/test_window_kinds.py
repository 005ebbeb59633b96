"""Hopping, tumbling and session windows (docs/semantics.md, "Window kinds", rules W1-W5).

Each expected value below is worked out by hand from the rules and checked in the reference
interpreter, the offline engine and the online store (single-entity and batch plans); random
times then check that all engines agree with the reference."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra.compiler import compile_project
from astra.diagnostics import render_all
from astra.lang.fmt import format_text
from astra.lang.types import TIMESTAMP
from astra.plan import ir, reference
from astra.plan.explain import explain
from astra.plan.fingerprint import feature_fingerprints

sys.path.insert(0, str(Path(__file__).parent / "offline"))  # the offline tests' helpers, also run alone
from helpers import run_engine, same

ONLINE = True
S = 1_000_000  # µs in a second
M, H, D = 60 * S, 3600 * S, 86400 * S

PROJECT = """
entity user {{ key uid: int64 }}
events ev for user {{
    path "ev.parquet"
    time ts
    columns {{ uid: int64  x: int64?  s: string? }}
}}
features g v1 for user {{
{features}
}}
service svc v1 {{ g@v1.* }}
"""


def compile_features(features: str) -> ir.Plan:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.feat").write_text(PROJECT.format(features=features))
        result = compile_project(Path(tmp), lock="ignore")
        assert result.ok, render_all(result.diagnostics, result.sources)
        return result.plan


def engines(plan: ir.Plan, events: list[dict], times: list[int]) -> dict[str, list[dict]]:
    """Each engine's outputs per query time (all queries for uid 1)."""
    names = [o.name for o in plan.service("svc", 1).outputs]
    spine = [{"uid": 1, "ts": t} for t in times]
    events = [{"uid": 1, **e} for e in events]
    out = {"reference": reference.evaluate(plan, "svc", 1, spine, {"ev": events})}
    with tempfile.TemporaryDirectory() as tmp:
        out["offline"] = run_engine(plan, "svc", 1, spine, {"ev": events}, Path(tmp),
                                    (("uid", plan.entity("user").keys[0][1]), ("ts", TIMESTAMP)))
    if ONLINE:
        out.update(_online(plan, events, spine))
    return {k: [{n: r[n] for n in names} for r in rows] for k, rows in out.items()}


def _online(plan: ir.Plan, events: list[dict], spine: list[dict]) -> dict[str, list[dict]]:
    from astra.online import Store
    from astra.online.store import SMALL

    store = Store(plan, allowed_lateness=10**15)
    store.push("ev", events)
    single = [store.get("svc@v1", [{"uid": 1}], at=q["ts"]).rows()[0] for q in spine]
    pad = max(0, SMALL + 1 - len(spine))
    batch = store.get("svc@v1", [{"uid": 1}] * (len(spine) + pad),
                      at=[q["ts"] for q in spine] + [spine[0]["ts"]] * pad).rows()[:len(spine)]
    return {"online single": single, "online batch": batch}


def check(results: dict[str, list[dict]], expected: dict[str, list]) -> None:
    for engine, rows in results.items():
        for name, want in expected.items():
            got = [r[name] for r in rows]
            assert got == want, f"{engine}: {name} = {got}, expected {want}"


# --------------------------------------------------------------------------- hopping and tumbling

T0 = 1_700_000_000 * S // D * D  # a midnight (UTC)


def test_hopping_window_ends_at_the_latest_hop_boundary():
    plan = compile_features("""
    n: int64 = count(ev, 2h every 1h)
    s: int64 = sum(ev.x, 2h every 1h)
    slide: int64 = count(ev, 2h)
""")
    events = [{"ts": T0 - 90 * M, "x": 1},   # 22:30 the day before
              {"ts": T0 - 1, "x": 2},        # just before midnight
              {"ts": T0, "x": 4},            # exactly at the boundary
              {"ts": T0 + 30 * M, "x": 8}]   # 00:30
    times = [T0,            # h = T0: [T0 - 2h, T0) holds the first two rows (rule W1: t = h is sliding)
             T0 + 59 * M,   # h = T0 still: rows at T0 and T0+30m are visible but after h
             T0 + H,        # h = T0 + 1h: [T0 - 1h, T0 + 1h) holds rows 2, 3, 4
             T0 + 3 * H - 1,  # h = T0 + 2h: [T0, T0 + 2h) holds rows 3 and 4
             T0 + 3 * H]    # h = T0 + 3h: [T0 + 1h, T0 + 3h) is empty
    check(engines(plan, events, times), {
        "n": [2, 2, 3, 2, 0],
        "s": [3, 3, 14, 12, 0],
        "slide": [2, 3, 3, 0, 0],
    })


def test_tumbling_window_is_the_last_complete_period():
    plan = compile_features("""
    yesterday: int64 = count(ev, tumbling 1d)
    same: int64 = count(ev, 1d every 1d)
    last_x: int64? = last(ev.x, tumbling 1d)
""")
    events = [{"ts": T0 - D, "x": 1},        # the first instant of day -1
              {"ts": T0 - 1, "x": 2},        # its last microsecond
              {"ts": T0 + 5 * H, "x": 3}]    # day 0
    times = [T0 - 1, T0, T0 + 23 * H, T0 + D, T0 + 2 * D]
    check(engines(plan, events, times), {
        "yesterday": [0, 2, 2, 1, 0],
        "same": [0, 2, 2, 1, 0],
        "last_x": [None, 2, 2, 3, None],
    })
    fps = feature_fingerprints(plan)
    assert fps["g@v1.yesterday"] == fps["g@v1.same"]  # `tumbling 1d` is `1d every 1d` (rule W2)


def test_hop_boundaries_before_the_epoch_round_down():
    plan = compile_features("    n: int64 = count(ev, tumbling 1d)")
    events = [{"ts": -D - 1, "x": 1}, {"ts": -D, "x": 1}, {"ts": -1, "x": 1}]
    # t = -1µs: h = floor(-1 / 1d) * 1d = -1d, window [-2d, -1d) holds only the row at -1d - 1µs
    check(engines(plan, events, [-1, 0]), {"n": [1, 2]})


# --------------------------------------------------------------------------- sessions

def test_session_window_is_the_latest_session_open_or_closed():
    plan = compile_features("""
    n: int64 = count(ev, session 30m)
    s: int64 = sum(ev.x, session 30m)
    first_x: int64? = first(ev.x, session 30m)
    d: int64 = count_distinct(ev.s, session 30m)
""")
    events = [{"ts": T0, "x": 1, "s": "a"},
              {"ts": T0 + 10 * M, "x": 2, "s": "b"},          # 10m later: same session
              {"ts": T0 + 40 * M, "x": 4, "s": "a"},          # exactly 30m later: a new session (W3)
              {"ts": T0 + 40 * M, "x": None, "s": None},      # same time: same session; null x still counts as a row
              {"ts": T0 + 69 * M + 59 * S, "x": 8, "s": "a"}]  # 29m59s later: same session
    times = [T0,                  # no visible row: empty
             T0 + 10 * M,         # session {T0}
             T0 + 10 * M + 1,     # session {T0, T0+10m}
             T0 + 39 * M,         # the first session has ended (closed) but is still the latest
             T0 + 40 * M + 1,     # the second session: rows at 40m
             T0 + 5 * H]          # long after: the latest (closed) session, three rows
    check(engines(plan, events, times), {
        "n": [0, 1, 2, 2, 2, 3],
        "s": [0, 1, 3, 3, 4, 12],
        "first_x": [None, 1, 1, 1, 4, 4],
        "d": [0, 1, 2, 2, 1, 1],
    })


def test_sessions_are_formed_from_the_rows_the_filter_keeps():
    plan = compile_features("""
    big: int64 = count(ev where x > 5, session 30m)
    all_rows: int64 = count(ev, session 30m)
""")
    # the small rows in between would join the big ones into one session; filtered out, they do not
    events = [{"ts": T0, "x": 10}, {"ts": T0 + 20 * M, "x": 1}, {"ts": T0 + 40 * M, "x": 1},
              {"ts": T0 + 60 * M, "x": 10}]
    check(engines(plan, events, [T0 + 2 * H]), {"big": [1], "all_rows": [4]})


# --------------------------------------------------------------------------- the language

def test_window_kinds_round_trip_through_the_formatter():
    text = PROJECT.format(features="""
    a: int64 = count(ev, 7d every 1h)
    b: int64 = count(ev, tumbling 1d)
    c: int64 = count(ev where x > 1, session 30m)
    session: int64 = a + 1
""")
    once = format_text(text)
    assert "count(ev, 7d every 1h)" in once and "count(ev, tumbling 1d)" in once
    assert "count(ev where x > 1, session 30m)" in once and "session: int64 = a + 1" in once
    assert format_text(once) == once


def test_explain_writes_the_effective_window_out():
    plan = compile_features("""
    a: int64 = count(ev, 7d every 1h)
    b: int64 = count(ev, session 30m)
""")
    a, b = (explain(plan, plan.feature(f"g@v1.{n}")) for n in "ab")
    assert "count(ev, 7d every 1h)" in a and "[h - 7d, h), h = t rounded down to a multiple of 1h" in a
    assert "count(ev, session 30m)" in b and "[s, t), s = the start of the latest session" in b


def test_catalog_reach_of_each_kind():
    """The catalog's effective window is the span of event time a value can depend on: a hopping
    window reaches back its width plus its hop, a session without bound."""
    from astra.catalog.windows import effective_window, inputs

    plan = compile_features("""
    a: int64 = count(ev, 2h every 1h)
    b: int64 = count(ev, session 30m)
    c: int64 = count(ev, tumbling 1d)
""")
    a, b, c = (plan.feature(f"g@v1.{n}") for n in "abc")
    assert effective_window(plan, a) == "[t - 3h, t)"
    assert effective_window(plan, b) == "(-inf, t)"
    assert effective_window(plan, c) == "[t - 2d, t)"
    assert "the last complete period" in inputs(c)[0][1]


def test_sliding_fingerprints_do_not_see_the_new_fields():
    plan = compile_features("    a: int64 = count(ev, 7d)")
    agg = next(n for n in ir.walk(plan.features[0].expr) if isinstance(n, ir.Aggregate))
    from astra.plan.serialize import to_data

    assert "hop" not in to_data(agg) and "gap" not in to_data(agg)
    hopping = compile_features("    a: int64 = count(ev, 7d every 1d)")
    assert feature_fingerprints(plan) != feature_fingerprints(hopping)


# --------------------------------------------------------------------------- random times

_TIMES = st.integers(T0 - 3 * H, T0 + 3 * H).map(lambda t: t // M * M)  # whole minutes: many ties and exact gaps


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(_TIMES, st.one_of(st.none(), st.integers(-3, 3))), max_size=12),
       queries=st.lists(_TIMES, min_size=1, max_size=6))
def test_engines_agree_with_the_reference_on_random_times(rows, queries):
    plan = _random_plan()
    events = [{"ts": t, "x": x, "s": None if x is None else str(x % 2)} for t, x in rows]
    got = engines(plan, events, queries)
    want = got.pop("reference")
    for engine, rows_ in got.items():
        for r, w in zip(rows_, want):
            assert all(same(r[k], w[k]) for k in w), f"{engine}: {r} != reference {w}"


_PLAN: list[ir.Plan] = []


def _random_plan() -> ir.Plan:
    if not _PLAN:
        _PLAN.append(compile_features("""
    a: int64 = count(ev, 1h every 20m)
    b: int64 = sum(ev.x, tumbling 1h)
    c: int64? = max(ev.x, 2h every 30m)
    d: int64 = count(ev.x, session 20m)
    e: int64 = sum(ev.x where x > 0, session 15m)
    f: int64 = count_distinct(ev.s, session 20m)
    g: int64? = last(ev.x, session 20m)
    h: int64 = count_distinct(ev.s, 1h every 15m)
"""))
    return _PLAN[0]


@pytest.mark.parametrize("window", ["1h every 2h", "session 0s"])
def test_bad_windows_are_refused(window):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.feat").write_text(PROJECT.format(features=f"    a: int64 = count(ev, {window})"))
        result = compile_project(Path(tmp), lock="ignore")
    assert not result.ok
    assert {d.code for d in result.diagnostics} == {"E0308" if "every" in window else "E0309"}


def test_online_pushes_eviction_and_restart_keep_window_kinds():
    """Fed in batches, row by row in time order with old rows evicted (a session's table is kept
    whole, a hopping window's rows for window + hop: rule W5), and after a save and load."""
    import agg_engines

    plan = agg_engines.compile_features("x: int64?", """
    hop: int64 = count(ev, 2h every 1h)
    tumble: int64? = max(ev.x, tumbling 1h)
    sess: int64 = sum(ev.x, session 30m)
    sess_n: int64 = count(ev where x > 0, session 30m)
    slide: int64 = count(ev, 1h)
""")
    # an entity's rows 14 minutes apart: one session 7 hours long, far beyond the 3h of the hopping window
    events = [{"id": k % 2, "ts": T0 + k * 7 * M, "x": (k * 7) % 5 - 1} for k in range(60)]
    spine = [{"id": i, "ts": T0 + k * 41 * M + i} for k in range(12) for i in (0, 1)]
    results = agg_engines.run_all(plan, events, spine)
    want = results.pop("reference")
    for engine, rows in results.items():
        assert rows == want, f"{engine}: {rows} != reference {want}"
    assert any(r["sess"] for r in want) and any(r["hop"] for r in want)  # the case is not vacuous


@pytest.mark.parametrize("bits", [8, 63])
def test_offline_sessions_and_hops_with_rank_coded_times(monkeypatch, bits):
    """With the key space narrowed to 8 bits, times are replaced by their rank (the session
    gaps are then measured on the raw times); the answers are the reference's either way."""
    import astra.offline.keys as keys

    monkeypatch.setattr(keys, "_BITS", bits)
    seen = []
    init = keys.KeySpace.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.append(self.t_uniq is not None)

    monkeypatch.setattr(keys.KeySpace, "__init__", spy)
    monkeypatch.setattr(sys.modules[__name__], "ONLINE", False)
    plan = _random_plan()
    events = [{"ts": T0 + k * 11 * M + (k % 3) * S, "x": k % 4 - 1, "s": str(k % 3)} for k in range(30)]
    got = engines(plan, events, [T0 + k * 23 * M for k in range(16)])
    assert got["offline"] == got["reference"]
    assert any(seen) == (bits == 8)


def test_online_answers_hold_until_valid_until():
    """A hopping answer holds until the next hop boundary (not longer), a session answer until
    the next row becomes visible; at the reported bound the answer is still the same and one
    microsecond later a boundary or a row has moved it."""
    from astra.online import Store

    plan = compile_features("""
    hop: int64 = count(ev, 2h every 1h)
    sess: int64 = count(ev, session 30m)
""")
    store = Store(plan, allowed_lateness=10**15)
    store.push("ev", [{"uid": 1, "ts": T0 + k * 25 * M, "x": k, "s": None} for k in range(8)])

    def ask(t):
        got = store.get("svc@v1", [{"uid": 1}], at=t, validity=True)
        return got.tuples()[0], got.valid_until[0]

    # rows every 25 minutes from T0 to T0 + 175m: until the next row becomes visible (it is at t
    # itself for the third query), or the next hop boundary once no row is left
    cases = [(T0 + 5 * M, T0 + 25 * M), (T0 + 61 * M, T0 + 75 * M), (T0 + 100 * M, T0 + 100 * M),
             (T0 + 5 * H, T0 + 6 * H - 1)]
    for t0, want in cases:
        value, until = ask(t0)
        assert until == want
        assert ask(until)[0] == value
        if until < T0 + 6 * H - 1:  # a row enters at until + 1µs: the session grows
            assert ask(until + 1)[0] != value


def test_huge_hops_keep_retention_in_int64():
    """A hopping window as long as int64 allows, hopping as far: its retention (window + hop)
    would pass int64; it is capped, and every engine still answers (an empty window here)."""
    plan = compile_features("    a: int64 = count(ev, 100000000d every 100000000d)")
    check(engines(plan, [{"ts": T0, "x": 1}], [T0 + 1]), {"a": [0]})
