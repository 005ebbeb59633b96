"""`POST /v1/neighbors` against a real `astra serve` (docs/vectors.md, "Declared indexes"): answers
equal a brute-force search over the keys' vectors visible at the query time, pushes change them (a
null vector deletes a key), a restart restores the index, filters and `at` select versions, and bad
requests are located 4xx answers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.spatial.distance import cdist

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from serve_harness import Client, launch

DIM = 6
PROJECT = f"""
entity item {{ key item_id: string }}
snapshot items for item {{
    path "items.parquet"
    time ts
    columns {{ item_id: string  colour: string  shelf: int64  emb: vector<float32, {DIM}>? }}
}}
index near v1 on items.emb {{ metric cosine; filter colour, shelf }}
index near_l2 v1 on items.emb {{ metric euclidean; kind hnsw }}
"""
DAY = 86_400_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01


@pytest.fixture
def world(tmp_path):
    """A project, its data (40 items, 10 of them changed on day 5), and a started server."""
    rng = np.random.default_rng(3)
    project, data = tmp_path / "project", tmp_path / "data"
    project.mkdir()
    data.mkdir()
    (project / "p.feat").write_text(PROJECT)
    n = 40
    ids = [f"i{j:02d}" for j in range(n)] + [f"i{j:02d}" for j in range(10)]
    vecs = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    times = [T0 + DAY] * n + [T0 + 5 * DAY] * 10
    colours = [["red", "blue", "green"][j % 3] for j in range(len(ids))]
    shelves = [j % 4 for j in range(len(ids))]
    pl.DataFrame({"item_id": ids, "colour": colours, "shelf": shelves,
                  "emb": pl.Series(vecs.tolist(), dtype=pl.Array(pl.Float32, DIM)),
                  "ts": pl.Series(times).cast(pl.Datetime("us"))}).write_parquet(data / "items.parquet")
    servers = []

    def start():
        s = launch(project, tmp_path / "state", "--data-root", str(data))
        servers.append(s)
        return s

    yield {"project": project, "data": data, "ids": ids, "vecs": vecs, "times": times, "colours": colours,
           "shelves": shelves, "start": start}
    for s in servers:
        s.kill9()


def visible(w, at: int | None) -> dict[str, tuple[np.ndarray, str, int]]:
    """Each key's version a query at `at` sees: its latest change strictly before `at`."""
    out = {}
    for key, v, t, c, s in zip(w["ids"], w["vecs"], w["times"], w["colours"], w["shelves"]):
        if at is None or t < at:
            out[key] = (v, c, s)
    return out


def brute(w, query, k, at=None, metric="cosine", keep=lambda c, s: True, leave_out=None):
    rows = {key: v for key, (v, c, s) in visible(w, at).items() if keep(c, s) and key != leave_out}
    keys = sorted(rows)
    d = cdist(np.asarray(query, dtype=np.float64)[None, :], np.array([rows[key] for key in keys], dtype=np.float64),
              metric)[0]
    order = sorted(range(len(keys)), key=lambda j: (d[j], keys[j]))[:k]
    return [keys[j] for j in order], [float(d[j]) for j in order]


def ask(c: Client, **body):
    status, _, out = c.post("/v1/neighbors", {k: v for k, v in body.items() if v is not None})
    assert status == 200, out
    return [n["key"] for n in out["neighbors"]], [n["distance"] for n in out["neighbors"]]


def test_answers_equal_brute_force_with_filters_at_and_keys(world) -> None:
    c = Client(world["start"]().port)
    q = [0.3, -1.0, 0.5, 2.0, 0.0, 1.0]
    for at in (None, T0 + 3 * DAY, T0 + 5 * DAY, T0 + 5 * DAY + 1):  # day 5 itself still sees the old versions
        keys, dist = ask(c, index="near", version=1, vector=q, k=7, at=at)
        want_keys, want_dist = brute(world, q, 7, at)
        assert keys == want_keys
        np.testing.assert_allclose(dist, want_dist, rtol=1e-5, atol=1e-6)
    keys, _ = ask(c, index="near", version=1, vector=q, k=5, filter={"colour": "blue", "shelf": [1, 3]})
    assert keys == brute(world, q, 5, keep=lambda col, s: col == "blue" and s in (1, 3))[0]
    keys, _ = ask(c, index="near_l2", version=1, vector=q, k=4)
    assert keys == brute(world, q, 4, metric="euclidean")[0]
    # by key: that key's vector visible then is the query, and the key itself is left out
    keys, _ = ask(c, index="near", version=1, key="i03", k=5, at=T0 + 2 * DAY)
    old = visible(world, T0 + 2 * DAY)["i03"][0]
    assert keys == brute(world, old, 5, at=T0 + 2 * DAY, leave_out="i03")[0]
    assert "i03" not in keys
    status, _, out = c.post("/v1/neighbors", {"index": "near", "version": 1, "key": "i03", "k": 3, "at": T0})
    assert status == 404 and out["error"]["code"] == "unknown_key"  # no version before the first row



