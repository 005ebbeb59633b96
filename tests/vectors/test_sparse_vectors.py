"""Sparse vectors (docs/language.md, "Sparse vectors"): a vector column given as index/value pairs is
the dense vector with those elements set and +0.0 elsewhere.  Written sparse in a source file, pushed as
`{"indices", "values"}` dicts or as a Polars struct column, it gives every engine the answers the same
vectors written densely give; a broken sparse vector is an error naming the source, column and row."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra.compiler import compile_project
from astra.diagnostics import render_all
from astra.errors import DataError
from astra.offline import backfill
from astra.online import Store
from astra.online.errors import SchemaError

N = 6
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
    columns {{ uid: int64  taste: vector<float32, {N}>? }}
}}
features vec v1 for user {{
    taste: vector<float32, {N}>? = profiles.taste
    recent: vector<float32, {N}>? = last(clicks.item, 20us)
    affinity: float64? = dot(taste, recent)
    similarity: float64? = cosine(taste, recent)
    gap: float64? = euclidean(taste, recent)
    length: float64? = norm(taste)
    average: vector<float32, {N}>? = mean(clicks.item, 30us)
    clicked: int64 = count(clicks.item, 30us)
}}
service svc v1 {{ vec@v1.* }}
"""
SPARSE = pl.Struct({"indices": pl.List(pl.Int32), "values": pl.List(pl.Float64)})


@pytest.fixture(scope="module")
def plan():
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.feat").write_text(PROJECT)
        result = compile_project(Path(tmp), lock="ignore")
        assert result.ok, render_all(result.diagnostics, result.sources)
        return result.plan


def dense_of(pairs: dict | None) -> list[float] | None:
    """The documented meaning of a sparse vector: each value (rounded to float32) at its index, +0.0
    at every index not named."""
    if pairs is None:
        return None
    out = [0.0] * N
    for i, v in zip(pairs["indices"], pairs["values"]):
        out[i] = float(np.float32(v))
    return out


values = st.one_of(st.floats(-1e3, 1e3, allow_nan=False, width=32), st.sampled_from([1e30, -1e-30, 0.0, -0.0]))


@st.composite
def sparse_vectors(draw) -> dict | None:
    if draw(st.integers(0, 6)) == 0:
        return None
    indices = draw(st.lists(st.integers(0, N - 1), unique=True, max_size=N))  # any order, maybe empty
    return {"indices": indices, "values": [draw(values) for _ in indices]}


@st.composite
def histories(draw) -> tuple[list[dict], list[dict]]:
    clicks = [{"uid": draw(st.integers(1, 3)), "ts": draw(st.integers(0, 60)), "item": draw(sparse_vectors())}
              for _ in range(draw(st.integers(0, 25)))]
    profiles = [{"uid": draw(st.integers(1, 3)), "ts": draw(st.integers(0, 60)), "taste": draw(sparse_vectors())}
                for _ in range(draw(st.integers(0, 8)))]
    return clicks, profiles


def frame(rows: list[dict], column: str, dense: bool) -> pl.DataFrame:
    vectors = [dense_of(r[column]) for r in rows] if dense else [r[column] for r in rows]
    dtype = pl.Array(pl.Float32, N) if dense else SPARSE
    return pl.DataFrame({"uid": pl.Series([r["uid"] for r in rows], dtype=pl.Int64),
                         "ts": pl.Series([r["ts"] for r in rows], dtype=pl.Int64).cast(pl.Datetime("us")),
                         column: pl.Series(vectors, dtype=dtype)})


