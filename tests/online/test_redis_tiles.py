"""The Redis store's per-entity lifetime state (docs/online.md, "Redis store"): a hot entity with
30-day and lifetime windows, pushed over many retentions, answers bit for bit as the embedded
store fed the same pushes, while a read fetches the state plus the rows since its cutoff instead
of the entity's whole history.

Float values of mixed magnitudes and signs make variance moments and sums depend on how rows are
grouped into eviction steps, so equal bits check that reads fold in the embedded store's steps.
Exact counts, extremes and first/last values are also checked against a plain recount of the
pushed rows (docs/semantics.md: windows [t - w, t), rows strictly before t).
"""

from __future__ import annotations

import itertools
import math
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "offline"))

from redis_fixture import redis_server  # noqa: F401

from astra.online import Store

S = 1_000_000
H = 3600 * S
D = 24 * H
T0 = 1_700_000_000_000_000
FEATURES = """
    s30: float64 = sum(ev.amount, 30d)
    m30: float64? = mean(ev.amount, 30d)
    v30: float64? = variance(ev.amount, 30d)
    mx30: float64? = max(ev.amount, 30d)
    c30: int64 = count(ev, 30d)
    c: int64 = count(ev)
    s: float64 = sum(ev.amount)
    m: float64? = mean(ev.amount)
    v: float64? = variance(ev.amount)
    mn: float64? = min(ev.amount)
    big: int64? = max(ev.n)
    ns: int64 = sum(ev.n)
    lo_cat: string? = min(ev.cat)
    first_cat: string? = first(ev.cat)
    last_cat: string? = last(ev.cat)
    recent: list<string> = last_k(ev.cat, 3)
"""
_ids = itertools.count()


@pytest.fixture(scope="module")
def plan():
    from agg_engines import compile_features

    return compile_features("amount: float64  cat: string  n: int64?", FEATURES)


def identical(a: object, b: object) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def _redis(server, plan, prefix: str, **kw):
    from astra.online.redis_store import RedisStore

    return RedisStore(plan, server.url, prefix=prefix, **kw)


def _history(rng: random.Random, days: int) -> list[dict]:
    """A hot entity (id 1: a row every ~3 h for `days` days), a warm one (id 2: a row every
    ~2 days) and cold ones (ids 3..5: a few rows in the first week only)."""
    rows = []
    t = T0
    while t < T0 + days * D:
        t += rng.randint(1, 6 * H)
        amount = rng.choice([1e-3, 1.0, 1e3, 1e6]) * rng.random() * rng.choice([1, 1, -1])
        rows.append({"id": 1, "ts": t, "amount": amount, "cat": rng.choice("pqrstu"), "n": rng.randint(-9, 9)})
        if rng.random() < 0.06:
            rows.append({"id": 2, "ts": t, "amount": rng.random(), "cat": rng.choice("ab"), "n": 3 * 10**12})
    for i in (3, 4, 5):
        for _ in range(3):
            rows.append({"id": i, "ts": T0 + rng.randint(0, 7 * D), "amount": rng.random(), "cat": "zz",
                         "n": None, })
    rows.sort(key=lambda r: r["ts"])
    return rows


def _recount(rows: list[dict], entity: int, t: int) -> dict:
    """The exact outputs a plain reading of the pushed rows gives (windows [t - 30d, t))."""
    mine = [r for r in rows if r["id"] == entity and r["ts"] < t]
    recent = [r for r in mine if r["ts"] >= t - 30 * D]
    return {"c": len(mine), "c30": len(recent),
            "mn": min((r["amount"] for r in mine), default=None),
            "mx30": max((r["amount"] for r in recent), default=None),
            "lo_cat": min((r["cat"] for r in mine), default=None),
            "first_cat": mine[0]["cat"] if mine else None, "last_cat": mine[-1]["cat"] if mine else None,
            "recent": [r["cat"] for r in mine[-3:]][::-1],
            "big": max((r["n"] for r in mine if r["n"] is not None), default=None)}