def test_a_sparse_query_is_the_dense_vector_it_names(world) -> None:
    c = Client(world["start"]().port)
    dense = [0.0, -1.0, 0.0, 2.0, 0.0, 0.5]
    sparse = {"5": 0.5, "1": -1.0, "3": 2.0}  # index -> value
    assert ask(c, index="near", version=1, vector=sparse, k=6) == ask(c, index="near", version=1, vector=dense, k=6)
    assert ask(c, index="near", version=1, vector=sparse, k=6)[0] == brute(world, dense, 6)[0]
    for bad in ({"6": 1.0}, {"-1": 1.0}, {"1": "x"}, {"indices": [1], "values": [1.0]}):
        status, _, out = c.post("/v1/neighbors", {"index": "near", "version": 1, "vector": bad, "k": 3})
        assert status == 422 and out["error"]["location"] == "vector", out

def test_python_clients_give_the_server_answer(world) -> None:
    import astra

    server = world["start"]()
    q = np.array([0.3, -1.0, 0.5, 2.0, 0.0, 1.0], dtype=np.float32)
    status, _, want = Client(server.port).post("/v1/neighbors", {
        "index": "near", "version": 1, "vector": q.tolist(), "k": 6, "filter": {"colour": ["red", "green"]},
        "at": "2026-01-04T00:00:00"})
    assert status == 200
    online = astra.Online(world["project"], data_root=world["data"])
    with astra.Client(server.url) as client:
        for api in (online, client):
            got = api.neighbors("near@v1", q, k=6, filter={"colour": ["red", "green"]}, at="2026-01-04T00:00:00")
            assert got == want
            with pytest.raises(astra.ClientError) as err:
                api.neighbors("near@v1", q[:3])
            assert err.value.status == 422 and err.value.location == "vector"
            with pytest.raises(astra.ClientError) as err:
                api.neighbors("nope", key="i01")
            assert err.value.status == 404


def test_push_updates_deletes_and_a_restart_restores(world) -> None:
    server = world["start"]()
    c = Client(server.port)
    q = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    t = "2026-02-01T00:00:00"
    status, _, ack = c.post("/v1/push", {"source": "items", "rows": [
        {"item_id": "new", "colour": "red", "shelf": 0, "emb": q, "ts": t},
        {"item_id": "i00", "colour": "red", "shelf": 0, "emb": None, "ts": t}]})
    assert status == 200 and ack["accepted"] == 2, ack
    keys, dist = ask(c, index="near", version=1, vector=q, k=3)
    assert keys[0] == "new" and dist[0] == pytest.approx(0.0, abs=1e-6)
    assert "i00" not in ask(c, index="near", version=1, vector=world["vecs"][0].tolist(), k=50)[0]
    before = ask(c, index="near", version=1, vector=q, k=3, at="2026-01-20T00:00:00")[0]  # before the push: as it was
    assert "new" not in before and before == brute(world, q, 3, at=T0 + 19 * DAY)[0]
    latest = ask(c, index="near", version=1, vector=q, k=10)

    server.kill9()  # a crash: the log replays the push over the materialized index
    c = Client(world["start"]().port)
    assert ask(c, index="near", version=1, vector=q, k=10) == latest
    assert ask(c, index="near", version=1, vector=q, k=3, at="2026-01-20T00:00:00")[0] == before


