"""A Redis replica keeps the tables of single-entity reads between reads (docs/online.md, "Redis
store"): a read whose entity has not changed fetches nothing but its version, yet every answer
equals the embedded store's fed the same pushes, bit for bit: after pushes of that entity through
another replica, after other entities' pushes move the shared cutoffs, and after the namespace is
cleared and written again."""

from __future__ import annotations

import itertools
import math
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis_fixture import redis_server  # noqa: F401

from astra.online import Store

H = 3_600_000_000
D = 24 * H
T0 = 1_700_000_000_000_000
FEATURES = """
    s7: float64 = sum(ev.amount, 7d)
    v7: float64? = variance(ev.amount, 7d)
    c: int64 = count(ev)
    s: float64 = sum(ev.amount)
    last_cat: string? = last(ev.cat)
"""
_ids = itertools.count()


@pytest.fixture(scope="module")
def plan():
    from agg_engines import compile_features

    return compile_features("amount: float64  cat: string", FEATURES)


def same(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in b)


def replicas(server, plan, n: int):
    from astra.online.redis_store import RedisStore

    prefix = f"cache{next(_ids)}"
    return [RedisStore(plan, server.url, prefix=prefix) for _ in range(n)]


def row(rng: random.Random, entity: int, t: int) -> dict:
    return {"id": entity, "ts": t, "amount": rng.choice([1e-3, 1.0, 1e6]) * rng.random(), "cat": rng.choice("abc")}


def test_unchanged_entities_answer_from_held_tables_and_changes_are_seen(redis_server, plan):  # noqa: F811
    rng = random.Random(5)
    a, b = replicas(redis_server, plan, 2)
    local = Store(plan)
    t = T0
    for _ in range(40):  # entity 2: a history over 10 days, then quiet
        t += rng.randint(1, 6 * H)
        for s in (b, local):
            s.push("ev", [row(random.Random(t), 2, t)])
    hits = reloads = 0
    for step in range(60):  # entity 1 is pushed through b: the watermark and cutoffs move on
        t += rng.randint(1, 12 * H)
        for s in (b, local):
            s.push("ev", [row(random.Random(t), 1, t)])
        if step == 30:  # entity 2 changes, through the other replica
            for s in (b, local):
                s.push("ev", [row(random.Random(t), 2, t)])
        for _ in range(2):
            got = a.get("svc@v1", [{"id": 2}], at=t + 1).rows()[0]
            assert same(got, local.get("svc@v1", [{"id": 2}], at=t + 1).rows()[0]), step
            hits += a.last_fetch_bytes == 0
            reloads += a.last_fetch_bytes > 0
    assert hits >= 60  # the second read of each step at least
    assert reloads >= 2  # the first read, and the read after entity 2 changed
    a.clear()


def test_a_cleared_namespace_written_again_is_not_answered_from_held_tables(redis_server, plan):  # noqa: F811
    a, b = replicas(redis_server, plan, 2)
    first, second = Store(plan), Store(plan)
    for i in range(5):
        b.push("ev", [{"id": 1, "ts": T0 + i * H, "amount": 1.0, "cat": "a"}])
        first.push("ev", [{"id": 1, "ts": T0 + i * H, "amount": 1.0, "cat": "a"}])
    at = T0 + 10 * H
    assert same(a.get("svc@v1", [{"id": 1}], at=at).rows()[0], first.get("svc@v1", [{"id": 1}], at=at).rows()[0])
    b.clear()  # the same number of pushes again: the same sequence numbers, other rows
    for i in range(5):
        b.push("ev", [{"id": 1, "ts": T0 + i * H, "amount": 2.0, "cat": "b"}])
        second.push("ev", [{"id": 1, "ts": T0 + i * H, "amount": 2.0, "cat": "b"}])
    got = a.get("svc@v1", [{"id": 1}], at=at).rows()[0]
    assert same(got, second.get("svc@v1", [{"id": 1}], at=at).rows()[0])
    assert got["s"] == 10.0 and got["last_cat"] == "b"
    a.clear()


def test_a_service_of_two_sources_answers_from_held_tables(redis_server):  # noqa: F811
    """fraud_model@v1 of the example project reads a user's transactions and profile (two row keys
    per entity): a repeated read fetches nothing, and its answers are the embedded store's."""
    from astra.online.redis_store import RedisStore
    from astra.project import Project

    root = Path(__file__).resolve().parents[2]
    plan = Project.load(root / "features").plan
    red = RedisStore(plan, redis_server.url, prefix=f"cache{next(_ids)}")
    local = Store(plan)
    t = T0
    rows = []
    for i in range(30):
        t += H
        rows.append({"user_id": i % 3, "merchant_id": i % 5, "amount": float(i), "category": "food",
                     "country": "DE", "ts": t})
    src = plan.source("transactions")
    rows = [{k: v for k, v in r.items() if k in dict(src.columns) or k == src.time} for r in rows]
    profile = [{"user_id": 1, "country": "DE", "tier": 2, "credit_limit": 500.0, "updated_at": T0}]
    for s in (red, local):
        s.push("transactions", rows)
        s.push("profiles", profile)
    for _ in range(3):
        got = red.get("fraud_model@v1", [{"user_id": 1}], at=t + 1).rows()[0]
        assert same(got, local.get("fraud_model@v1", [{"user_id": 1}], at=t + 1).rows()[0])
    assert red.last_fetch_bytes == 0
    assert len(red.entity_tables.entries) == 2  # the user's transactions and profile row keys
    red.clear()