@pytest.mark.parametrize("lateness", [0, 6 * H])
def test_hot_entity_matches_embedded_store_bit_for_bit(redis_server, plan, lateness) -> None:  # noqa: F811
    """Rows pushed in time order over 200 days (about 50 eviction steps of a 30-day retention),
    through two replicas in turn; every few pushes every entity is asked, one at a time and in a
    batch: the Redis answers equal the embedded store's bit for bit and a recount of the rows."""
    rng = random.Random(11 + lateness)
    rows = _history(rng, 200)
    local = Store(plan, allowed_lateness=lateness)
    prefix = f"tiles{next(_ids)}"
    a, b = _redis(redis_server, plan, prefix, allowed_lateness=lateness), \
        _redis(redis_server, plan, prefix, allowed_lateness=lateness)
    ents = [{"id": i} for i in (1, 2, 3, 4, 5, 6)]
    i = asked = 0
    while i < len(rows):
        batch = rows[i:i + rng.randint(1, 5)]
        i += len(batch)
        local.push("ev", batch)
        (a if i % 2 else b).push("ev", batch)
        if i % 23 and i < len(rows):
            continue
        t = batch[-1]["ts"] + 1
        want = local.get("svc@v1", ents, at=t).rows()
        for store in (a, b):
            got = store.get("svc@v1", ents, at=t).rows()
            for g, w in zip(got, want):
                bad = {k: (g[k], w[k]) for k in w if not identical(g[k], w[k])}
                assert not bad, f"at push {i}: redis vs embedded {bad}"
        one = b.get("svc@v1", [{"id": 1}], at=t).rows()[0]
        assert all(identical(one[k], want[0][k]) for k in want[0])
        for e, w in zip((1, 2, 3), want):
            for k, v in _recount(rows[:i], e, t).items():
                assert identical(w[k], v) or (isinstance(v, list) and w[k] == v), (e, k, w[k], v)
        asked += 1
    assert asked > 20
    assert a.states_written + b.states_written > 0  # reads folded states forward and wrote them back
    a.clear()


