"""Vector columns in the Redis online store: its rows carry a vector as one fixed-size item, so it
answers every vector feature (as-of lookups, windows, means, functions) with the bits of the
in-process store (docs/language.md, "Vectors")."""

from __future__ import annotations

from redis_fixture import redis_server  # noqa: F401
from test_vector_features import _data, compile_plan, identical

from astra.online import Store


def test_the_redis_store_gives_the_in_process_stores_vectors(redis_server) -> None:  # noqa: F811
    from astra.online.redis_store import RedisStore

    plan = compile_plan()
    tables, spine = _data(2)
    local, shared = Store(plan), RedisStore(plan, redis_server.url, prefix="vectors")
    for name, rows in tables.items():
        local.push(name, rows)
        shared.push(name, rows)
    ents, at = [{"uid": r["uid"]} for r in spine], [r["ts"] for r in spine]
    req = [{"unused": None}] * len(spine)
    want = local.get("svc@v1", ents, at=at, request=req).rows()
    got = shared.get("svc@v1", ents, at=at, request=req).rows()
    assert any(r["average"] is not None for r in want)
    assert all(identical(g[k], w[k]) for g, w in zip(got, want) for k in w)
