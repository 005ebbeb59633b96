"""The online store's typed query (`OnlineStore.lookup(Lookup)`): the service as the plan's IR
object and each entity's key values as one tuple, in whatever column order the caller checked
them in.  Answers equal `Store.get` over entity dicts; bad lookups are clear errors; the Redis
store answers the same lookup the same way; the server sends lookups, never dicts."""

from __future__ import annotations

import itertools
from pathlib import Path

import attrs
import polars as pl
import pytest
from project_fixtures import data  # noqa: F401 - the demo data fixture, found by name
from redis_fixture import redis_server  # noqa: F401

from astra.online import Lookup, Store, UnknownServiceError

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count()


@pytest.fixture(scope="module")
def project():
    from astra.project import Project

    return Project.load(ROOT / "features")


@pytest.fixture(scope="module")
def store(project, data) -> Store:  # noqa: F811
    s = Store(project.plan)
    s.materialize(data)
    return s


def _queries(root: Path, n: int) -> list[dict]:
    spine = pl.read_parquet(root / "spine.parquet")
    return spine.select("user_id", "merchant_id", "amount").head(n).to_dicts()


@pytest.mark.parametrize("n", [1, 5, 40])  # the single-entity plan, and the vectorised one
def test_lookup_in_any_key_order_equals_get(project, store, data, n):  # noqa: F811
    svc = project.service("fraud_model@v2")  # two entities: user and merchant
    at = max(store.watermark.values()) + 1
    rows = _queries(data, n)
    ents = [{"user_id": r["user_id"], "merchant_id": r["merchant_id"]} for r in rows]
    request = [{"checkout.amount": r["amount"]} for r in rows]
    want = store.get(svc.id, ents, at=at, request=request)
    names = ("merchant_id", "user_id")  # not the plan's order
    got = store.lookup(Lookup(svc, names, [(e["merchant_id"], e["user_id"]) for e in ents], at, request))
    assert got.rows() == want.rows()
    assert got.to_polars().columns[:2] == ["merchant_id", "user_id"]  # the key columns as the caller named them
    assert got.to_polars().drop("merchant_id", "user_id").equals(want.to_polars().drop("user_id", "merchant_id"))
    assert got.to_polars()["user_id"].to_list() == [e["user_id"] for e in ents]


def test_a_lookup_without_a_key_the_service_reads_is_a_clear_error(project, store):
    svc = project.service("fraud_model@v2")
    with pytest.raises(KeyError, match="entity `merchant` needs keys \\['merchant_id'\\]"):
        store.lookup(Lookup(svc, ("user_id",), [(1,)], 10**15))
    with pytest.raises(KeyError, match="no key column 'shop_id'"):
        store.lookup(Lookup(svc, ("user_id", "merchant_id", "shop_id"), [(1, 2, 3)], 10**15))


def test_a_service_that_is_not_the_plans_is_refused(project, store):
    svc = project.service("fraud_model@v1")
    other = attrs.evolve(svc, outputs=svc.outputs[:1])  # same name and version, different outputs
    with pytest.raises(UnknownServiceError, match="not the one this store's plan defines"):
        store.lookup(Lookup(other, ("user_id",), [(1,)], 10**15))
    ok = store.lookup(Lookup(svc, ("user_id",), [(1,)], max(store.watermark.values()) + 1))
    assert len(ok.rows()) == 1  # the store still answers its own service


def test_get_names_the_missing_key(project, store):
    with pytest.raises(KeyError, match="service `fraud_model@v2` needs keys \\['user_id', 'merchant_id'\\]; "
                                       "a query row lacks 'merchant_id'"):
        store.get("fraud_model@v2", [{"user_id": 1}], at=10**15)


def test_redis_store_answers_the_same_lookup(redis_server, project, data):  # noqa: F811
    from astra.online.redis_store import RedisStore

    svc = project.service("fraud_model@v2")
    red = RedisStore(project.plan, redis_server.url, prefix=f"lookup{next(_ids)}", services=[svc.id])
    local = Store(project.plan, services=[svc.id])  # the same tables, so the same rows and float sums
    local.materialize(data)
    try:
        red.materialize(data)
        at = max(local.watermark.values()) + 1
        rows = _queries(data, 12)
        keys = [(r["merchant_id"], r["user_id"]) for r in rows]
        request = [{"checkout.amount": r["amount"]} for r in rows]
        for batch in (keys[:1], keys):
            q = Lookup(svc, ("merchant_id", "user_id"), batch, at, request[:len(batch)])
            got, want = red.lookup(q).rows(), local.lookup(q).rows()
            diff = [(j, k, g[k], w[k]) for j, (g, w) in enumerate(zip(got, want)) for k in g if g[k] != w[k]]
            assert not diff, diff[:5]
    finally:
        red.clear()
        red.close()


def test_the_server_sends_typed_lookups(project, data, tmp_path):  # noqa: F811
    """`/v1/features` reaches the store as a `Lookup` of checked key tuples (`Store.get`, which
    re-reads dicts, is never called)."""
    import orjson

    from astra.serve.config import ServeConfig
    from astra.serve.engine import Engine

    store = Store(project.plan)
    store.materialize(data)
    seen: list[Lookup] = []
    lookup = store.lookup

    def spy(q: Lookup):
        seen.append(q)
        return lookup(q)

    def no_get(*args, **kwargs):
        raise AssertionError("the server called Store.get")

    store.lookup, store.get = spy, no_get
    engine = Engine(project.plan, ServeConfig(project=str(ROOT / "features"), state=str(tmp_path / "state"),
                                              cache_size=0, access_log="off"), log=lambda m: None)
    try:
        engine.store = store
        at = max(store.watermark.values()) + 1
        body = {"service": "fraud_model", "version": 2, "at": at, "request": {"amount": 12.5},
                "entities": [{"merchant_id": 7, "user_id": 3}, {"user_id": 4, "merchant_id": 9}]}
        doc = orjson.loads(engine.features(body)[0])
    finally:
        engine.close()
    assert len(doc["results"]) == 2
    (q,) = seen
    assert q.service is project.service("fraud_model@v2")
    assert dict(zip(q.key_names, q.keys[0])) == {"user_id": 3, "merchant_id": 7}
    assert dict(zip(q.key_names, q.keys[1])) == {"user_id": 4, "merchant_id": 9}
    assert q.at == at
