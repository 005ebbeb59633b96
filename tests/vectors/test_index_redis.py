"""Vector indexes on the Redis online store (docs/vectors.md, "On the Redis store"): fed the same
files and pushes, it gives the embedded store's neighbours (keys and distances, exact and hnsw, at
past times, with filters, by key), replicas on one Redis see each other's pushes, a cleared and
re-materialized namespace starts the indexes over, and `astra serve --store redis://` answers
`POST /v1/neighbors` as the embedded server does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from redis_fixture import redis_server  # noqa: F401

from astra.compiler import compile_project
from astra.online import Store
from astra.serve.neighbors import answer

DIM = 5
PROJECT = f"""
entity item {{ key item_id: string }}
snapshot items for item {{
    path "items.parquet"
    time ts
    columns {{ item_id: string  colour: string  shelf: int64  price: float64  emb: vector<float32, {DIM}>? }}
}}
features f v1 for item {{ price: float64? = items.price }}
service s v1 {{ f@v1.price }}
index near v1 on items.emb {{ metric cosine; filter colour, shelf }}
index near_l2 v1 on items.emb {{ metric euclidean; kind hnsw }}
"""
DAY = 86_400_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01


def _rows(rng, ids, times, null_every=0):
    vecs = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    return [{"item_id": k, "colour": ["red", "blue", "green"][j % 3], "shelf": j % 4, "price": float(j),
             "emb": None if null_every and j % null_every == 0 else vecs[j].tolist(), "ts": t}
            for j, (k, t) in enumerate(zip(ids, times))]


@pytest.fixture
def world(tmp_path):
    """A project and its file: 200 items, in no time order, 60 of them changed later."""
    rng = np.random.default_rng(11)
    (tmp_path / "p").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "p" / "p.feat").write_text(PROJECT)
    ids = [f"i{j:03d}" for j in range(200)] + [f"i{j:03d}" for j in range(0, 180, 3)]
    times = [T0 + int(rng.integers(1, 10)) * DAY for _ in range(200)] + [T0 + 12 * DAY] * 60
    order = rng.permutation(len(ids))  # the file is not sorted by time
    rows = _rows(rng, [ids[j] for j in order], [times[j] for j in order], null_every=17)
    frame = pl.DataFrame(rows, schema={"item_id": pl.String, "colour": pl.String, "shelf": pl.Int64,
                                       "price": pl.Float64, "emb": pl.Array(pl.Float32, DIM), "ts": pl.Int64})
    frame.with_columns(pl.col("ts").cast(pl.Datetime("us"))).write_parquet(tmp_path / "data" / "items.parquet")
    plan = compile_project(tmp_path / "p", lock="ignore").plan
    return {"plan": plan, "project": tmp_path / "p", "data": tmp_path / "data", "rng": rng, "tmp": tmp_path}


def _pushes(rng) -> list[list[dict]]:
    """Updates, new keys, deletes (null vectors), a key changed twice in one batch, and a row older
    than its key's latest change (stored, but left out of the index on both stores)."""
    later = [f"i{j:03d}" for j in range(0, 200, 7)] + ["n1", "n2"]
    return [
        _rows(rng, later, [T0 + 20 * DAY] * len(later), null_every=5),
        _rows(rng, ["i001", "i001", "n3"], [T0 + 22 * DAY, T0 + 21 * DAY, T0 + 21 * DAY]),
        _rows(rng, ["i007"], [T0 + 19 * DAY]),  # older than i007's change on day 20: late for the index
    ]


def _queries(rng, plan) -> list[dict]:
    out = []
    for j in range(40):
        body = {"index": "near" if j % 2 else "near_l2", "version": 1, "k": int(rng.integers(1, 30))}
        if j % 5 == 4:
            body["key"] = f"i{int(rng.integers(0, 200)):03d}"
        else:
            body["vector"] = rng.normal(size=DIM).tolist()
        if j % 3 == 0:
            body["at"] = T0 + int(rng.integers(0, 25)) * DAY
        if j % 4 == 1:
            body["filter"] = {"colour": ["red", "green"], "shelf": [0, 1, 3]}
        out.append(body)
    return out


