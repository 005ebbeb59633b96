"""The fitted `one_hot(x)`: its vocabulary is the sorted distinct training values (scikit-learn's
OneHotEncoder categories), its value a list of one 0/1 indicator per category, all 0 for a value
the fit never saw (OneHotEncoder(handle_unknown="ignore")), and null for a null value; every engine
(offline, online single and batch plans, reference) gives the same lists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from three_engines import CompileFailed, check, compile_features, run_all

from astra.demo_data import generate
from astra.ops.transforms import TRANSFORMS
from astra.plan import reference
from astra.plan.fit import bind_features

sklearn = pytest.importorskip("sklearn")
from sklearn.preprocessing import OneHotEncoder  # noqa: E402

T0 = 1_700_000_000_000_000


def _fit(values, dtype) -> dict:
    return TRANSFORMS["one_hot"].fit(pl.Series("x", values, dtype=dtype), "x", ())


def _engines(features: str, fields: str, stats: dict, queries: list[dict]) -> dict[str, list[dict]]:
    plan = bind_features(compile_features(features, fields), stats)
    spine = [{"ts": T0 + i, **q} for i, q in enumerate(queries)]
    results = run_all(plan, spine)
    results["reference"] = reference.evaluate(plan, "svc", 1, [{"uid": 1, **r} for r in spine], {"ev": []})
    return results


def _lists(results: dict, name: str) -> dict[str, list]:
    """Each engine's values of `name`, lists as plain lists of ints."""
    return {engine: [None if r[name] is None else [int(v) for v in r[name]] for r in rows]
            for engine, rows in results.items()}


def test_strings_agree_with_one_hot_encoder() -> None:
    rng = np.random.default_rng(5)
    words = ["b", "a", "ä", "Z", "", "a b", "日本", "c"]
    train = [words[i] for i in rng.integers(0, 6, 120)]
    stats = _fit([*train, None], pl.String)
    enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(np.array(train, dtype=object).reshape(-1, 1))
    assert stats["categories"] == enc.categories_[0].tolist()
    want = enc.transform(np.array(words, dtype=object).reshape(-1, 1)).astype(int).tolist()
    assert [0] * len(stats["categories"]) in want  # words the fit never saw: all 0
    results = _engines("    h: list<int32>? = one_hot(r.s)", "s: string?", {"g@v1.h#0": stats},
                       [{"s": w} for w in [*words, None]])
    for engine, got in _lists(results, "h").items():
        assert got == [*want, None], engine


def test_integers_and_bools() -> None:
    stats = _fit([5, -3, 5, 2**62, None], pl.Int64)
    assert stats["categories"] == [-3, 5, 2**62]
    enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(np.array([[5], [-3], [5], [2**62]]))
    queries = [2**62, -3, 5, 4, -(2**63)]
    want = enc.transform(np.array(queries).reshape(-1, 1)).astype(int).tolist()
    results = _engines("    h: list<int32>? = one_hot(r.n)", "n: int64?", {"g@v1.h#0": stats},
                       [{"n": v} for v in [*queries, None]])
    for engine, got in _lists(results, "h").items():
        assert got == [*want, None], engine
    stats = _fit([True, True, None], pl.Boolean)
    assert stats["categories"] == [1]
    results = _engines("    h: list<int32>? = one_hot(r.b)", "b: bool?", {"g@v1.h#0": stats},
                       [{"b": True}, {"b": False}, {"b": None}])
    for engine, got in _lists(results, "h").items():
        assert got == [[1], [0], None], engine


def test_a_fit_with_no_category_gives_empty_lists() -> None:
    results = _engines("    h: list<int32>? = one_hot(r.s)", "s: string?", {"g@v1.h#0": {"categories": []}},
                       [{"s": "a"}, {"s": None}])
    for engine, got in _lists(results, "h").items():
        assert got == [[], None], engine


words = st.sampled_from(["a", "b", "", "ä", "日本", "a "])


@settings(max_examples=20, deadline=None)
@given(st.lists(words, max_size=5, unique=True), st.lists(st.one_of(st.none(), words), min_size=1, max_size=12))
def test_every_engine_equals_the_reference(categories, values) -> None:
    plan = bind_features(compile_features("    h: list<int32>? = one_hot(r.s)", "s: string?"),
                         {"g@v1.h#0": {"categories": sorted(categories)}})
    spine = [{"ts": T0 + i, "s": v} for i, v in enumerate(values)]
    ref = reference.evaluate(plan, "svc", 1, [{"uid": 1, **r} for r in spine], {"ev": []})
    check(run_all(plan, spine), {"h": [r["h"] for r in ref]})
    cats = sorted(categories)
    got = [None if r["h"] is None else list(r["h"]) for r in ref]
    assert got == [None if v is None else [int(v == c) for c in cats] for v in values]


