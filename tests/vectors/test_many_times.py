"""A search with one time per query (a backfill's spine) answers each query as a search at that
one time does: a version inserted at t0 and ended at t1 is seen by queries at t0 < t <= t1; ties
by key; filters apply.  Searches spanning many change times take another path (one pass masking
each (query, row) pair by time) than those spanning few (one pass per epoch): both must give the
answers of one search per query."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.vectors import VectorIndex
from astra.vectors import index as index_module

DIM = 3
changes = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 12),
                             st.one_of(st.none(), st.lists(st.integers(-2, 2), min_size=DIM, max_size=DIM)),
                             st.sampled_from(["a", "b"])), min_size=1, max_size=40)


def build(metric: str, history) -> VectorIndex:
    index = VectorIndex(DIM, metric, metadata=("tag",))
    for key, t, vec, tag in sorted(history, key=lambda c: c[1]):
        if vec is None:
            index.delete([f"k{key}"], [t])
        else:
            index.insert([f"k{key}"], np.asarray([vec], np.float32), [t], metadata={"tag": [tag]})
    return index


@settings(max_examples=80, deadline=None)
@given(history=changes, metric=st.sampled_from(["euclidean", "cosine", "manhattan", "inner_product"]),
       queries=st.lists(st.tuples(st.lists(st.integers(-2, 2), min_size=DIM, max_size=DIM), st.integers(0, 14)),
                        min_size=1, max_size=30),
       k=st.integers(1, 5), tag=st.sampled_from([None, "a"]))
def test_one_time_per_query_equals_one_search_per_query(history, metric, queries, k, tag):
    index = build(metric, history)
    q = np.asarray([v for v, _ in queries], np.float32)
    at = np.asarray([t for _, t in queries], np.int64)
    filt = None if tag is None else {"tag": tag}
    for threshold in (0, 10**9):  # masked per pair in one pass; one pass per epoch
        with mock.patch.object(index_module, "WINDOWED_ABOVE", threshold):
            together = index.search(q, k=k, at=at, filter=filt)
        for j in range(len(q)):
            alone = index.search(q[j], k=k, at=int(at[j]), filter=filt)
            assert together.keys[j] == alone.keys[0]
            np.testing.assert_array_equal(together.distances[j], alone.distances[0])


def test_many_epochs_with_continuous_vectors():
    rng = np.random.default_rng(4)
    index = VectorIndex(8, "euclidean")
    for t in range(60):  # every time a change: each query time its own epoch
        keys = [f"k{j}" for j in rng.choice(40, size=5, replace=False).tolist()]
        index.insert(keys, rng.normal(size=(5, 8)).astype(np.float32), [t] * 5)
    q = rng.normal(size=(200, 8)).astype(np.float32)
    at = rng.integers(0, 62, size=200)
    together = index.search(q, k=4, at=at)
    for j in range(200):
        alone = index.search(q[j], k=4, at=int(at[j]))
        assert together.keys[j] == alone.keys[0]
        np.testing.assert_array_equal(together.distances[j], alone.distances[0])
