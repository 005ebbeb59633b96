"""An index version in astra.lock (docs/vectors.md, "Versions and astra.lock"): released with
`astra compile --lock`, recorded with its fingerprint, and a changed declaration without a version
bump is refused with a located E0601 (pinned in golden/index_lock_E0601.txt); a new version beside
the released one is accepted once released, both are served, and neither answers for the other."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from astra.cli.main import cli
from astra.compiler import compile_project
from astra.diagnostics import render_all

GOLDEN = Path(__file__).parent / "golden"
BASE = """entity product { key product_id: string }
snapshot products for product {
    path "products.parquet"
    time ts
    columns { product_id: string  category: string  shelf: int64  emb: vector<float32, 3>? }
}
features p v1 for product { category: string? = products.category }
"""
V1 = """index near v1 on products.emb {
    metric cosine
    filter category
}
"""


def codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "p.feat").write_text(BASE + text)
    return tmp_path


def test_a_new_index_version_is_released_and_recorded(tmp_path: Path) -> None:
    d = project(tmp_path, V1)
    first = compile_project(d, lock="check")  # neither the group nor the index is released yet
    assert codes(first) == ["E0602", "E0602"]
    assert "index `near@v1` is a new version not yet in astra.lock" in render_all(first.diagnostics, first.sources)
    released = compile_project(d, lock="update")
    assert released.ok and "added index near@v1 to astra.lock" in released.notes
    entry = json.loads((d / "astra.lock").read_text())["indexes"]["near@v1"]
    assert entry["fingerprint"] == released.plan.indexes[0].fingerprint
    assert (entry["on"], entry["metric"], entry["kind"], entry["filters"]) == ("products.emb", "cosine", "exact",
                                                                               ["category"])
    again = compile_project(d, lock="locked")  # CI: nothing left to write
    assert again.ok, render_all(again.diagnostics, again.sources)


@pytest.mark.parametrize(("change", "words"), [
    (("metric cosine", "metric euclidean"), "metric cosine -> euclidean"),
    (("metric cosine", "metric cosine\n    kind hnsw"), "kind exact -> hnsw"),
    (("filter category", "filter category, shelf"), "filters category -> category, shelf"),
    (("filter category\n", ""), "filters category -> none"),
    (("emb: vector<float32, 3>?", "emb: vector<float32, 4>?"), "dim 3 -> 4"),
    (("category: string", "category: int64"), "what it reads changed (-category: string, +category: int64)"),
    (("metric cosine", "metric cosine\n    kind hnsw\n    ef_search 64"), "kind exact -> hnsw"),
])
def test_a_changed_declaration_needs_a_new_version(tmp_path: Path, change, words) -> None:
    d = project(tmp_path, V1)
    assert compile_project(d, lock="update").ok
    before = (d / "astra.lock").read_text()
    (d / "p.feat").write_text((BASE + V1).replace(*change))
    result = compile_project(d, lock="check")
    # a change to the source's schema also changes the group reading it (its own E0601)
    assert [x.code for x in result.diagnostics if "index" in x.message] == ["E0601"]
    text = render_all(result.diagnostics, result.sources)
    assert f"index `near@v1` changed but its version did not: {words}" in text
    assert "index near v2 on" in text  # the next free version
    assert (d / "astra.lock").read_text() == before  # refused: the lock is left as it was


def test_the_refusal_is_located_and_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    d = project(Path("."), V1)
    assert compile_project(d, lock="update").ok
    (d / "p.feat").write_text(BASE + V1.replace("metric cosine", "metric manhattan").replace(
        "filter category", "filter category, shelf"))
    result = compile_project(d, lock="check")
    rendered = render_all(result.diagnostics, result.sources) + "\n"
    golden = GOLDEN / "index_lock_E0601.txt"
    if os.environ.get("ASTRA_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


def test_what_does_not_change_answers_needs_no_new_version(tmp_path: Path) -> None:
    """Owner, description, layout and columns the index does not read leave its fingerprint alone."""
    d = project(tmp_path, V1)
    assert compile_project(d, lock="update").ok
    text = (BASE + V1).replace("shelf: int64", "shelf: int64  colour: string").replace(
        "    metric cosine", '    description "alike products"\n    owner "search@example.com"\n    metric cosine')
    (d / "p.feat").write_text(text)
    result = compile_project(d, lock="check")
    # (the group reading the source is stricter: any schema change moves its fingerprint)
    assert [x.code for x in result.diagnostics] == ["E0601"] and "`p@v1`" in result.diagnostics[0].message
    assert result.plan.indexes[0].fingerprint == json.loads((d / "astra.lock").read_text())["indexes"]["near@v1"][
        "fingerprint"]


def test_engines_refuse_a_changed_index_unless_allowed_and_note_a_new_one(tmp_path: Path) -> None:
    from astra.project import Project, ProjectError

    d = project(tmp_path, V1)
    assert compile_project(d, lock="update").ok
    (d / "p.feat").write_text((BASE + V1).replace("metric cosine", "metric euclidean"))
    with pytest.raises(ProjectError, match="index `near@v1` changed"):
        Project.load(d)
    assert any("near@v1" in n for n in Project.load(d, allow_unlocked=True).notes)
    (d / "p.feat").write_text(BASE + V1 + V1.replace("near v1", "near v2").replace("cosine", "euclidean"))
    loaded = Project.load(d)
    assert any("under development" in n and "near@v2" in n for n in loaded.notes)
    assert [x.id for x in loaded.plan.indexes] == ["near@v1", "near@v2"]


def test_two_versions_are_served_side_by_side(tmp_path: Path) -> None:
    """v1 (cosine) keeps its answers after v2 (euclidean) is declared beside it; each request names
    the version it relies on."""
    import astra
    from astra.clients.errors import ClientError

    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "proj").mkdir()
    d = project(tmp_path / "proj", V1 + V1.replace("near v1", "near v2").replace("cosine", "euclidean"))
    assert compile_project(d, lock="update").ok
    vecs = np.array([[1, 0, 0], [10, 1, 0], [0, 1, 0], [0.5, 0.5, 0]], dtype=np.float32)
    pl.DataFrame({"product_id": ["a", "b", "c", "d"], "category": ["x"] * 4, "shelf": [1, 2, 3, 4],
                  "emb": pl.Series(vecs.tolist(), dtype=pl.Array(pl.Float32, 3)),
                  "ts": pl.Series([1, 1, 1, 1]).cast(pl.Datetime("us"))}).write_parquet(data / "products.parquet")
    online = astra.Online(d, data_root=data)
    q = [1.0, 0.0, 0.0]
    cos = online.neighbors("near@v1", q, k=4)
    l2 = online.neighbors("near@v2", q, k=4)
    assert online.neighbors("near", q, k=4, version=2) == l2
    # by angle b (10, 1) is nearer to (1, 0) than d (0.5, 0.5); by distance it is the farthest
    assert [n["key"] for n in cos["neighbors"]] == ["a", "b", "d", "c"] and cos["version"] == 1
    assert [n["key"] for n in l2["neighbors"]] == ["a", "d", "c", "b"] and l2["version"] == 2
    with pytest.raises(ClientError) as err:
        online.neighbors("near", q)  # which version? the request must say
    assert err.value.status == 422 and err.value.location == "version"


def test_a_malformed_indexes_entry_is_a_lock_file_error(tmp_path: Path) -> None:
    d = project(tmp_path, V1)
    assert compile_project(d, lock="update").ok
    lock = json.loads((d / "astra.lock").read_text())
    lock["indexes"]["near@v1"] = {"metric": "cosine"}
    (d / "astra.lock").write_text(json.dumps(lock))
    result = CliRunner().invoke(cli, ["compile", str(d)])
    assert result.exit_code == 1
    assert "not a valid lock file: index `near@v1` needs a `fingerprint`" in result.output


def test_a_stale_description_with_the_same_fingerprint_is_rewritten_and_said(tmp_path: Path) -> None:
    d = project(tmp_path, V1)
    assert compile_project(d, lock="update").ok
    lock = json.loads((d / "astra.lock").read_text())
    lock["indexes"]["near@v1"]["reads"] = ["something older"]
    (d / "astra.lock").write_text(json.dumps(lock))
    refused = compile_project(d, lock="locked")  # CI: says what would be rewritten
    assert codes(refused) == ["E0603"] and "description of index near@v1" in refused.diagnostics[0].message
    rewritten = compile_project(d, lock="check")
    assert rewritten.ok and any("description of index near@v1" in n for n in rewritten.notes)
    assert json.loads((d / "astra.lock").read_text())["indexes"]["near@v1"]["reads"] != ["something older"]


def test_a_changed_hnsw_setting_needs_a_new_version(tmp_path: Path) -> None:
    hnsw = V1.replace("metric cosine", "metric cosine\n    kind hnsw\n    ef_search 128")
    d = project(tmp_path, hnsw)
    assert compile_project(d, lock="update").ok
    assert json.loads((d / "astra.lock").read_text())["indexes"]["near@v1"]["hnsw"]["ef_search"] == 128
    (d / "p.feat").write_text(BASE + hnsw.replace("ef_search 128", "ef_search 64"))
    result = compile_project(d, lock="check")
    assert codes(result) == ["E0601"]
    assert "index `near@v1` changed but its version did not: ef_search 128 -> 64" in result.diagnostics[0].message
