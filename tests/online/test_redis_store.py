"""The Redis online store gives the embedded store's answers, shared by every replica.

A real redis-server runs on a free loopback port (tests/redis_fixture.py); every test uses its
own key prefix.  Parity: the same rows through `RedisStore` and `Store` give identical values
(type and bits), on random plans and data and on the demo project against the offline backfill.
"""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "differential"))

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis_fixture import redis_server  # noqa: F401
from strategies_plan import Case, cases

from astra.online import Store
from astra.online.errors import HorizonError, LateRowError

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count()


def _redis_store(server, plan, **kw):
    from astra.online.redis_store import RedisStore

    return RedisStore(plan, server.url, prefix=f"t{next(_ids)}", **kw)


def identical(a: object, b: object) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def _same_rows(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in g:
            assert identical(g[k], w[k]), f"{k}: redis {g[k]!r} vs embedded {w[k]!r}"


def _visible_rows(case: Case, source: str) -> list[dict]:
    src = case.plan.source(source)
    return [r for r in case.tables[source] if r.get(src.time) is not None
            and any(all(r.get(c) is not None for c in k.columns) for k in src.keys)]


def _request(case: Case, rows: list[dict]) -> list[dict]:
    fields = [f for req in case.plan.requests for f, _ in req.fields]
    return [{f: r.get(f) for f in fields} for r in rows]


def _both(case: Case, stores, rows: list[dict]) -> None:
    at, req = [r["ts"] for r in rows], _request(case, rows)
    want = stores[0].get("svc@v1", rows, at=at, request=req).rows()
    for s in stores[1:]:
        _same_rows(s.get("svc@v1", rows, at=at, request=req).rows(), want)


@settings(max_examples=25, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(cases(), st.data())
def test_replay_matches_embedded_store(redis_server, case: Case, data) -> None:  # noqa: F811
    """Rows pushed in time order with random lateness (late rows, eviction, trimming) through an
    embedded store and two Redis replicas, pushes alternating between the replicas: every query,
    single entity and batch, gets the same values, and the same horizon errors."""
    lateness = data.draw(st.integers(0, 4))
    local = Store(case.plan, allowed_lateness=lateness)
    a = _redis_store(redis_server, case.plan, allowed_lateness=lateness)
    b = _redis_store(redis_server, case.plan, allowed_lateness=lateness)
    b.prefix, b.meta_key, b.seq_key, b.storage = a.prefix, a.meta_key, a.seq_key, a.storage  # one namespace
    events = []
    for src in [s.name for s in case.plan.sources]:
        rows = _visible_rows(case, src)
        time_col = case.plan.source(src).time
        jitter = {t: data.draw(st.integers(0, lateness)) for t in sorted({r[time_col] for r in rows})}
        events += [(r[time_col] + jitter[r[time_col]], r[time_col], src, j, r) for j, r in enumerate(rows)]
    events.sort(key=lambda e: (e[0], e[2], e[3]))
    queries = sorted(case.spine, key=lambda q: q["ts"])
    pushed = 0
    for t in sorted({q["ts"] for q in queries}):
        last_needed = max((i for i, e in enumerate(events) if e[1] < t), default=-1)
        while pushed <= last_needed:
            k = data.draw(st.integers(1, 3))
            batch = [e[4] for e in events[pushed:last_needed + 1][:k] if e[2] == events[pushed][2]]
            for s in (local, a if pushed % 2 else b):
                s.push(events[pushed][2], batch)
            pushed += len(batch)
        rows = [q for q in queries if q["ts"] == t]
        assert local.horizon == a.horizon == b.horizon
        _both(case, [local, a, b], rows)
        for r in rows[:2]:
            _both(case, [local, a, b], [r])
    a.clear()


def test_file_order_pushes_match(redis_server) -> None:  # noqa: F811
    """Out-of-order pushes within a large lateness: nothing evicted; the same answers."""
    from hypothesis import find

    case = find(cases(), lambda c: len(c.spine) > 3 and sum(len(v) for v in c.tables.values()) > 10)
    local, red = Store(case.plan, allowed_lateness=10**6), _redis_store(redis_server, case.plan, allowed_lateness=10**6)
    for src in [s.name for s in case.plan.sources]:
        rows = _visible_rows(case, src)
        for i in range(0, len(rows), 3):
            local.push(src, rows[i:i + 3])
            red.push(src, rows[i:i + 3])
    _both(case, [local, red], case.spine)
    _both(case, [local, red], case.spine[:1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from astra.demo_data import generate

    out = tmp_path_factory.mktemp("demo")
    generate(out, events=6_000, users=200, labels=400)
    return out


@pytest.fixture(scope="module")
def project():
    from astra.project import Project

    return Project.load(ROOT / "features")


@pytest.mark.parametrize("service", ["fraud_model@v1", "fraud_model@v2", "profile_lookup@v1"])
def test_demo_materialized_matches_embedded_and_backfill(redis_server, demo, project, service) -> None:  # noqa: F811
    """The demo project materialized into Redis: the spine's answers equal the embedded store's
    bit for bit, and the offline backfill's (as `astra parity` compares them)."""
    from astra.offline import backfill
    from astra.parity import _epoch_us, canonical, compare
    from astra.plan import ir

    spine = pl.read_parquet(demo / "spine.parquet")
    svc = project.service(service)
    local = Store(project.plan, services=[svc.id])
    local.materialize(demo)
    red = _redis_store(redis_server, project.plan, services=[svc.id])
    red.materialize(demo)
    keys = list(dict.fromkeys(k for e in svc.entities for k, _ in project.plan.entity(e).keys))
    ents = spine.select(keys).to_dicts()[:200]
    # query after the last event: the horizon of a fully materialized store
    at = max(local.watermark.values()) + 1
    want = local.get(svc.id, ents, at=at).rows()
    _same_rows(red.get(svc.id, ents, at=at).rows(), want)
    for e in ents[:5]:
        _same_rows(red.get(svc.id, [e], at=at).rows(), local.get(svc.id, [e], at=at).rows())
    # and at every spine row's own time, against the backfill, with a store holding everything
    wide = _redis_store(redis_server, project.plan, services=[svc.id], allowed_lateness=10**15)
    wide.materialize(demo)
    few = spine.head(60)
    times = few["ts"].dt.epoch("us").to_list() if few["ts"].dtype != pl.Int64 else few["ts"].to_list()
    off = backfill(project.plan, svc.name, svc.version, few, demo, "ts")
    fields = sorted({n.field for f in project.plan.closure(tuple(o.feature for o in svc.outputs))
                     for n in ir.walk(f.expr) if isinstance(n, ir.RequestInput)})
    req = _epoch_us(few.select(fields)).to_dicts() if fields else None
    got = wide.get(svc.id, few.select(keys).to_dicts(), at=times, request=req).rows()
    for o in svc.outputs:
        t = project.plan.feature(o.feature).type
        for g, w in zip((r[o.name] for r in got), off[o.name].to_list()):
            assert compare(t, canonical(g, t), canonical(w, t))[0], f"{o.name}: redis {g!r} vs backfill {w!r}"
    for s in (red, wide):
        s.clear()


def test_replicas_share_pushes_and_survive_restart(redis_server, project) -> None:  # noqa: F811
    """A push through one RedisStore is seen at once by another on the same Redis, and by a new
    one made after both are closed (the rows live in Redis, not in the process)."""
    from astra.online.redis_store import RedisStore

    plan = project.plan
    a = RedisStore(plan, redis_server.url, prefix="replicas")
    b = RedisStore(plan, redis_server.url, prefix="replicas")
    t0 = 1_700_000_000_000_000
    row = {"user_id": 7, "merchant_id": 3, "amount": 12.5, "ts": t0, "country": "FR", "channel": "web",
           "category": "food", "is_fraud": None}
    src = plan.source("transactions")
    row = {c: v for c, v in row.items() if c in dict(src.columns)}
    for c, _ in src.columns:
        row.setdefault(c, None)
    a.push("transactions", [row])
    svc = "fraud_model@v1"
    got = b.get(svc, [{"user_id": 7}], at=t0 + 1).rows()[0]
    assert not got["_missing"]
    assert b.watermark["transactions"] == t0
    before = a.get(svc, [{"user_id": 7}], at=t0).rows()[0]  # strictly before: the row is invisible
    assert before["_missing"] is False or before != got
    a.close()
    b.close()
    c = RedisStore(plan, redis_server.url, prefix="replicas")
    assert c.get(svc, [{"user_id": 7}], at=t0 + 1).rows() == [got]
    with pytest.raises(LateRowError):
        c.push("transactions", [{**row, "ts": t0 - 1}])
    c.clear()


def test_retention_trims_old_rows_and_horizon(redis_server, project) -> None:  # noqa: F811
    """Rows older than the longest window (plus lateness) leave Redis on the entity's next write;
    queries before the shared horizon raise as the embedded store's do."""
    plan = project.plan
    red = _redis_store(redis_server, plan, services=["fraud_model@v1"])
    local = Store(plan, services=["fraud_model@v1"])
    src = plan.source("transactions")
    base = {c: None for c, _ in src.columns}
    day = 86_400_000_000
    t0 = 1_700_000_000_000_000
    for i in range(0, 400, 5):
        rows = [{**base, "user_id": 1, "merchant_id": 2, "amount": float(i), "category": "food", "ts": t0 + i * day}]
        rows = [{k: v for k, v in r.items() if k in dict(src.columns)} for r in rows]
        for s in (red, local):
            s.push("transactions", rows)
    (key,) = red.redis.scan_iter(match=f"{red.prefix}:r:transactions:merchant_id:*}}")  # rows, not their version
    kept = red.redis.zcard(key)
    assert 0 < kept < 20, kept  # 30-day windows: a window's worth of 5-day pushes, and a step
    assert red.redis.pttl(key) == -1  # event times long past: trimmed by event time, no wall-clock TTL
    # the user's rows feed lifetime aggregations: all of them stay (no running state in Redis)
    (key,) = red.redis.scan_iter(match=f"{red.prefix}:r:transactions:user_id:*}}")
    assert red.redis.zcard(key) == 80
    assert red.horizon == local.horizon is not None
    with pytest.raises(HorizonError):
        red.get("fraud_model@v1", [{"user_id": 1}], at=local.horizon - 1)
    at = t0 + 400 * day
    _same_rows(red.get("fraud_model@v1", [{"user_id": 1}], at=at).rows(),
               local.get("fraud_model@v1", [{"user_id": 1}], at=at).rows())
    red.clear()


def test_unreachable_redis_is_one_clear_error(redis_server, project) -> None:  # noqa: F811
    from redis_fixture import free_port

    from astra.online.redis_store import RedisStore, StoreUnavailable, parse_url

    with pytest.raises(StoreUnavailable, match="unavailable"):
        RedisStore(project.plan, f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    for bad in ("http://x:1/0", "redis://:6379/0", "redis://h:port/0", "redis://h:1/db"):
        with pytest.raises(ValueError, match="store URL"):
            parse_url(bad)


def test_live_rows_get_a_ttl_by_retention(redis_server, project) -> None:  # noqa: F811
    """An entity whose newest row is recent expires (Redis TTL) once the wall clock passes that row
    plus the retention, its 1/8 step and the grace; the TTL only ever moves later."""
    import time

    red = _redis_store(redis_server, project.plan, ttl_grace=3_600_000_000, allowed_lateness=100)
    src = project.plan.source("transactions")
    now = time.time_ns() // 1000
    row = {"user_id": 1, "merchant_id": 9, "amount": 1.0, "category": "food", "ts": now}
    red.push("transactions", [{c: row.get(c) for c, _ in src.columns}])
    (key,) = red.redis.scan_iter(match=f"{red.prefix}:r:transactions:merchant_id:*}}")  # rows, not their version
    retention = 30 * 86_400_000_000 + 100  # the longest window over merchants in features/, and the lateness
    expected_ms = (now + retention + retention // 8 + 3_600_000_000) // 1000
    assert abs(red.redis.pexpiretime(key) - expected_ms) <= 1
    red.push("transactions", [{c: {**row, "ts": now - 10}.get(c) for c, _ in src.columns}])  # older: no change
    assert abs(red.redis.pexpiretime(key) - expected_ms) <= 1
    red.clear()


def test_lost_redis_fails_calls_within_the_timeout(tmp_path, project) -> None:
    """Redis going away mid-run: push and get raise StoreUnavailable (a 503 for a server) within
    the socket timeout, never hang; they work again once it is back."""
    import time

    from redis_fixture import RedisServer, redis_or_skip

    from astra.online.redis_store import StoreUnavailable

    redis_or_skip()
    server = RedisServer(tmp_path)
    server.start()
    try:
        red = _redis_store(server, project.plan, timeout=1.0)
        src = project.plan.source("transactions")
        row = {c: None for c, _ in src.columns} | {"user_id": 1, "merchant_id": 2, "category": "x",
                                                  "ts": 1_700_000_000_000_000}
        red.push("transactions", [row])
        server.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="unavailable"):
            red.get("fraud_model@v1", [{"user_id": 1}], at=1_700_000_000_000_001)
        with pytest.raises(StoreUnavailable):
            red.push("transactions", [{**row, "ts": 1_700_000_000_000_002}])
        assert time.monotonic() - started < 30  # bounded (generous: the machine is shared)
        server.start()  # same port, empty (no persistence): the store answers again
        assert red.get("fraud_model@v1", [{"user_id": 1}], at=1_700_000_000_000_001).rows()[0]["_missing"]
    finally:
        server.stop()