def test_the_stateless_form_keeps_its_meaning_and_bad_types_are_refused() -> None:
    plan = compile_features('    h: int32? = one_hot(r.s, "a")', "s: string?")
    assert plan.features[0].expr.op == "one_hot"  # a category literal: the stateless indicator, no fit
    with pytest.raises(CompileFailed, match="E0803"):
        compile_features("    h: list<int32>? = one_hot(r.f)", "f: float64?")
    with pytest.raises(CompileFailed, match="E0202"):
        compile_features('    h: list<int32>? = one_hot(r.s, "a", "b")', "s: string?")


def test_null_gets_a_column_of_its_own_through_a_literal_impute() -> None:
    # as docs/language.md advises: impute with a literal first, and "none" is a category like any other
    stats = _fit(["b", "none", "a"], pl.String)
    results = _engines('    h: list<int32> = one_hot(impute(r.s, "none"))', "s: string?", {"g@v1.h#0": stats},
                       [{"s": None}, {"s": "a"}, {"s": "zz"}])
    for engine, got in _lists(results, "h").items():
        assert got == [[0, 0, 1], [1, 0, 0], [0, 0, 0]], engine


HOT = """
features spend_hot v1 for user {
    last_category_hot: list<int32>? = one_hot(user_spend@v1.last_category)
}

service hot v1 { spend_hot@v1.* }
"""


def test_astra_fit_then_backfill_and_parity_on_the_example_data(tmp_path) -> None:
    project = tmp_path / "features"
    shutil.copytree(Path(__file__).resolve().parents[2] / "features", project, ignore=shutil.ignore_patterns("build"))
    (project / "hot.feat").write_text('import "spend.feat"\n' + HOT)
    data = tmp_path / "data"
    generate(data, events=5_000, users=200, labels=300)

    def astra(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "astra.cli.main", *args, str(project), "--service", "hot@v1",
                               "--spine", str(data / "spine.parquet"), "--data-root", str(data), "--allow-unlocked"],
                              capture_output=True, text=True, timeout=300)

    r = astra("fit")
    assert r.returncode == 0, r.stderr
    fid = json.loads((project / "astra.lock").read_text())["fits"]["hot@v1"]["id"]
    stats = json.loads((project / "fits" / f"{fid}.json").read_text())["transforms"][
        "spend_hot@v1.last_category_hot#0"]["stats"]
    cats = stats["categories"]
    assert cats == sorted(set(cats)) and len(cats) > 1
    out = tmp_path / "hot.parquet"
    r = subprocess.run([sys.executable, "-m", "astra.cli.main", "backfill", str(project), "--service", "hot@v1",
                        "--spine", str(data / "spine.parquet"), "--data-root", str(data), "--out", str(out),
                        "--allow-unlocked"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    hot = [v for v in pl.read_parquet(out).get_column("last_category_hot").to_list() if v is not None]
    assert hot and all(len(v) == len(cats) and sorted(v) == [0] * (len(cats) - 1) + [1] for v in hot)
    r = astra("parity")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def test_a_vocabulary_past_the_limit_is_a_fit_error() -> None:
    from astra.ops.transforms import MAX_ONE_HOT, FitDataError

    assert len(_fit([f"w{i}" for i in range(MAX_ONE_HOT)], pl.String)["categories"]) == MAX_ONE_HOT
    with pytest.raises(FitDataError, match=r"x: 1,001 distinct values .* more than one_hot's 1,000 columns"):
        _fit([f"w{i}" for i in range(MAX_ONE_HOT + 1)] + [None], pl.String)


def test_the_widest_vocabulary_in_every_engine() -> None:
    from astra.ops.transforms import MAX_ONE_HOT

    cats = sorted(f"w{i:04d}" for i in range(MAX_ONE_HOT))
    results = _engines("    h: list<int32>? = one_hot(r.s)", "s: string?", {"g@v1.h#0": {"categories": cats}},
                       [{"s": "w0999"}, {"s": "w0000"}, {"s": "nope"}])
    for engine, got in _lists(results, "h").items():
        assert [v.index(1) if 1 in v else None for v in got] == [999, 0, None], engine
        assert all(len(v) == MAX_ONE_HOT for v in got), engine