def _answers(store, plan, queries):
    from astra.serve.validate import ApiError

    out = []
    for q in queries:
        try:
            out.append(answer(store, plan, dict(q)))
        except ApiError as exc:  # a key without a vector then: the same 404 on both stores
            out.append((exc.status, exc.body()))
    return out


def test_the_redis_store_gives_the_embedded_stores_neighbours(world, redis_server) -> None:  # noqa: F811
    from astra.online.redis_store import RedisStore

    plan = world["plan"]
    local = Store(plan, allowed_lateness=30 * DAY)
    shared = RedisStore(plan, redis_server.url, allowed_lateness=30 * DAY, prefix="vx-same")
    for store in (local, shared):
        store.materialize(world["data"])
    queries = _queries(world["rng"], plan)
    before = _answers(local, plan, queries)
    assert _answers(shared, plan, queries) == before
    for batch in _pushes(world["rng"]):
        local.push("items", batch)
        shared.push("items", batch)
    after = _answers(local, plan, queries)
    assert after != before  # the pushes changed answers
    assert _answers(shared, plan, queries) == after
    assert shared.indexes.late == local.indexes.late == {"near@v1": 1, "near_l2@v1": 1}
    found = [a for a in after if isinstance(a, dict)]
    assert len(found) > 30 and all(a["neighbors"] for a in found)


def test_replicas_see_each_others_pushes_and_a_new_replica_replays_the_log(world, redis_server) -> None:  # noqa: F811
    from astra.online.redis_store import RedisStore

    plan = world["plan"]
    a = RedisStore(plan, redis_server.url, prefix="vx-replicas")
    b = RedisStore(plan, redis_server.url, prefix="vx-replicas")
    a.materialize(world["data"])
    q = {"index": "near", "version": 1, "vector": [1.0, 0, 0, 0, 0], "k": 3}
    assert answer(b, plan, dict(q)) == answer(a, plan, dict(q))
    b.push("items", [{"item_id": "mine", "colour": "red", "shelf": 0, "price": 1.0, "emb": [2.0, 0, 0, 0, 0],
                      "ts": T0 + 30 * DAY}])
    assert answer(a, plan, dict(q))["neighbors"][0] == {"key": "mine", "distance": 0.0}
    c = RedisStore(plan, redis_server.url, prefix="vx-replicas")  # a replica started later
    assert answer(c, plan, dict(q)) == answer(a, plan, dict(q)) == answer(b, plan, dict(q))
    # a replica serving some services keeps no index, but what is pushed through it is indexed
    some = RedisStore(plan, redis_server.url, prefix="vx-replicas", services=["s@v1"])
    some.push("items", [{"item_id": "theirs", "colour": "red", "shelf": 0, "price": 1.0, "emb": [3.0, 0.1, 0, 0, 0],
                         "ts": T0 + 31 * DAY}])
    assert [n["key"] for n in answer(c, plan, dict(q))["neighbors"][:2]] == ["mine", "theirs"]


def test_a_cleared_namespace_starts_the_indexes_over(world, redis_server) -> None:  # noqa: F811
    from astra.online.redis_store import RedisStore

    plan = world["plan"]
    a = RedisStore(plan, redis_server.url, prefix="vx-clear")
    a.materialize(world["data"])
    q = {"index": "near", "version": 1, "vector": [1.0, 0, 0, 0, 0], "k": 3}
    first = answer(a, plan, dict(q))
    a.push("items", [{"item_id": "gone", "colour": "red", "shelf": 0, "price": 1.0, "emb": [2.0, 0, 0, 0, 0],
                      "ts": T0 + 30 * DAY}])
    assert answer(a, plan, dict(q))["neighbors"][0]["key"] == "gone"
    assert a.clear() > 0
    assert answer(a, plan, dict(q))["neighbors"] == []  # nothing indexed any more
    a.materialize(world["data"])
    assert answer(a, plan, dict(q)) == first


