"""The HNSW kind: recall@10 against the exact index on random data (fixed seeds, sizes kept small so
the tests are quick), point-in-time and filtered searches over a graph that keeps superseded rows, and
the exact fallback when a filter leaves at most `exact_below` candidates."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from astra.vectors import HnswParams, VectorError, VectorIndex, custom

N, DIM = 4000, 24
QUICK = HnswParams(m=16, ef_construction=80, ef_search=64)  # cheaper builds where recall is not the point


def recall(got, want) -> float:
    return float(np.mean([len(set(g) & set(w)) / max(1, len(w)) for g, w in zip(got, want)]))


def data(seed=7):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, DIM)).astype(np.float32), rng.standard_normal((100, DIM)).astype(np.float32)


@pytest.mark.parametrize("name", ["euclidean", "cosine", "inner_product", "manhattan", "mahalanobis"])
def test_recall_at_10_with_the_defaults(name):
    x, queries = data()
    times = np.zeros(N, dtype=np.int64)
    exact, approx = VectorIndex(DIM, name), VectorIndex(DIM, name, "hnsw", exact_below=0)
    exact.insert(list(range(N)), x, times)
    approx.insert(list(range(N)), x, times)
    want = exact.search(queries, k=10)
    got = approx.search(queries, k=10)
    assert recall(got.keys, want.keys) >= 0.95
    # answers are re-ranked exactly: a key found by both has the same distance
    for gk, gd, wk, wd in zip(got.keys, got.distances, want.keys, want.distances):
        common = dict(zip(wk, wd))
        for key, d in zip(gk, gd):
            if key in common:
                assert d == common[key]
        assert np.all(np.diff(gd) >= 0)


def test_batch_equals_single_queries():
    x, queries = data(3)
    index = VectorIndex(DIM, "euclidean", "hnsw", exact_below=0, hnsw_params=QUICK)
    index.insert(list(range(N)), x, np.zeros(N, dtype=np.int64))
    batch = index.search(queries[:20], k=10)
    for i in range(20):
        single = index.search(queries[i], k=10)
        assert single.keys[0] == batch.keys[i]


def test_point_in_time_over_a_graph_with_superseded_rows():
    x, queries = data(11)
    half = N // 2
    index = VectorIndex(DIM, "euclidean", "hnsw", exact_below=0, hnsw_params=QUICK)
    exact = VectorIndex(DIM, "euclidean")
    for ix in (index, exact):
        ix.insert(list(range(half)), x[:half], np.full(half, 10, dtype=np.int64))
        # every key moves to a new vector at time 20, and keys 0..99 are deleted at 30
        ix.insert(list(range(half)), x[half:], np.full(half, 20, dtype=np.int64))
        ix.delete(list(range(100)), np.full(100, 30, dtype=np.int64))
    for at in (15, 25, 31, None):
        got, want = index.search(queries, k=10, at=at), exact.search(queries, k=10, at=at)
        assert recall(got.keys, want.keys) >= 0.9, at
    # nothing invisible is ever returned
    late = index.search(queries, k=10, at=31)
    assert all(key >= 100 for keys in late.keys for key in keys)
    early = index.search(x[:5], k=1, at=15)  # the old vectors are found exactly at their old place
    assert [keys[0] for keys in early.keys] == [0, 1, 2, 3, 4]
    assert early.distances[:, 0].tolist() == [0.0] * 5


def test_filtered_search_and_the_exact_fallback():
    x, queries = data(5)
    groups = [f"g{i % 50}" for i in range(N)]  # each group is 2% of the rows
    halves = ["even" if i % 2 == 0 else "odd" for i in range(N)]
    meta = {"group": groups, "half": halves}
    exact = VectorIndex(DIM, metadata=("group", "half"))
    approx = VectorIndex(DIM, "euclidean", "hnsw", metadata=("group", "half"), exact_below=500,
                         hnsw_params=QUICK)
    for ix in (exact, approx):
        ix.insert(list(range(N)), x, np.zeros(N, dtype=np.int64), metadata=meta)
    # 80 candidates <= exact_below: scanned exactly, so identical to the exact index
    small = {"group": "g7"}
    got, want = approx.search(queries, k=10, filter=small), exact.search(queries, k=10, filter=small)
    assert got.keys == want.keys
    assert np.array_equal(got.distances, want.distances)
    # 2,000 candidates > exact_below: the graph with a bitmap of allowed rows and a raised efSearch
    wide = {"half": "odd"}
    got, want = approx.search(queries, k=10, filter=wide), exact.search(queries, k=10, filter=wide)
    assert all(key % 2 == 1 for keys in got.keys for key in keys)
    assert recall(got.keys, want.keys) >= 0.95


def test_parameters_and_refusals():
    index = VectorIndex(4, "euclidean", "hnsw", hnsw_params=HnswParams(m=8, ef_construction=40, ef_search=16))
    assert index.graph.hnsw.efConstruction == 40
    with pytest.raises(ValueError, match="HNSW parameter m must be an integer from 2 to 4096"):
        HnswParams(m=0)
    with pytest.raises(VectorError, match="custom distance function works with the exact kind only"):
        VectorIndex(4, custom(lambda q, rows: rows.sum(axis=1)), "hnsw")
    with pytest.raises(VectorError, match="unknown index kind `ivf`"):
        VectorIndex(4, kind="ivf")


@pytest.mark.parametrize("name", ["euclidean", "cosine"])
def test_the_graph_is_faiss_own_build_over_the_stored_vectors(name):
    """The build is faiss's `IndexHNSWFlat` with the declared M and efConstruction, fed the stored
    vectors (unit vectors under cosine) in one `add`: with one thread (deterministic) the graph is
    byte for byte the one faiss builds itself, so its build time is faiss's, plus astra's copy of
    the rows (docs/vectors.md, "Build time")."""
    import faiss

    x, _ = data()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index = VectorIndex(DIM, name, "hnsw", hnsw_params=QUICK)
        index.insert(np.arange(N), x, np.zeros(N, dtype=np.int64))
        own = faiss.IndexHNSWFlat(DIM, QUICK.m, faiss.METRIC_L2 if name == "euclidean" else faiss.METRIC_INNER_PRODUCT)
        own.hnsw.efConstruction = QUICK.ef_construction
        stored = x if name == "euclidean" else x / np.linalg.norm(x, axis=1, keepdims=True)
        own.add(np.ascontiguousarray(stored, dtype=np.float32))
    finally:
        faiss.omp_set_num_threads(before)
    assert index.graph.hnsw.efConstruction == QUICK.ef_construction and index.graph.ntotal == N
    assert np.array_equal(faiss.vector_to_array(index.graph.hnsw.neighbors), faiss.vector_to_array(own.hnsw.neighbors))
    assert np.array_equal(faiss.vector_to_array(index.graph.hnsw.levels), faiss.vector_to_array(own.hnsw.levels))