def test_a_read_fetches_the_state_and_recent_rows_only(redis_server, plan) -> None:  # noqa: F811
    """After 400 days of a hot entity, a read fetches the entity's state and the rows since its
    cutoff (about one retention plus a step), not the 400 days of rows Redis still holds; a new
    replica (nothing in its process) answers the same from the state another one wrote."""
    rows = [r for r in _history(random.Random(5), 400) if r["id"] == 1]
    prefix = f"tiles{next(_ids)}"
    red = _redis(redis_server, plan, prefix)
    local = Store(plan)
    for j in range(0, len(rows), 20):
        red.push("ev", rows[j:j + 20])
        local.push("ev", rows[j:j + 20])
    t = rows[-1]["ts"] + 1
    first = red.get("svc@v1", [{"id": 1}], at=t).rows()
    assert red.states_written == 1
    (key,) = [k for k in red.redis.scan_iter(match=f"{prefix}:r:*") if b":s:" not in k and not k.endswith(b":v")]
    held = sum(len(m) for m in red.redis.zrange(key, 0, -1))
    assert red.last_fetch_bytes == held  # no state yet: every row, folded in every step since
    red.entity_tables.clear()  # else the tables of the first read answer, fetching nothing
    red.get("svc@v1", [{"id": 1}], at=t)
    fetched = red.last_fetch_bytes
    assert red.states_written == 1  # nothing newer to write
    # the rows since the state's cutoff: a retention, a step, and the 20-row chunk straddling it
    recent = sum(1 for r in rows if r["ts"] >= t - 30 * D - 30 * D // 8 - 20 * 6 * H)
    assert fetched < held * (recent + 40) / len(rows), (fetched, held, recent, len(rows))
    assert fetched < held / 5
    other = _redis(redis_server, plan, prefix)
    again = other.get("svc@v1", [{"id": 1}], at=t).rows()[0]
    want = local.get("svc@v1", [{"id": 1}], at=t).rows()[0]
    assert all(identical(again[k], want[k]) and identical(first[0][k], want[k]) for k in want)
    assert other.states_written == 0  # the state was already folded to the last cutoff
    red.clear()


def test_a_foreign_state_value_is_a_clear_error(redis_server, plan) -> None:  # noqa: F811
    """A state key holding something else (another program's value under the prefix) is refused
    with a one-line error naming the key; deleting it brings the answers back from the rows."""
    from astra.online.errors import OnlineError

    prefix = f"tiles{next(_ids)}"
    red = _redis(redis_server, plan, prefix)
    rows = [r for r in _history(random.Random(2), 90) if r["id"] == 1]
    red.push("ev", rows)
    red.push("ev", [{**rows[-1], "ts": rows[-1]["ts"] + 40 * D}])  # the cutoff moves past the rows
    t = rows[-1]["ts"] + 40 * D + 1
    want = red.get("svc@v1", [{"id": 1}], at=t).rows()
    (state,) = red.redis.scan_iter(match=f"{prefix}:r:*:s:*")
    red.redis.set(state, b"12|not json")
    red.entity_tables.clear()  # a read that loads the entity (a fresh replica): not one from held tables
    with pytest.raises(OnlineError, match="does not hold a state") as err:
        red.get("svc@v1", [{"id": 1}], at=t)
    assert "\n" not in str(err.value) and state.decode() in str(err.value)
    red.redis.delete(state)
    got = red.get("svc@v1", [{"id": 1}], at=t).rows()
    assert all(identical(g, w) for g, w in zip(got[0].values(), want[0].values()))
    assert want[0]["c"] == len(rows) + 1
    red.clear()


def test_replicas_of_other_services_keep_their_own_states(redis_server) -> None:  # noqa: F811
    """Two replicas on one namespace, one serving every service of the example project and one
    only fraud_model@v1 (another table layout): each keeps its own entity states, and both
    answer fraud_model@v1 as an embedded store of their layout fed the same pushes."""
    from astra.project import Project

    plan = Project.load(Path(__file__).resolve().parents[2] / "features").plan
    svc = "fraud_model@v1"
    prefix = f"tiles{next(_ids)}"
    wide, narrow = _redis(redis_server, plan, prefix), _redis(redis_server, plan, prefix, services=[svc])
    local_wide, local_narrow = Store(plan), Store(plan, services=[svc])
    src = plan.source("transactions")
    rng = random.Random(9)
    t = T0
    for j in range(300):
        t += rng.randint(1, 12 * H)
        row = {"user_id": 1, "merchant_id": rng.randint(1, 3), "amount": rng.random() * 100, "ts": t,
               "category": rng.choice(["food", "fuel"])}
        row = {c: row.get(c) for c, _ in src.columns}
        for s in (local_wide, local_narrow, wide if j % 2 else narrow):
            s.push("transactions", [row])
        if j % 60 == 59:
            ents = [{"user_id": 1}, {"user_id": 2}]
            for red, local in ((wide, local_wide), (narrow, local_narrow)):
                got, want = red.get(svc, ents, at=t + 1).rows(), local.get(svc, ents, at=t + 1).rows()
                for g, w in zip(got, want):
                    assert all(identical(g[k], w[k]) for k in w), (g, w)
    states = {k.rsplit(b":s:", 1)[1] for k in wide.redis.scan_iter(match=f"{prefix}:r:*:s:*")}
    assert len(states) >= 2, states  # one layout per replica (on the user table at least)
    wide.clear()


TWO_SERVICES = """
entity item { key id: int64 }
events ev for item {
    path "ev.parquet"
    time ts
    columns { id: int64  amount: float64 }
}
features wide v1 for item {
    s30: float64 = sum(ev.amount, 30d)
    v_all: float64? = variance(ev.amount)
}
features short v1 for item {
    s1: float64 = sum(ev.amount, 1d)
    v: float64? = variance(ev.amount)
    c: int64 = count(ev)
}
service all v1 { wide@v1.*  short@v1.* }
service small v1 { short@v1.* }
"""


def test_replicas_with_shorter_windows_evict_on_every_push(redis_server, tmp_path) -> None:  # noqa: F811
    """A replica serving only a service with 1-day windows evicts its tables much sooner than
    one serving 30-day windows too.  Every push, through either replica, moves both replicas'
    cutoffs (each registers its own in the namespace), so each has the horizon and the answers
    of an embedded store of its services fed every push."""
    from astra.compiler import compile_project
    from astra.diagnostics import render_all

    (tmp_path / "p.feat").write_text(TWO_SERVICES)
    result = compile_project(tmp_path, lock="ignore")
    assert result.ok, render_all(result.diagnostics, result.sources)
    plan = result.plan
    prefix = f"tiles{next(_ids)}"
    big, small = _redis(redis_server, plan, prefix), _redis(redis_server, plan, prefix, services=["small@v1"])
    local_big, local_small = Store(plan), Store(plan, services=["small@v1"])
    for s in (big, small):  # each replica answers once before any push (as a server starts)
        s.get("small@v1", [{"id": 1}], at=T0)
    rng = random.Random(8)
    t = T0
    for j in range(400):
        t += rng.randint(1, 8 * H)
        row = [{"id": 1 + j % 2, "ts": t, "amount": rng.choice([1e-3, 1.0, 1e6]) * rng.random()}]
        local_big.push("ev", row)
        local_small.push("ev", row)
        (big if j % 5 else small).push("ev", row)  # most pushes through the 30-day replica
        if j % 25 == 24:
            ents = [{"id": 1}, {"id": 2}]
            assert small.horizon == local_small.horizon and big.horizon == local_big.horizon
            for red, local, svc in ((big, local_big, "all@v1"), (small, local_small, "small@v1"),
                                    (big, local_big, "small@v1")):
                got, want = red.get(svc, ents, at=t + 1).rows(), local.get(svc, ents, at=t + 1).rows()
                for g, w in zip(got, want):
                    assert all(identical(g[k], w[k]) for k in w), (svc, g, w)
    big.clear()


def test_a_read_before_any_row_leaves_the_namespace_empty(redis_server, plan, tmp_path) -> None:  # noqa: F811
    """A replica answering before anything was loaded registers its cutoffs, but the namespace
    still counts as empty: materialize loads it (a server started with --data-root after another
    one already answered)."""
    import polars as pl

    prefix = f"tiles{next(_ids)}"
    reader = _redis(redis_server, plan, prefix)
    assert reader.get("svc@v1", [{"id": 1}], at=T0).rows()[0]["c"] == 0
    assert reader.is_empty()
    rows = [r for r in _history(random.Random(1), 20) if r["id"] in (1, 2)]
    pl.DataFrame(rows, schema={"id": pl.Int64, "ts": pl.Int64, "amount": pl.Float64, "cat": pl.String,
                               "n": pl.Int64}).with_columns(pl.col("ts").cast(pl.Datetime("us"))) \
        .write_parquet(tmp_path / "ev.parquet")
    loader = _redis(redis_server, plan, prefix)
    loader.materialize(tmp_path)
    assert not reader.is_empty()
    t = rows[-1]["ts"] + 1
    assert reader.get("svc@v1", [{"id": 1}], at=t).rows()[0]["c"] == sum(r["id"] == 1 for r in rows)
    reader.clear()


def test_a_namespace_without_cutoff_history_still_answers(redis_server, plan) -> None:  # noqa: F811
    """A namespace written before cutoffs were registered and kept in order (no `hcut:`/`cuts:`
    fields): reads evict once to the current cutoff, as they did, and the exact outputs are those
    of a recount; the next push registers the cutoffs and starts their history."""
    prefix = f"tiles{next(_ids)}"
    red = _redis(redis_server, plan, prefix)
    rows = [r for r in _history(random.Random(6), 120) if r["id"] in (1, 2)]
    for j in range(0, len(rows) - 1, 10):
        red.push("ev", rows[j:min(j + 10, len(rows) - 1)])
    old = [f for f in red.redis.hkeys(red.meta_key) if f.startswith((b"hcut:", b"cuts:"))]
    assert old
    red.redis.hdel(red.meta_key, *old)
    fresh = _redis(redis_server, plan, prefix)  # a new process: registers its cutoffs on its first read
    t = rows[-2]["ts"] + 1
    got = fresh.get("svc@v1", [{"id": 1}, {"id": 2}], at=t).rows()
    for e, g in zip((1, 2), got):
        for k, v in _recount(rows[:-1], e, t).items():
            assert identical(g[k], v) or (isinstance(v, list) and g[k] == v), (e, k, g[k], v)
    fresh.push("ev", [{**rows[-1], "ts": t + 40 * D}])  # moves the cutoff: a history from the old one on
    hist = {f: v for f, v in red.redis.hgetall(red.meta_key).items() if f.startswith(b"hcut:")}
    assert hist and all(len(v.split(b",")) == 2 for v in hist.values()), hist
    red.clear()
