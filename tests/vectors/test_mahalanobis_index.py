"""A declared `metric mahalanobis` index (docs/vectors.md, "Declared indexes"): `astra fit --index`
fits the covariance of the source's vectors offline and pins it in astra.lock; the index then answers
as scipy's mahalanobis distance with that covariance's inverse, by vector and by key, online and in
a backfill alike.  Unfitted, it answers nothing (409, a one-line backfill error naming the command)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from scipy.spatial.distance import cdist

from astra.cli.main import cli
from astra.offline.neighbors import nearest
from astra.online import Store
from astra.project import Project
from astra.serve.neighbors import answer
from astra.serve.validate import ApiError

DIM = 4
PROJECT = f"""
entity item {{ key item_id: string }}
snapshot items for item {{
    path "items.parquet"
    time ts
    columns {{ item_id: string  shelf: int64  emb: vector<float32, {DIM}>? }}
}}
index near v1 on items.emb {{ metric mahalanobis; filter shelf }}
index near_graph v1 on items.emb {{ metric mahalanobis; kind hnsw }}
index plain v1 on items.emb {{ metric euclidean }}
"""
SCALE = np.array([1.0, 30.0, 0.05, 4.0])  # very different spreads: mahalanobis ranks unlike euclidean


def vectors(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.eye(DIM) + 0.4 * rng.normal(size=(DIM, DIM))  # correlated components
    return ((rng.normal(size=(n, DIM)) * SCALE) @ mix).astype(np.float32)


@pytest.fixture
def world(tmp_path):
    project, data = tmp_path / "project", tmp_path / "data"
    project.mkdir()
    data.mkdir()
    (project / "p.feat").write_text(PROJECT)
    x = vectors(1, 60)
    ids = [f"i{j:02d}" for j in range(60)]
    write(data, ids, x, [10] * 60)
    run("compile", str(project), "--lock")
    return {"project": project, "data": data, "ids": ids, "x": x}


def write(data, ids, x, times) -> None:
    pl.DataFrame({"item_id": ids, "shelf": [j % 3 for j in range(len(ids))],
                  "emb": pl.Series(x.tolist(), dtype=pl.Array(pl.Float32, DIM)),
                  "ts": pl.Series(times).cast(pl.Datetime("us"))}).write_parquet(data / "items.parquet")


def run(*args, code: int = 0):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def brute(x: np.ndarray, ids: list[str], query: np.ndarray, k: int, cov: np.ndarray, skip=None):
    d = cdist(query[None, :].astype(np.float64), x.astype(np.float64), "mahalanobis", VI=np.linalg.inv(cov))[0]
    order = sorted((j for j in range(len(ids)) if ids[j] != skip), key=lambda j: (d[j], ids[j]))[:k]
    return [ids[j] for j in order], d[order]


def store_of(world):
    plan = Project.load(world["project"]).plan
    store = Store(plan)
    store.materialize(world["data"])
    return plan, store


def ask(plan, store, **body):
    out = answer(store, plan, {"version": 1, "k": 5, **body})
    return [n["key"] for n in out["neighbors"]], np.array([n["distance"] for n in out["neighbors"]])


def test_the_fitted_index_ranks_as_scipy_mahalanobis_with_the_fitted_covariance(world) -> None:
    out = run("fit", str(world["project"]), "--index", "near@v1", "--data-root", str(world["data"])).output
    assert "on 60 vectors" in out and "(new)" in out
    run("fit", str(world["project"]), "--index", "near_graph@v1", "--data-root", str(world["data"]))
    lock = json.loads((world["project"] / "astra.lock").read_text())
    fid = lock["fits"]["index:near@v1"]["id"]
    artifact = json.loads((world["project"] / "fits" / f"{fid}.json").read_text())
    x = world["x"].astype(np.float64)
    cov = np.array(artifact["covariance"]).reshape(DIM, DIM)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-12)  # the sample covariance, n - 1

    plan, store = store_of(world)
    q = np.array([0.5, -20.0, 0.01, 3.0], dtype=np.float32)
    for name in ("near", "near_graph"):
        keys, dist = ask(plan, store, index=name, vector=q.tolist())
        want_keys, want_dist = brute(world["x"], world["ids"], q, 5, cov)
        assert keys == want_keys
        np.testing.assert_allclose(dist, want_dist, rtol=1e-5)
    # by key: that key's own vector is the query (not whitened twice), the key left out
    keys, dist = ask(plan, store, index="near", key="i07")
    want_keys, want_dist = brute(world["x"], world["ids"], world["x"][7], 5, cov, skip="i07")
    assert keys == want_keys
    np.testing.assert_allclose(dist, want_dist, rtol=1e-5)
    # the fit is what makes it mahalanobis: euclidean ranks these data otherwise
    assert ask(plan, store, index="plain", vector=q.tolist())[0] != ask(plan, store, index="near", vector=q.tolist())[0]
    keys, _ = ask(plan, store, index="near", vector=q.tolist(), filter={"shelf": 2})
    shelf2 = [j for j in range(60) if j % 3 == 2]
    assert keys == brute(world["x"][shelf2], [world["ids"][j] for j in shelf2], q, 5, cov)[0]


def test_a_backfill_of_k_nearest_at_t_matches_the_server(world) -> None:
    run("fit", str(world["project"]), "--index", "near@v1", "--data-root", str(world["data"]))
    plan, store = store_of(world)
    spine = pl.DataFrame({"item_id": world["ids"][:12], "ts": [11] * 12}).with_columns(
        pl.col("ts").cast(pl.Datetime("us")))
    out = nearest(plan, "near@v1", spine, world["data"], k=4)
    for row in out.iter_rows(named=True):
        keys, dist = ask(plan, store, index="near", key=row["item_id"], k=4)
        assert row["near_neighbors"] == keys
        np.testing.assert_allclose(row["near_distances"], dist, rtol=1e-12)


def test_an_unfitted_index_answers_nothing_and_says_how_to_fit_it(world) -> None:
    plan, store = store_of(world)
    with pytest.raises(ApiError) as err:
        ask(plan, store, index="near", key="i01")
    assert err.value.status == 409 and "astra fit PROJECT --index near@v1" in err.value.message
    assert ask(plan, store, index="plain", key="i01")[0]  # the other indexes serve on
    spine = pl.DataFrame({"item_id": ["i01"], "ts": [11]}).with_columns(pl.col("ts").cast(pl.Datetime("us")))
    result = run("backfill", str(world["project"]), "--neighbors", "near@v1", "--spine", str(write_spine(world, spine)),
                 "--data-root", str(world["data"]), "--out", str(world["data"] / "out.parquet"), code=1)
    assert "no current fit" in result.output and "--index near@v1" in result.output


def write_spine(world, spine: pl.DataFrame):
    path = world["data"] / "spine.parquet"
    spine.write_parquet(path)
    return path


def test_a_refit_on_other_data_moves_the_pin_and_the_answers(world) -> None:
    project, data = world["project"], world["data"]
    first = run("fit", str(project), "--index", "near@v1", "--data-root", str(data)).output.split("fit ")[1][:16]
    plan, _ = store_of(world)
    before = next(x for x in plan.indexes if x.name == "near")
    x2 = vectors(2, 60)
    write(data, world["ids"], x2, [10] * 60)
    out = run("fit", str(project), "--index", "near@v1", "--data-root", str(data)).output
    assert f"replaces {first}" in out
    entry = json.loads((project / "astra.lock").read_text())["fits"]["index:near@v1"]
    assert entry["previous"] == [first] and entry["id"] != first
    plan, store = store_of(world)
    after = next(x for x in plan.indexes if x.name == "near")
    assert after.fingerprint != before.fingerprint  # a restored store rebuilds the index with the new fit
    q = np.zeros(DIM, dtype=np.float32)
    assert ask(plan, store, index="near", vector=q.tolist())[0] == brute(x2, world["ids"], q, 5,
                                                                         np.cov(x2.astype(np.float64), rowvar=False))[0]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--index", "plain@v1"], 1, "has nothing to fit"),
    (["--index", "nope@v1"], 1, "nope"),
    (["--index", "near@v1", "--service", "s@v1"], 2, "exactly one of --service"),
    (["--index", "near@v1", "--spine", "x.parquet"], 2, "an index is fitted on its whole source file"),
    ([], 2, "exactly one of --service"),
])
def test_fit_index_errors_are_one_line(world, args, code, message) -> None:
    result = run("fit", str(world["project"]), *args, "--data-root", str(world["data"]), code=code)
    assert message in result.output and "Traceback" not in result.output


def test_too_few_vectors_to_fit_is_an_error(world) -> None:
    write(world["data"], ["a", "b"], vectors(3, 2)[:2], [10, 10])
    pl.read_parquet(world["data"] / "items.parquet").with_columns(
        pl.when(pl.col("item_id") == "b").then(None).otherwise(pl.col("emb")).alias("emb")) \
        .write_parquet(world["data"] / "items.parquet")
    result = run("fit", str(world["project"]), "--index", "near@v1", "--data-root", str(world["data"]), code=1)
    assert "holds 1 non-null vector(s); a covariance needs at least 2" in result.output


def test_a_fit_of_another_declaration_is_stale_and_not_used(world) -> None:
    run("fit", str(world["project"]), "--index", "near_graph@v1", "--data-root", str(world["data"]))
    changed = PROJECT.replace("{ metric mahalanobis; kind hnsw }", "{ metric mahalanobis; kind hnsw; ef_search 64 }")
    (world["project"] / "p.feat").write_text(changed)
    project = Project.load(world["project"], allow_unlocked=True)
    assert any("fit of index near_graph@v1 is stale" in n for n in project.notes)
    graph = next(x for x in project.plan.indexes if x.name == "near_graph")
    assert graph.covariance is None  # unfitted: built by nothing


def test_identical_vectors_have_no_covariance_to_fit(world) -> None:
    same = np.repeat(vectors(4, 1), 3, axis=0)
    write(world["data"], ["a", "b", "c"], same, [10, 10, 10])
    result = run("fit", str(world["project"]), "--index", "near@v1", "--data-root", str(world["data"]), code=1)
    assert "cannot fit the vectors of `items.emb`" in result.output and "Traceback" not in result.output
    assert "index:near@v1" not in (world["project"] / "astra.lock").read_text()  # nothing pinned
