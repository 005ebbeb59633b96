"""A declared index's memory limit (docs/vectors.md, "Declared indexes"): `memory_limit_mib N` caps
the bytes the built index holds.  Rows that would take it past the limit empty it and it answers
409 `index_not_built` saying so, while the features go on taking and serving the rows; raising the
limit (no new version: the answers do not change) and restarting rebuilds it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from serve_harness import Client, launch

from astra.cli.main import cli
from astra.online import Store
from astra.online.errors import IndexNotBuilt
from astra.project import Project

DIM = 64
PROJECT = f"""
entity item {{ key item_id: string }}
snapshot items for item {{
    path "items.parquet"
    time ts
    columns {{ item_id: string  emb: vector<float32, {DIM}>? }}
}}
index near v1 on items.emb {{ metric euclidean; memory_limit_mib LIMIT }}
index free v1 on items.emb {{ metric euclidean }}
features item_features v1 for item {{
    length: float64? = norm(items.emb)
}}
service items_svc v1 {{ item_features@v1.* }}
"""
T0 = 1_767_225_600_000_000


def world(tmp_path, limit: int, rows: int):
    project, data = tmp_path / "project", tmp_path / "data"
    project.mkdir(exist_ok=True)
    data.mkdir(exist_ok=True)
    (project / "p.feat").write_text(PROJECT.replace("LIMIT", str(limit)))
    x = np.random.default_rng(0).normal(size=(rows, DIM)).astype(np.float32)
    pl.DataFrame({"item_id": [f"i{j:05d}" for j in range(rows)], "emb": pl.Series(x.tolist(), dtype=pl.Array(
        pl.Float32, DIM)), "ts": pl.Series([T0] * rows).cast(pl.Datetime("us"))}).write_parquet(data / "items.parquet")
    result = CliRunner().invoke(cli, ["compile", str(project), "--lock"])
    assert result.exit_code == 0, result.output
    return project, data, x


def test_the_setting_is_checked_and_needs_no_new_version(tmp_path) -> None:
    project, _, _ = world(tmp_path, 4, 10)
    before = next(x for x in Project.load(project).plan.indexes if x.name == "near")
    assert before.memory_limit == 4 << 20
    (project / "p.feat").write_text(PROJECT.replace("LIMIT", "8"))
    after = next(x for x in Project.load(project).plan.indexes if x.name == "near")  # the lock still holds
    assert after.memory_limit == 8 << 20 and after.fingerprint != before.fingerprint  # a store rebuilds it
    from astra.plan.indexes import changed_in_lock
    from astra.plan.lock import read_lock

    assert changed_in_lock(Project.load(project).plan, read_lock(project / "astra.lock")) == ([], [])
    result = CliRunner().invoke(cli, ["compile", str(project)])
    assert result.exit_code == 0, result.output
    (project / "p.feat").write_text(PROJECT.replace("LIMIT", "0"))
    result = CliRunner().invoke(cli, ["compile", str(project)])
    assert result.exit_code == 1 and "`memory_limit_mib` must be from 1 to 16,777,216, not 0" in result.output


def test_rows_past_the_limit_empty_the_index_and_the_features_serve_on(tmp_path) -> None:
    # 1 MiB holds about 4,000 vectors of 64 float32 (256 bytes each, plus the index's own arrays)
    project, data, x = world(tmp_path, 1, 2_000)
    plan = Project.load(project).plan
    store = Store(plan)
    store.materialize(data)
    assert store.indexes.search("near@v1", x[0], 1, None, None).keys[0] == ("i00000",)
    more = [{"item_id": f"n{j:05d}", "ts": T0 + 1, "emb": row.tolist()}
            for j, row in enumerate(np.random.default_rng(1).normal(size=(4_000, DIM)).astype(np.float32))]
    store.push("items", more)
    with pytest.raises(IndexNotBuilt, match=r"index near@v1 passed its memory limit.*memory_limit_mib"):
        store.indexes.search("near@v1", x[0], 1, None, None)
    assert store.indexes.built["near@v1"].rows.n == 0  # emptied: the memory is given back
    assert store.indexes.search("free@v1", x[0], 1, None, None).keys[0] == ("i00000",)  # the others serve on
    got = store.get("items_svc@v1", [{"item_id": "n00003"}], at=T0 + 2).rows()[0]["length"]
    assert got == pytest.approx(float(np.linalg.norm(np.float64(more[3]["emb"]))), rel=1e-12)  # the rows are stored


def test_over_the_limit_at_start_is_a_409_and_a_raised_limit_rebuilds_it(tmp_path) -> None:
    project, data, x = world(tmp_path, 1, 6_000)
    server = launch(project, tmp_path / "state", "--data-root", str(data))
    try:
        c = Client(server.port)
        status, _, out = c.post("/v1/neighbors", {"index": "near", "version": 1, "key": "i00001", "k": 3})
        assert status == 409 and out["error"]["code"] == "index_not_built", out
        assert "memory limit" in out["error"]["message"]
        status, _, out = c.post("/v1/features", {"service": "items_svc", "version": 1,
                                                 "entities": [{"item_id": "i00001"}]})
        assert status == 200 and out["results"][0]["values"][0] is not None
    finally:
        server.stop()
    (project / "p.feat").write_text(PROJECT.replace("LIMIT", "64"))
    server = launch(project, tmp_path / "state", "--data-root", str(data))
    try:
        status, _, out = Client(server.port).post("/v1/neighbors", {"index": "near", "version": 1, "vector":
                                                                    x[5].tolist(), "k": 1})
        assert status == 200 and out["neighbors"][0]["key"] == "i00005", out
    finally:
        server.stop()
