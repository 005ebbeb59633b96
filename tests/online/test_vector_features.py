"""Vector features in every engine: the offline backfill, the online store's single-entity and batch
plans and the reference interpreter give the same bits for as-of lookups of vectors, vectors taken
from a window, and every vector function over them (docs/language.md, "Vectors")."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "offline"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))

from helpers import run_engine
from three_engines import identical

from astra.compiler import compile_project
from astra.diagnostics import render_all
from astra.errors import DataError
from astra.lang.types import TIMESTAMP
from astra.online import Store
from astra.online.errors import SchemaError
from astra.online.store import SMALL
from astra.plan import ir, reference

N = 5
PROJECT = f"""
entity user {{ key uid: int64 }}
events clicks for user {{
    path "clicks.parquet"
    time ts
    columns {{ uid: int64  item: vector<float32, {N}>? }}
}}
snapshot profiles for user {{
    path "profiles.parquet"
    time ts
    columns {{ uid: int64  taste: vector<float32, {N}>?  weight: float64? }}
}}
request r {{ unused: int64? }}
features vec v1 for user {{
    taste: vector<float32, {N}>? = profiles.taste
    recent: vector<float32, {N}>? = last(clicks.item, 20us)
    oldest: vector<float32, {N}>? = first(clicks.item)
    affinity: float64? = dot(taste, recent)
    similarity: float64? = cosine(taste, recent)
    gap: float64? = euclidean(taste, oldest)
    steps: float64? = manhattan(recent, oldest)
    length: float64 = norm(profiles.taste) ?? -1.0
    direction: vector<float32, {N}>? = normalize(taste)
    blend: vector<float32, {N}>? = taste + recent - oldest
    product: vector<float32, {N}>? = taste * recent
    scaled: vector<float32, {N}>? = profiles.weight * taste * 0.5
    self_similarity: float64? = cosine(recent, recent)
    average: vector<float32, {N}>? = mean(clicks.item, 30us)
    average_ever: vector<float32, {N}>? = mean(clicks.item)
    drift: float64? = euclidean(average, average_ever)
    clicked: int64 = count(clicks.item, 30us)
    fallback: vector<float32, {N}>? = taste ?? average_ever
    chosen: vector<float32, {N}>? = if (profiles.weight ?? 0.0) > 0.0 then taste else recent
    nulls: int64 = count(clicks where is_null(item))
}}
service svc v1 {{ request r  vec@v1.* }}
"""


def compile_plan(text: str = PROJECT) -> ir.Plan:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.feat").write_text(text)
        result = compile_project(Path(tmp), lock="ignore")
        assert result.ok, render_all(result.diagnostics, result.sources)
        return result.plan


def _vector(rng: np.random.Generator) -> list[float] | None:
    kind = rng.integers(0, 8)
    if kind == 0:
        return None
    if kind == 1:
        return [0.0] * N  # the zero vector: cosine and normalize give null
    scale = {2: 1e30, 3: 1e-30}.get(int(kind), 1.0)
    return [float(np.float32(x * scale)) for x in rng.standard_normal(N)]


def _data(seed: int, users: int = 6, rows: int = 60) -> tuple[dict[str, list[dict]], list[dict]]:
    rng = np.random.default_rng(seed)
    clicks = [{"uid": int(rng.integers(1, users + 1)), "ts": int(rng.integers(0, 100)), "item": _vector(rng)}
              for _ in range(rows)]
    profiles = [{"uid": int(rng.integers(1, users + 1)), "ts": int(rng.integers(0, 100)), "taste": _vector(rng),
                 "weight": None if rng.integers(0, 5) == 0 else float(rng.uniform(-2, 2))}
                for _ in range(rows // 3)]
    # every query after the last row: the online store answers from its horizon on
    spine = [{"uid": u, "ts": t, "unused": None} for u in range(1, users + 2) for t in (100, 105, 125)]
    return {"clicks": clicks, "profiles": profiles}, spine


def run_all(plan: ir.Plan, tables: dict[str, list[dict]], spine: list[dict]) -> dict[str, list[dict]]:
    names = [o.name for o in plan.service("svc", 1).outputs]
    spine_columns = (("uid", plan.entity("user").keys[0][1]), ("ts", TIMESTAMP), *plan.requests[0].fields)
    with tempfile.TemporaryDirectory() as tmp:
        offline = run_engine(plan, "svc", 1, spine, tables, Path(tmp), spine_columns)
    ref = reference.evaluate(plan, "svc", 1, spine, tables)
    store = Store(plan)
    for name, rows in tables.items():
        store.push(name, rows)
    req = [{"unused": None}]
    single = [store.get("svc@v1", [{"uid": r["uid"]}], at=r["ts"], request=req).rows()[0] for r in spine]
    pad = max(0, SMALL + 1 - len(spine))  # enough entities to take the vectorised plan
    batch = store.get("svc@v1", [{"uid": r["uid"]} for r in spine] + [{"uid": 1}] * pad,
                      at=[r["ts"] for r in spine] + [spine[0]["ts"]] * pad,
                      request=req * (len(spine) + pad)).rows()[:len(spine)]
    pick = lambda rows: [{n: r[n] for n in names} for r in rows]  # noqa: E731
    return {"offline": pick(offline), "single": pick(single), "batch": pick(batch), "reference": pick(ref)}


def assert_same(results: dict[str, list[dict]]) -> None:
    want = results["reference"]
    for engine, rows in results.items():
        for j, (got, exp) in enumerate(zip(rows, want)):
            for name in exp:
                assert identical(got[name], exp[name]), f"{engine} row {j} {name}: {got[name]} != {exp[name]}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_engine_gives_the_same_bits(seed: int) -> None:
    tables, spine = _data(seed)
    results = run_all(compile_plan(), tables, spine)
    assert_same(results)
    ref = results["reference"]
    # the data reach every rule: nulls, zero vectors (null cosine) and real values
    assert any(r["similarity"] is None for r in ref) and any(r["similarity"] is not None for r in ref)
    assert any(r["taste"] is None for r in ref) and any(r["direction"] is not None for r in ref)
    assert any(r["average"] is None for r in ref) and any(r["average"] is not None for r in ref)


def test_as_of_lookup_and_window_by_hand() -> None:
    tables = {
        "profiles": [{"uid": 1, "ts": 10, "taste": [1.0, 0.0, 0.0, 0.0, 2.0], "weight": 2.0},
                     {"uid": 1, "ts": 90, "taste": [0.0, 3.0, 0.0, 4.0, 0.0], "weight": None},
                     {"uid": 1, "ts": 100, "taste": [9.0] * N, "weight": 1.0}],  # at t = 100: invisible
        "clicks": [{"uid": 1, "ts": 50, "item": [1.0, 1.0, 1.0, 1.0, 1.0]},
                   {"uid": 1, "ts": 95, "item": [0.0, 1.0, 0.0, 0.0, 0.0]},
                   {"uid": 1, "ts": 99, "item": None}],  # null vectors are skipped by last
    }
    spine = [{"uid": 1, "ts": 100, "unused": None}, {"uid": 1, "ts": 116, "unused": None}]
    results = run_all(compile_plan(), tables, spine)
    assert_same(results)
    at100, at116 = results["reference"]
    assert at100["taste"] == (0.0, 3.0, 0.0, 4.0, 0.0)
    assert at100["recent"] == (0.0, 1.0, 0.0, 0.0, 0.0) and at100["oldest"] == (1.0,) * N
    assert at100["affinity"] == 3.0 and at100["length"] == 5.0 and at100["similarity"] == 0.6
    assert at100["direction"] == tuple(float(np.float32(x)) for x in (0.0, 0.6, 0.0, 0.8, 0.0))
    assert at100["blend"] == (-1.0, 3.0, -1.0, 3.0, -1.0)
    assert at100["scaled"] is None  # a null weight: a null product
    assert at116["taste"] == (9.0,) * N and at116["scaled"] == (4.5,) * N
    # the element-wise mean skips the null vector; an empty window is null
    assert at100["average"] == (0.0, 1.0, 0.0, 0.0, 0.0)  # [70, 100): the click at 95 alone
    assert at100["average_ever"] == (0.5, 1.0, 0.5, 0.5, 0.5) and at100["drift"] == 1.0
    assert at116["average"] == (0.0, 1.0, 0.0, 0.0, 0.0) and at116["average_ever"] == at100["average_ever"]
    assert at116["recent"] is None and at116["affinity"] is None  # the 20us window holds no click


def test_a_10000_element_vector_in_every_engine() -> None:
    width = 10_000
    text = PROJECT.replace(f"vector<float32, {N}>", f"vector<float32, {width}>")
    rng = np.random.default_rng(7)
    vec = lambda: [float(x) for x in rng.standard_normal(width).astype(np.float32)]  # noqa: E731
    tables = {"profiles": [{"uid": 1, "ts": 5, "taste": vec(), "weight": 1.5}],
              "clicks": [{"uid": 1, "ts": 90, "item": vec()}, {"uid": 1, "ts": 95, "item": vec()}]}
    results = run_all(compile_plan(text), tables, [{"uid": 1, "ts": 100, "unused": None}])
    assert_same(results)
    assert len(results["offline"][0]["blend"]) == width


@pytest.mark.parametrize(("item", "message"), [
    ([1.0, 2.0], "has 2 elements, expected 5"),
    ([1.0, float("nan"), 0.0, 0.0, 0.0], "element 1 is nan"),
    ([1.0, 1e39, 0.0, 0.0, 0.0], "beyond float32's range"),
    ("abcde", "is not a `vector<float32, 5>`"),
])
def test_a_bad_pushed_vector_is_rejected_naming_row_and_column(item, message) -> None:
    store = Store(compile_plan())
    good = {"uid": 1, "ts": 1, "item": [0.0] * N}
    with pytest.raises(SchemaError) as err:
        store.push("clicks", [good, {**good, "item": item}])
    assert "row 1 pushed to `clicks`: `item`" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(("column", "message"), [
    (pl.Series("item", [[1.0] * N, [1.0, 2.0]], dtype=pl.List(pl.Float64)), "vector of 2 elements at row 1"),
    (pl.Series("item", [[1.0] * N, [1.0, None, 0, 0, 0]], dtype=pl.List(pl.Float64)), "at row 1"),
    (pl.Series("item", [[1.0] * N, [float("inf")] * N], dtype=pl.Array(pl.Float32, N)), "non-finite"),
    (pl.Series("item", [[1.0] * 4, [2.0] * 4], dtype=pl.Array(pl.Float32, 4)), "vectors of 4 elements, expected 5"),
    (pl.Series("item", [["a"] * N, None], dtype=pl.List(pl.String)), "should hold vectors of numbers"),
])
def test_a_bad_vector_in_a_source_file_fails_the_backfill(tmp_path, column, message) -> None:
    plan = compile_plan()
    pl.DataFrame({"uid": [1, 1], "ts": pl.Series([1, 2]).cast(pl.Datetime("us")), "item": column}) \
        .write_parquet(tmp_path / "clicks.parquet")
    pl.DataFrame({"uid": [1], "ts": pl.Series([1]).cast(pl.Datetime("us")),
                  "taste": pl.Series([[0.0] * N], dtype=pl.Array(pl.Float32, N)), "weight": [1.0]}) \
        .write_parquet(tmp_path / "profiles.parquet")
    spine = pl.DataFrame({"uid": [1], "ts": pl.Series([10]).cast(pl.Datetime("us")), "unused": [None]},
                         schema_overrides={"unused": pl.Int64})
    from astra.offline import backfill

    with pytest.raises(DataError) as err:
        backfill(plan, "svc", 1, spine, tmp_path)
    assert "source `clicks`" in str(err.value) and "column `item`" in str(err.value)
    assert message in str(err.value)


def test_vectors_survive_a_saved_store_and_arrive_as_a_dataframe(tmp_path) -> None:
    plan = compile_plan()
    tables, spine = _data(4)
    store = Store(plan)
    for name, rows in tables.items():
        store.push(name, rows)
    ents, at, req = [{"uid": r["uid"]} for r in spine], [r["ts"] for r in spine], [{"unused": None}] * len(spine)
    before = store.get("svc@v1", ents, at=at, request=req).rows()
    store.save(tmp_path / "store")
    after = Store.load(tmp_path / "store", plan).get("svc@v1", ents, at=at, request=req).rows()
    assert all(identical(a[k], b[k]) for a, b in zip(before, after) for k in a)
    # a Polars frame with an Array column pushes like row dicts
    frame = pl.DataFrame({"uid": [1, 1], "ts": [200, 201], "item": [[1.0, 2.0, 3.0, 4.0, 5.0], None]},
                         schema={"uid": pl.Int64, "ts": pl.Int64, "item": pl.Array(pl.Float32, N)})
    store.push("clicks", frame)
    got = store.get("svc@v1", [{"uid": 1}], at=202, request=[{"unused": None}])
    assert got.rows()[0]["average"] == (1.0, 2.0, 3.0, 4.0, 5.0)  # the null vector is skipped
    assert got.to_polars().schema["average"] == pl.Array(pl.Float32, N)


def test_explain_spells_vector_arithmetic_and_why_a_vector_function_is_null() -> None:
    from astra.plan import pretty

    features = {f.name: f for f in compile_plan().features}
    assert pretty.expr(features["blend"].expr) == "((vec@v1.taste + vec@v1.recent) - vec@v1.oldest)"
    assert pretty.expr(features["scaled"].expr) == "(0.5 * (profiles.weight * vec@v1.taste))"
    assert pretty.expr(features["average"].expr) == "mean(clicks.item, 30us)"  # its length is no argument
    assert pretty.null_reason(features["direction"].expr) == "`normalize` of a zero vector is null"


def test_lifetime_first_and_last_of_vectors_survive_eviction() -> None:
    """The store drops rows older than its longest window; a lifetime first/last keeps its evicted
    vector in the entity's running state, so the answers stay those of every row."""
    text = f"""
    entity user {{ key uid: int64 }}
    events clicks for user {{ path "clicks.parquet" time ts columns {{ uid: int64  item: vector<float32, {N}>? }} }}
    features vec v1 for user {{
        first_ever: vector<float32, {N}>? = first(clicks.item)
        last_ever: vector<float32, {N}>? = last(clicks.item)
        recent: vector<float32, {N}>? = last(clicks.item, 10us)
        seen: int64 = count(clicks.item)
    }}
    service svc v1 {{ vec@v1.* }}
    """
    plan = compile_plan(text)
    rng = np.random.default_rng(5)
    rows = [{"uid": int(u), "ts": t, "item": _vector(rng)} for t in range(0, 400, 3) for u in rng.integers(1, 4, 2)]
    store = Store(plan)
    for lo in range(0, len(rows), 10):  # pushes in time order: the watermark moves and old rows go
        store.push("clicks", rows[lo:lo + 10])
    assert any(tb.cutoff is not None for tb in store.tables), "no eviction happened"
    spine = [{"uid": u, "ts": 400} for u in (1, 2, 3)]
    want = reference.evaluate(plan, "svc", 1, spine, {"clicks": rows})
    got = store.get("svc@v1", [{"uid": u} for u in (1, 2, 3)], at=400).rows()
    for g, w in zip(got, want):
        for name in ("first_ever", "last_ever", "recent", "seen"):
            assert identical(g[name], w[name]), (name, g[name], w[name])