def test_a_redis_server_answers_neighbours_as_the_embedded_server(world, redis_server) -> None:  # noqa: F811
    from serve_harness import Client, launch

    embedded = launch(world["project"], world["tmp"] / "state", "--data-root", str(world["data"]))
    shared = launch(world["project"], world["tmp"] / "state-redis", "--data-root", str(world["data"]),
                    "--store", redis_server.url.rsplit("/", 1)[0] + "/3")
    try:
        e, s = Client(embedded.port), Client(shared.port)
        statuses = []
        for q in _queries(np.random.default_rng(5), world["plan"])[:12]:
            want, got = e.post("/v1/neighbors", q), s.post("/v1/neighbors", q)
            assert got[0] == want[0] and got[2] == want[2], q
            statuses.append(want[0])
        assert statuses.count(200) >= 9 and set(statuses) <= {200, 404}  # 404: a key deleted then
    finally:
        embedded.kill9()
        shared.kill9()


def test_a_lost_redis_is_a_503_and_a_store_for_some_services_keeps_no_index(world, tmp_path) -> None:
    from redis_fixture import RedisServer, redis_or_skip

    from astra.online.redis_store import RedisStore
    from astra.serve.validate import ApiError

    redis_or_skip()
    server = RedisServer(tmp_path)
    server.start()
    plan = world["plan"]
    try:
        store = RedisStore(plan, server.url, prefix="vx-lost", timeout=0.5)
        store.materialize(world["data"])
        q = {"index": "near", "version": 1, "vector": [1.0, 0, 0, 0, 0], "k": 3}
        assert answer(store, plan, dict(q))["neighbors"]
    finally:
        server.stop()
    for body in (q, {"index": "near", "version": 1, "key": "i001", "k": 3}):
        with pytest.raises(ApiError) as err:
            answer(store, plan, dict(body))
        assert err.value.status == 503 and "unavailable" in err.value.body()["error"]["code"]
    some = Store(plan, services=["s@v1"])
    some.materialize(world["data"])
    with pytest.raises(ApiError) as err:
        answer(some, plan, dict(q))
    assert err.value.status == 422 and err.value.body()["error"]["code"] == "not_supported"


def test_the_hnsw_graph_path_and_batches_cut_into_many_chunks(world, redis_server, monkeypatch) -> None:  # noqa: F811
    """A batch cut into many list elements is still one ingest (one faiss `add`), so the graphs of
    both stores are the same and so are their approximate answers (searched through the graph:
    the exact fallback is turned off; one faiss thread, so each build is deterministic)."""
    faiss = pytest.importorskip("faiss")
    from astra.online import redis_indexes
    from astra.online.redis_store import RedisStore

    monkeypatch.setattr(redis_indexes, "CHUNK_ROWS", 37)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        plan = world["plan"]
        local = Store(plan, allowed_lateness=30 * DAY)
        shared = RedisStore(plan, redis_server.url, allowed_lateness=30 * DAY, prefix="vx-graph")
        for store in (local, shared):
            store.materialize(world["data"])
        shared.indexes.sync()
        for idx in (local.indexes, shared.indexes.local):
            idx.built["near_l2@v1"].exact_below = 0  # every search goes through the graph
        queries = [q for q in _queries(world["rng"], plan) if q["index"] == "near_l2"]
        assert _answers(shared, plan, queries) == _answers(local, plan, queries)
        for batch in _pushes(world["rng"]):
            local.push("items", batch)
            shared.push("items", batch)
        assert _answers(shared, plan, queries) == _answers(local, plan, queries)
        graphs = [idx.built["near_l2@v1"].graph for idx in (local.indexes, shared.indexes.local)]
        assert graphs[0].ntotal == graphs[1].ntotal > 0
        assert np.array_equal(*(faiss.vector_to_array(g.hnsw.neighbors) for g in graphs))
    finally:
        faiss.omp_set_num_threads(before)