BAD = [
    ({"index": "nope", "vector": [0.0] * DIM}, 404, "unknown_index"),
    ({"index": "near", "vector": [0.0] * DIM}, 422, "missing_field"),  # a client names the version it relies on
    ({"index": "near", "version": 2, "vector": [0.0] * DIM}, 404, "unknown_version"),
    ({"index": "near", "version": "1", "vector": [0.0] * DIM}, 422, "invalid_type"),
    ({"index": "near@v1", "vector": [0.0] * DIM}, 404, "unknown_index"),
    ({"index": "near", "version": True, "vector": [0.0] * DIM}, 422, "invalid_type"),
    ({"index": "near", "version": None, "vector": [0.0] * DIM}, 422, "invalid_type"),
    ({"index": "near", "version": 1e300, "vector": [0.0] * DIM}, 422, "invalid_type"),
    ({"index": "near", "version": -1, "vector": [0.0] * DIM}, 404, "unknown_version"),
    ({"index": "n" * 5000, "version": 1, "vector": [0.0] * DIM}, 404, "unknown_index"),
    ({"index": ["near"], "version": 1, "vector": [0.0] * DIM}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "vector": [0.0] * (DIM - 1)}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "vector": [0.0] * (DIM - 1) + [1e39]}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "vector": [0.0] * (DIM - 1) + ["1"]}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "k": 0}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "k": 10**9}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "k": 2.5}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "filter": {"price": 1}}, 422, "unknown_filter"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "filter": {"colour": {"a": 1}}}, 422, "invalid_type"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "filter": {"shelf": "1"}}, 422, "invalid_type"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "filter": None}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "key": 7}, 422, "invalid_type"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "key": "i01"}, 422, "invalid_request"),
    ({"index": "near", "version": 1}, 422, "invalid_request"),
    ({"index": "near", "version": 1, "key": "missing"}, 404, "unknown_key"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "at": "yesterday"}, 422, "invalid_value"),
    ({"index": "near", "version": 1, "vector": [0.0] * DIM, "colour": "red"}, 422, "unknown_field"),
    ([1, 2], 400, "invalid_request"),
]


def test_bad_requests_are_located_4xx(world) -> None:
    c = Client(world["start"]().port)
    for body, status, code in BAD:
        got, _, out = c.post("/v1/neighbors", body)
        assert (got, out["error"]["code"]) == (status, code), (body, out)
        assert "\n" not in out["error"]["message"]
        assert len(out["error"]["message"]) < 600  # a hostile name is not echoed whole
    assert c.get("/v1/neighbors")[0] == 405


def test_a_plan_migration_keeps_an_index_declared_the_same_and_rebuilds_the_others(world, tmp_path) -> None:
    """In process, as the server restores its state: a new feature group migrates the store and keeps
    the index; a changed declaration (another metric) is rebuilt from the source files and the pushes
    the state keeps, answering as a store built afresh would; without the files it cannot be rebuilt
    and refuses to answer (IndexNotBuilt: a 409 over HTTP) rather than answer from an empty index."""
    from astra.compiler import compile_project
    from astra.online import Store, persist
    from astra.online.errors import IndexNotBuilt

    def plan_of(text: str):
        (world["project"] / "p.feat").write_text(text)
        return compile_project(world["project"], lock="ignore").plan

    pushed = [{"item_id": "new", "colour": "red", "shelf": 1, "emb": [1.0, 2, 3, 4, 5, 6], "ts": T0 + 20 * DAY}]
    records = [{"source": "items", "rows": pushed}]
    store = Store(plan_of(PROJECT))
    store.materialize(world["data"])
    store.push("items", pushed)
    q = np.arange(DIM, dtype=np.float32)
    before = store.indexes.search("near@v1", q, 5, None, None)
    assert "new" in before.keys[0]
    store.save(tmp_path / "state")
    extra = 'features f v1 for item { colour: string? = items.colour }\n'
    for text, kept in ((PROJECT + extra, True), (PROJECT.replace("metric cosine", "metric manhattan"), False)):
        plan = plan_of(text)
        fresh = Store(plan)
        fresh.materialize(world["data"])
        fresh.push("items", pushed)
        migration = persist.plan_migration(Store, tmp_path / "state", plan, world["data"], lambda: records)
        assert migration.indexes == (() if kept else ("near@v1",))
        loaded = persist.load(Store, tmp_path / "state", plan, migration)
        persist.rebuild(loaded, migration, world["data"], lambda: records)
        got = loaded.indexes.search("near@v1", q, 5, None, None)
        assert got == fresh.indexes.search("near@v1", q, 5, None, None)
        assert (got == before) == kept
        assert len(loaded.indexes.built["near_l2@v1"]) == len(world["ids"]) - 10 + 1  # declared the same: kept

    # no files to rebuild the changed index from (the tables are unchanged, so they need none): it
    # refuses to answer, the other index answers as before, and it stays so across a restart
    migration = persist.plan_migration(Store, tmp_path / "state", plan, None, lambda: records)
    assert migration.indexes == () and "near@v1 cannot be rebuilt" in migration.describe()
    loaded = persist.load(Store, tmp_path / "state", plan, migration)
    persist.rebuild(loaded, migration, None, lambda: records)
    with pytest.raises(IndexNotBuilt, match="start a new --state"):
        loaded.indexes.search("near@v1", q, 5, None, None)
    assert len(loaded.indexes.built["near_l2@v1"]) == len(world["ids"]) - 10 + 1
    from astra import Online
    from astra.clients.errors import ClientError
    from astra.project import Project

    with pytest.raises(ClientError) as err:  # what a client of `astra serve` gets
        Online(Project(world["project"], plan), store=loaded).neighbors("near@v1", key="i01")
    assert (err.value.status, err.value.code) == (409, "index_not_built")
    loaded.save(tmp_path / "again")
    with pytest.raises(IndexNotBuilt):
        persist.load(Store, tmp_path / "again", plan).indexes.search("near@v1", q, 5, None, None)