def test_only_null_vectors_and_no_rows_at_all() -> None:
    plan = compile_plan()
    spine = [{"uid": 1, "ts": 100, "unused": None}, {"uid": 3, "ts": 100, "unused": None}]
    nulls = {"clicks": [{"uid": 1, "ts": 5, "item": None}, {"uid": 2, "ts": 6, "item": None}], "profiles": []}
    results = run_all(plan, nulls, spine)
    assert_same(results)
    first = results["reference"][0]
    assert first["average_ever"] is None and first["recent"] is None and first["nulls"] == 1
    assert_same(run_all(plan, {"clicks": [], "profiles": []}, spine))


def test_a_vector_request_field_in_every_engine(tmp_path) -> None:
    """A request field may be a vector: a backfill reads it from a spine Array column, `Store.get`
    takes one list per entity (over HTTP a request vector can only be null)."""
    text = PROJECT.replace("request r { unused: int64? }",
                           f"request r {{ unused: int64?  query: vector<float32, {N}>? }}")
    text = text.replace("    drift:", "    asked: float64? = cosine(r.query, taste)\n"
                        f"    echo: vector<float32, {N}>? = r.query\n    drift:")
    plan = compile_plan(text)
    tables, spine = _data(1)
    for i, r in enumerate(spine):
        r["query"] = None if i % 3 == 0 else [float(i), 1.0, 0.0, -1.0, 0.5]
    columns = (("uid", plan.entity("user").keys[0][1]), ("ts", TIMESTAMP), *plan.requests[0].fields)
    offline = run_engine(plan, "svc", 1, spine, tables, tmp_path, columns)
    ref = reference.evaluate(plan, "svc", 1, spine, tables)
    store = Store(plan)
    for name, rows in tables.items():
        store.push(name, rows)
    reqs = [{"unused": None, "query": r["query"]} for r in spine]
    single = [store.get("svc@v1", [{"uid": r["uid"]}], at=r["ts"], request=[q]).rows()[0] for r, q in zip(spine, reqs)]
    batch = store.get("svc@v1", [{"uid": r["uid"]} for r in spine] * 3, at=[r["ts"] for r in spine] * 3,
                      request=reqs * 3).rows()
    assert any(r["asked"] is not None for r in ref) and ref[0]["echo"] is None
    for rows in (offline, single, batch):
        for j in range(len(spine)):
            assert identical(rows[j]["asked"], ref[j]["asked"]) and identical(rows[j]["echo"], ref[j]["echo"])