def test_a_later_index_version_is_built_from_the_log_and_a_source_never_logged_is_a_409(
        world, redis_server, tmp_path) -> None:  # noqa: F811
    """The log keeps every column of the source: an index version declared after the namespace was
    materialized (a new filter column) is built from it.  Rows stored before any index read their
    source leave nothing to build from: a search says so (409) instead of answering from nothing."""
    from astra.online.redis_store import RedisStore
    from astra.serve.validate import ApiError

    plan = world["plan"]
    RedisStore(plan, redis_server.url, prefix="vx-later").materialize(world["data"])
    v2 = "index near v2 on items.emb { metric cosine; filter colour, shelf, item_id }\n"
    (world["project"] / "p.feat").write_text(PROJECT + v2)
    later = compile_project(world["project"], lock="ignore").plan
    store, local = RedisStore(later, redis_server.url, prefix="vx-later"), Store(later)
    local.materialize(world["data"])
    q = {"index": "near", "version": 2, "vector": [1.0, 0.5, 0, 0, 0], "k": 4, "filter": {"item_id": ["i001", "i050"]}}
    got = answer(store, later, dict(q))
    assert got == answer(local, later, dict(q)) and {n["key"] for n in got["neighbors"]} <= {"i001", "i050"}

    (world["project"] / "p.feat").write_text(PROJECT.split("index near v1")[0])  # no index: nothing logged
    RedisStore(compile_project(world["project"], lock="ignore").plan, redis_server.url,
               prefix="vx-bare").materialize(world["data"])
    bare = RedisStore(plan, redis_server.url, prefix="vx-bare")
    with pytest.raises(ApiError) as err:
        answer(bare, plan, {"index": "near", "version": 1, "vector": [1.0, 0, 0, 0, 0]})
    assert err.value.status == 409 and err.value.body()["error"]["code"] == "index_not_built"
    assert "holds rows of `items` stored before any vector index read it" in err.value.body()["error"]["message"]


def test_a_damaged_index_log_is_a_409_not_a_crash(world, redis_server) -> None:  # noqa: F811
    from astra.online.redis_store import RedisStore
    from astra.serve.validate import ApiError

    plan = world["plan"]
    store = RedisStore(plan, redis_server.url, prefix="vx-damaged")
    store.materialize(world["data"])
    key = store.indexes.logs["items"].key
    store.redis.rpush(key, b"\x00\x00\x00\x00\x00\x00\x00\x01garbage")
    with pytest.raises(ApiError) as err:
        answer(store, plan, {"index": "near", "version": 1, "vector": [1.0, 0, 0, 0, 0]})
    assert err.value.status == 409 and "does not hold an index log this version wrote" in err.value.body()[
        "error"]["message"]


def test_a_batch_split_over_several_commands_waits_for_its_last_chunk(world, redis_server, monkeypatch) -> None:  # noqa: F811
    """A big batch goes in several RPUSH commands and another server's push may land between them:
    each batch is applied, whole, when its last chunk arrives, and a batch still arriving is not
    searched half-applied."""
    from astra.online import ingest, redis_indexes
    from astra.online.redis_store import RedisStore

    monkeypatch.setattr(redis_indexes, "CHUNK_ROWS", 3)
    monkeypatch.setattr(redis_indexes, "PUSH_BYTES", 1)  # one chunk per command
    plan = world["plan"]
    store = RedisStore(plan, redis_server.url, prefix="vx-split")
    local = Store(plan, allowed_lateness=30 * DAY)
    store.materialize(world["data"])
    local.materialize(world["data"])

    class Held:  # a pipeline that keeps the commands instead of sending them
        def __init__(self):
            self.calls = []

        def rpush(self, key, *values):
            self.calls.append((key, values))

    big = _rows(world["rng"], [f"b{j}" for j in range(7)], [T0 + 40 * DAY] * 7)  # 3 chunks
    small = _rows(world["rng"], ["s0"], [T0 + 41 * DAY])
    held_big, held_small = Held(), Held()
    src = plan.source("items")
    for rows, held in ((big, held_big), (small, held_small)):
        times, cols = ingest.from_dicts(src, rows)
        store.indexes.append(src, times, cols, held)
    assert len(held_big.calls) == 3 and len(held_small.calls) == 1
    order = [held_big.calls[0], held_big.calls[1], held_small.calls[0], held_big.calls[2]]
    q = {"index": "near", "version": 1, "vector": [1.0, 0.2, 0, 0, 0], "k": 1000}  # every visible key
    for n, (key, values) in enumerate(order):
        store.redis.rpush(key, *values)
        got = {x["key"] for x in answer(store, plan, dict(q))["neighbors"]}
        assert not got & {f"b{j}" for j in range(7)} if n < 3 else {f"b{j}" for j in range(7)} <= got
        assert ("s0" in got) == (n >= 2)
    local.push("items", small)
    local.push("items", big)  # the order the log completes them in
    assert answer(store, plan, dict(q)) == answer(local, plan, dict(q))
