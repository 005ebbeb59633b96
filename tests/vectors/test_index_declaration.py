"""The `index` declaration (docs/vectors.md, "Declared indexes"): parsed, formatted back, carried in
the plan with its own fingerprint (groups' fingerprints do not move), absent from plans without one,
and shown by `astra explain`."""

from __future__ import annotations

from pathlib import Path

import attrs
from click.testing import CliRunner

from astra.cli.main import cli
from astra.compiler import compile_project
from astra.lang.fmt import format_text
from astra.lang.parser import parse_text
from astra.plan.serialize import from_data, to_data

BASE = """
entity product { key product_id: string }
snapshot products for product {
    path "products.parquet"
    time ts
    columns { product_id: string  category: string  shelf: int64  emb: vector<float32, 4>? }
}
features p v1 for product { category: string? = products.category }
"""
INDEX = "index near v1 on products.emb { metric euclidean; kind hnsw; filter category, shelf }\n"


def _plan(tmp_path: Path, text: str):
    path = tmp_path / "p.feat"
    path.write_text(text)
    result = compile_project(path, lock="ignore")
    assert not [d for d in result.diagnostics if d.severity.name == "ERROR"], result.diagnostics
    return result.plan


def test_declaration_parses_and_formats_back() -> None:
    module = parse_text(BASE + INDEX)
    decl = module.decls[-1]
    assert (decl.name.value, decl.source.value, decl.column.value) == ("near", "products", "emb")
    assert (decl.metric.value, decl.kind.value, [f.value for f in decl.filters]) == ("euclidean", "hnsw",
                                                                                    ["category", "shelf"])
    text = format_text(BASE + INDEX)
    assert "index near v1 on products.emb {\n    metric euclidean\n    kind hnsw\n    filter category, shelf\n}" in text
    assert parse_text(text) == module  # the formatted text is the same declaration


def test_index_words_stay_usable_as_names() -> None:
    module = parse_text(BASE + "features index v1 for product { metric: string? = products.category  "
                        "kind: int64? = products.shelf }\n")
    assert [f.name.value for f in module.decls[-1].features] == ["metric", "kind"]


def test_plan_carries_the_index_and_its_fingerprint(tmp_path: Path) -> None:
    without = _plan(tmp_path, BASE)
    assert without.indexes is None and "indexes" not in to_data(without)
    plan = _plan(tmp_path, BASE + INDEX)
    (x,) = plan.indexes
    assert (x.source, x.column, x.dim, x.metric, x.kind, x.filters) == ("products", "emb", 4, "euclidean", "hnsw",
                                                                      ("category", "shelf"))
    assert from_data(to_data(plan)) == plan
    assert [g.data_fingerprint for g in plan.groups] == [g.data_fingerprint for g in without.groups]
    cosine = _plan(tmp_path, BASE + INDEX.replace("euclidean", "cosine"))
    assert cosine.indexes[0].fingerprint != x.fingerprint
    defaults = _plan(tmp_path, BASE + "index near v1 on products.emb {}\n").indexes[0]
    assert (defaults.metric, defaults.kind, defaults.filters) == ("cosine", "exact", ())
    assert attrs.evolve(defaults, fingerprint="") != attrs.evolve(x, fingerprint="")


def test_explain_shows_an_index(tmp_path: Path) -> None:
    (tmp_path / "p.feat").write_text(BASE + INDEX)
    result = CliRunner().invoke(cli, ["explain", "near", str(tmp_path), "--allow-unlocked"])
    assert result.exit_code == 0, result.output
    assert "products.emb (vector<float32, 4>)" in result.output and "metric:      euclidean" in result.output
    assert "filters:     category, shelf" in result.output


def test_an_index_needs_a_version_and_one_declaration_per_version(tmp_path: Path) -> None:
    from astra.diagnostics import render_all

    (tmp_path / "p.feat").write_text(BASE + "index near on products.emb {}\n")
    result = compile_project(tmp_path, lock="ignore")
    text = render_all(result.diagnostics, result.sources)
    assert [d.code for d in result.diagnostics] == ["E0018"], text
    assert "p.feat:9:12" in text and "expected a version like `v1`" in text
    (tmp_path / "p.feat").write_text(BASE + INDEX + INDEX.replace("hnsw", "exact"))
    result = compile_project(tmp_path, lock="ignore")
    assert [d.code for d in result.diagnostics] == ["E0107"]
    assert "index near v1 is defined twice" in result.diagnostics[0].message
    two = _plan(tmp_path, BASE + INDEX + INDEX.replace("near v1", "near v2").replace("hnsw", "exact"))
    assert [(x.id, x.kind) for x in two.indexes] == [("near@v1", "hnsw"), ("near@v2", "exact")]
    assert two.indexes[0].fingerprint != two.indexes[1].fingerprint


def test_explain_shows_every_version_or_the_one_named(tmp_path: Path) -> None:
    (tmp_path / "p.feat").write_text(BASE + INDEX + INDEX.replace("near v1", "near v2").replace("hnsw", "exact"))
    both = CliRunner().invoke(cli, ["explain", "near", str(tmp_path), "--allow-unlocked"])
    assert both.exit_code == 0 and "index near v1" in both.output and "index near v2" in both.output
    one = CliRunner().invoke(cli, ["explain", "near@v2", str(tmp_path), "--allow-unlocked"])
    assert one.exit_code == 0 and "index near v2" in one.output and "near v1" not in one.output


def test_hnsw_settings_are_declared_formatted_and_carried(tmp_path: Path) -> None:
    """`m`, `ef_construction` and `ef_search` set the graph of an hnsw index (defaults otherwise:
    astra.vectors.HnswParams); the store builds its index with them."""
    from astra.online import Store
    from astra.vectors import HnswParams

    text = BASE + "index near v1 on products.emb { kind hnsw; ef_search 64\n m 12 }\n"
    formatted = format_text(text)
    assert "    kind hnsw\n    ef_search 64\n    m 12\n}" in formatted
    assert parse_text(formatted) == parse_text(text)
    (x,) = _plan(tmp_path, text).indexes
    default = HnswParams()
    assert dict(x.hnsw) == {"m": 12, "ef_construction": default.ef_construction, "ef_search": 64}
    assert _plan(tmp_path, BASE + INDEX.replace("kind hnsw", "kind exact")).indexes[0].hnsw is None
    plan = _plan(tmp_path, text)
    assert from_data(to_data(plan)) == plan
    built = Store(plan).indexes.built["near@v1"]
    assert (built.params.m, built.params.ef_search, built.graph.hnsw.efConstruction) == (12, 64,
                                                                                         default.ef_construction)
    same = _plan(tmp_path, BASE + f"index near v1 on products.emb {{ kind hnsw; m 12; ef_search 64; "
                 f"ef_construction {default.ef_construction} }}\n").indexes[0]
    assert same.fingerprint == x.fingerprint  # a default written out is the same graph
    assert _plan(tmp_path, text.replace("ef_search 64", "ef_search 65")).indexes[0].fingerprint != x.fingerprint