def test_a_state_without_an_index_file_rebuilds_it_from_the_files(world, tmp_path) -> None:
    """A state saved before indexes had versions holds no file for `near@v1` though its plan is the
    same: the index is rebuilt from the source files on restore, not served empty."""
    from astra.compiler import compile_project
    from astra.online import Store, persist

    plan = compile_project(world["project"], lock="ignore").plan
    store = Store(plan)
    store.materialize(world["data"])
    q = np.arange(DIM, dtype=np.float32)
    before = store.indexes.search("near@v1", q, 5, None, None)
    store.save(tmp_path / "state")
    for name in ("index_near_v1.npz", "index_near_l2_v1.npz"):
        (tmp_path / "state" / name).unlink()
    migration = persist.plan_migration(Store, tmp_path / "state", plan, world["data"], lambda: [])
    assert migration is not None and migration.rebuilt == () and set(migration.indexes) == {"near@v1", "near_l2@v1"}
    loaded = persist.load(Store, tmp_path / "state", plan, migration)
    persist.rebuild(loaded, migration, world["data"], lambda: [])
    assert loaded.indexes.search("near@v1", q, 5, None, None) == before
    assert len(loaded.indexes.built["near_l2@v1"]) == len(world["ids"]) - 10


def test_one_push_may_insert_delete_and_reinsert_a_key_and_late_rows_are_left_out(world) -> None:
    """In process: a key's changes within one batch apply in time order (a null vector ends its
    version); a row older than the key's latest indexed change is counted in `late`, not indexed."""
    from astra.compiler import compile_project
    from astra.online import Store

    store = Store(compile_project(world["project"], lock="ignore").plan, allowed_lateness=30 * DAY)
    store.materialize(world["data"])
    a, b = [1.0, 0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0]
    row = {"item_id": "x", "colour": "red", "shelf": 0}
    store.push("items", [{**row, "emb": b, "ts": T0 + 12 * DAY}, {**row, "emb": a, "ts": T0 + 10 * DAY},
                         {**row, "emb": None, "ts": T0 + 11 * DAY}])

    def first(vector, at):
        got = store.indexes.search("near@v1", np.asarray(vector, dtype=np.float32), 1, at, None)
        return got.keys[0][0], float(got.distances[0][0])

    assert first(a, T0 + 10 * DAY + 1) == ("x", pytest.approx(0.0, abs=1e-6))
    assert first(a, T0 + 11 * DAY + 1)[0] != "x" and first(b, T0 + 11 * DAY + 1)[0] != "x"  # deleted
    assert first(b, T0 + 12 * DAY + 1) == ("x", pytest.approx(0.0, abs=1e-6))
    assert store.indexes.late["near@v1"] == 0
    store.push("items", [{**row, "emb": a, "ts": T0 + 11 * DAY + 5}])  # older than x's latest change
    assert store.indexes.late["near@v1"] == 1 and first(b, None)[0] == "x"