def write(root: Path, clicks: list[dict], profiles: list[dict], dense: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    frame(clicks, "item", dense).write_parquet(root / "clicks.parquet")
    frame(profiles, "taste", dense).write_parquet(root / "profiles.parquet")
    return root


SPINE = pl.DataFrame({"uid": [u for u in (1, 2, 3, 4) for _ in (61, 75)], "ts": [t for _ in range(4) for t in (61, 75)]}
                     ).with_columns(pl.col("ts").cast(pl.Datetime("us")))
ASK = dict(entities=[{"uid": u} for u in SPINE["uid"]], at=SPINE["ts"].dt.epoch("us").to_list())


def rows_of(frame: pl.DataFrame) -> list[dict]:
    return frame.drop("uid", "ts").to_dicts()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_sparse_files_and_pushes_answer_as_the_dense_vectors_do(plan, history) -> None:
    clicks, profiles = history
    with tempfile.TemporaryDirectory() as tmp:
        dense_root = write(Path(tmp) / "dense", clicks, profiles, dense=True)
        sparse_root = write(Path(tmp) / "sparse", clicks, profiles, dense=False)
        want = backfill(plan, "svc", 1, SPINE, dense_root)
        assert backfill(plan, "svc", 1, SPINE, sparse_root).equals(want)  # offline, bit for bit

        answers = []
        for fill in ("files", "dicts", "frame"):
            store = Store(plan)
            if fill == "files":
                store.materialize(sparse_root)
            elif fill == "dicts":  # {"indices", "values"} dicts, as JSON pushes carry them
                for name, rows in (("clicks", clicks), ("profiles", profiles)):
                    if rows:
                        store.push(name, rows)
            else:  # a Polars struct column
                for name, rows, col in (("clicks", clicks, "item"), ("profiles", profiles, "taste")):
                    if rows:
                        store.push(name, frame(rows, col, dense=False).with_columns(pl.col("ts").dt.epoch("us")))
            answers.append(store.get("svc@v1", **ASK).rows())
        dense_store = Store(plan)
        dense_store.materialize(dense_root)
        expected = dense_store.get("svc@v1", **ASK).rows()
        for got in answers:
            assert [repr(r) for r in got] == [repr(r) for r in expected]  # repr: -0.0 and NaN compare exactly


def test_by_hand_the_named_elements_and_zeros_elsewhere(plan, tmp_path) -> None:
    clicks = [{"uid": 1, "ts": 1, "item": {"indices": [5, 0], "values": [2.0, -1.5]}},
              {"uid": 1, "ts": 2, "item": {"indices": [], "values": []}},  # the zero vector, not null
              {"uid": 1, "ts": 3, "item": None}]
    profiles = [{"uid": 1, "ts": 0, "taste": {"indices": [1], "values": [0.1]}}]
    write(tmp_path, clicks, profiles, dense=False)
    spine = pl.DataFrame({"uid": [1], "ts": [10]}).with_columns(pl.col("ts").cast(pl.Datetime("us")))
    row = backfill(plan, "svc", 1, spine, tmp_path).row(0, named=True)
    assert row["taste"] == [0.0, float(np.float32(0.1)), 0.0, 0.0, 0.0, 0.0]
    assert row["recent"] == [0.0] * N  # last non-null: the empty sparse vector is zeros
    assert row["average"] == [-0.75, 0.0, 0.0, 0.0, 0.0, 1.0]  # (-1.5 + 0) / 2 and (2 + 0) / 2
    assert row["clicked"] == 2  # count skips the null vector only
    assert row["similarity"] is None  # cosine with the zero vector is null


BROKEN = [
    ({"indices": [6], "values": [1.0]}, "index 6 is outside [0, 6)"),
    ({"indices": [-1], "values": [1.0]}, "index -1 is outside [0, 6)"),
    ({"indices": [2, 2], "values": [1.0, 2.0]}, "index 2 appears more than once"),
    ({"indices": [1, 2], "values": [1.0]}, "2 indices but 1 values"),
    ({"indices": [1], "values": [float("nan")]}, "not a finite float32 number"),
    ({"indices": [1], "values": [1e39]}, "not a finite float32 number"),
    ({"indices": [1], "values": [None]}, "is null"),
    ({"indices": None, "values": [1.0]}, "`indices` is null"),
]


@pytest.mark.parametrize(("broken", "message"), BROKEN)
def test_a_broken_sparse_vector_in_a_file_fails_naming_source_column_and_row(plan, tmp_path, broken, message) -> None:
    good = {"indices": [0], "values": [1.0]}
    clicks = [{"uid": 1, "ts": 1, "item": good}, {"uid": 1, "ts": 2, "item": None},
              {"uid": 1, "ts": 3, "item": broken}]
    write(tmp_path, clicks, [], dense=False)
    with pytest.raises(DataError) as err:
        backfill(plan, "svc", 1, SPINE, tmp_path)
    text = str(err.value)
    assert "source `clicks`" in text and "sparse column `item`" in text and "row 2" in text and message in text
    assert "\n" not in text
    with pytest.raises(DataError, match="row 2"):
        Store(plan).materialize(tmp_path)


@pytest.mark.parametrize(("broken", "message"), [b for b in BROKEN if b[0]["indices"] is not None]
                         + [({"indices": [1.5], "values": [1.0]}, "not an integer"),
                            ({"indices": "0", "values": [1.0]}, "must be a list")])
def test_a_broken_pushed_sparse_vector_is_refused_and_nothing_is_stored(plan, broken, message) -> None:
    store = Store(plan)
    good = {"uid": 1, "ts": 1, "item": {"indices": [0], "values": [1.0]}}
    with pytest.raises(SchemaError) as err:
        store.push("clicks", [good, {**good, "ts": 2, "item": broken}])
    assert "row 1 pushed to `clicks`: sparse `item`" in str(err.value) and message in str(err.value)
    assert store.get("svc@v1", [{"uid": 1}], at=10).rows()[0]["clicked"] == 0


def test_a_struct_that_is_not_indices_and_values_is_a_type_error(plan, tmp_path) -> None:
    pl.DataFrame({"uid": [1], "ts": pl.Series([1]).cast(pl.Datetime("us")),
                  "item": [{"idx": [0], "val": [1.0]}]}).write_parquet(tmp_path / "clicks.parquet")
    write(tmp_path / "other", [], [], dense=True)
    (tmp_path / "other" / "profiles.parquet").rename(tmp_path / "profiles.parquet")
    with pytest.raises(DataError, match=r"column `item` should be vector<float32, 6>.*found Struct"):
        backfill(plan, "svc", 1, SPINE, tmp_path)


INDEXED = f"""
entity item {{ key item_id: string }}
snapshot items for item {{
    path "items.parquet"
    time ts
    columns {{ item_id: string  emb: vector<float32, {N}>? }}
}}
index near v1 on items.emb {{ metric cosine }}
"""


def test_an_index_over_a_sparse_column_answers_as_over_the_dense_one(tmp_path) -> None:
    from astra.offline.neighbors import nearest
    from astra.serve.neighbors import answer

    (tmp_path / "p.feat").write_text(INDEXED)
    result = compile_project(tmp_path, lock="ignore")
    assert result.ok, render_all(result.diagnostics, result.sources)
    rng = np.random.default_rng(5)
    ids = [f"i{j % 30:02d}" for j in range(45)]  # 15 keys change later
    sparse = [{"indices": sorted(rng.choice(N, size=int(rng.integers(1, N)), replace=False).tolist()),
               "values": []} for _ in ids]
    for v in sparse:
        v["values"] = rng.normal(size=len(v["indices"])).tolist()
    times = pl.Series([10] * 30 + [20] * 15).cast(pl.Datetime("us"))
    for kind, column in (("dense", pl.Series([dense_of(v) for v in sparse], dtype=pl.Array(pl.Float32, N))),
                         ("sparse", pl.Series(sparse, dtype=SPARSE))):
        (tmp_path / kind).mkdir()
        pl.DataFrame({"item_id": ids, "ts": times, "emb": column}).write_parquet(tmp_path / kind / "items.parquet")
    spine = pl.DataFrame({"item_id": ids[:30] * 2, "ts": [15] * 30 + [25] * 30}).with_columns(
        pl.col("ts").cast(pl.Datetime("us")))
    offline = [nearest(result.plan, "near@v1", spine, tmp_path / kind, k=4) for kind in ("dense", "sparse")]
    assert offline[1].equals(offline[0]) and offline[0]["near_neighbors"].null_count() == 0
    online = []
    for kind in ("dense", "sparse"):
        store = Store(result.plan)
        store.materialize(tmp_path / kind)
        online.append([answer(store, result.plan, {"index": "near", "version": 1, "key": key, "k": 4})
                       for key in ids[:30]])
    assert online[1] == online[0]


def test_a_sparse_request_vector_in_the_spine_and_in_store_get(tmp_path) -> None:
    text = PROJECT.replace("features vec v1", f"request r {{ query: vector<float32, {N}>? }}\nfeatures vec v1")
    text = text.replace("    clicked:", "    asked: float64? = dot(r.query, taste)\n"
                        f"    echo: vector<float32, {N}>? = r.query\n    clicked:")
    text = text.replace("{ vec@v1.* }", "{ request r  vec@v1.* }")
    (tmp_path / "p.feat").write_text(text)
    result = compile_project(tmp_path, lock="ignore")
    assert result.ok, render_all(result.diagnostics, result.sources)
    plan = result.plan
    write(tmp_path, [], [{"uid": 1, "ts": 0, "taste": {"indices": [0, 4], "values": [2.0, 1.0]}}], dense=False)
    queries = [{"indices": [4], "values": [3.0]}, None, {"indices": [], "values": []}]
    spine = pl.DataFrame({"uid": [1, 1, 1], "ts": [5, 5, 5]}).with_columns(
        pl.col("ts").cast(pl.Datetime("us")), pl.Series("query", queries, dtype=SPARSE))
    dense_spine = spine.with_columns(pl.Series("query", [dense_of(q) for q in queries], dtype=pl.Array(pl.Float32, N)))
    out = backfill(plan, "svc", 1, spine, tmp_path)
    want = backfill(plan, "svc", 1, dense_spine, tmp_path)
    assert out.columns == want.columns and all(out[c].equals(want[c]) for c in out.columns if c != "query")
    assert out["asked"].to_list() == [3.0, None, 0.0]
    assert out["echo"].to_list() == [dense_of(q) for q in queries]
    store = Store(plan)
    store.materialize(tmp_path)
    got = store.get("svc@v1", [{"uid": 1}] * 3, at=5, request=[{"query": q} for q in queries]).rows()
    assert [r["asked"] for r in got] == [3.0, None, 0.0]
    bad = spine.with_columns(pl.Series("query", [{"indices": [9], "values": [1.0]}, None, None], dtype=SPARSE))
    with pytest.raises(DataError, match=r"spine column `query` \(sparse `vector<float32, 6>`\): row 0: index 9"):
        backfill(plan, "svc", 1, bad, tmp_path)


def test_all_empty_sparse_vectors_are_zero_vectors_whatever_polars_infers(plan) -> None:
    store = Store(plan)
    frame = pl.DataFrame({"uid": [1], "ts": [1], "taste": [{"indices": [], "values": []}]})  # List(Null) fields
    store.push("profiles", frame)
    assert store.get("svc@v1", [{"uid": 1}], at=5).rows()[0]["taste"] == (0.0,) * N


def test_an_index_beyond_int64_is_out_of_range(plan, tmp_path) -> None:
    pl.DataFrame({"uid": [1], "ts": pl.Series([1]).cast(pl.Datetime("us")),
                  "item": pl.Series([{"indices": [2**63 + 1], "values": [1.0]}],
                                    dtype=pl.Struct({"indices": pl.List(pl.UInt64), "values": pl.List(pl.Float64)}))}
                 ).write_parquet(tmp_path / "clicks.parquet")
    write(tmp_path / "p", [], [], dense=True)
    (tmp_path / "p" / "profiles.parquet").rename(tmp_path / "profiles.parquet")
    with pytest.raises(DataError, match=r"sparse column `item`.*row 0: index 9223372036854775809 is outside \[0, 6\)"):
        backfill(plan, "svc", 1, SPINE, tmp_path)


def test_a_sparse_query_of_numpy_arrays_is_sent_as_json_lists() -> None:
    from astra.serve.neighbors import request_body

    body = request_body("near@v1", {"indices": np.array([3, 1]), "values": np.array([0.5, 2.0], np.float32)})
    assert body["vector"] == {"3": 0.5, "1": 2.0}  # the JSON form: index -> value
