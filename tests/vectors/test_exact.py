"""The exact index equals brute force: random histories of inserts, updates and deletes, queries at
random times with random filters, on data full of ties (small integers, duplicates, zero vectors) at
huge, tiny and ordinary scales.  The answer must be identical (keys in order, distances bit for bit),
except for mahalanobis: its whitened vectors come from a matrix product whose rounding may depend on
the batch, so there the answer must agree up to float32 rounding."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vector_reference import Model, brute_force

from astra.vectors import VectorIndex, custom, mahalanobis, metric

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COLORS = ("red", "blue", None)


def chebyshev(query, rows):
    return np.abs(rows.astype(np.float64) - query).max(axis=1)


def make_metric(name: str, dim: int, seed: int):
    if name == "mahalanobis":
        a = np.random.default_rng(seed).standard_normal((dim, dim))
        return mahalanobis(a @ a.T + np.eye(dim))
    if name == "chebyshev":
        return custom(chebyshev, "chebyshev")
    return metric(name)


def assert_same(metric_, got_keys, got_dist, rows, query, k, where, strict):
    want_keys, want_dist = brute_force(metric_, rows, query, k, where)
    if strict:
        assert list(got_keys) == want_keys
        assert np.array_equal(got_dist[: len(want_dist)], np.asarray(want_dist))
        return
    every_keys, every_dist = brute_force(metric_, rows, query, len(rows) + 1, where)
    dist_of = dict(zip(every_keys, every_dist))
    assert len(got_keys) == len(want_keys) == len(set(got_keys))
    scale = max([abs(d) for d in every_dist] + [1e-300])
    tol = 1e-5 * scale
    np.testing.assert_allclose(got_dist[: len(want_dist)], want_dist, rtol=1e-5, atol=tol)
    if want_dist:
        for key in got_keys:
            assert dist_of[key] <= want_dist[-1] + tol  # nothing returned beyond the k-th distance
    for a, b in itertools.pairwise(got_keys):  # nearest first (near-ties may go either way here)
        assert dist_of[a] <= dist_of[b] + tol


@st.composite
def histories(draw):
    dim = draw(st.integers(1, 6))
    name = draw(st.sampled_from(["euclidean", "manhattan", "inner_product", "cosine", "mahalanobis", "chebyshev"]))
    scale = draw(st.sampled_from([1.0, 1e-3, 1e-30, 1e30]))
    string_keys = draw(st.booleans())
    key_pool = [f"k{i}" for i in range(12)] if string_keys else list(range(-3, 9))
    component = st.integers(-3, 3)
    ops, t = [], 0
    for _ in range(draw(st.integers(1, 6))):
        t += draw(st.integers(0, 3))
        size = draw(st.integers(1, 10))
        keys = draw(st.lists(st.sampled_from(key_pool), min_size=size, max_size=size))
        times = [t + draw(st.integers(0, 2)) for _ in keys]
        if draw(st.integers(0, 3)) == 0:
            ops.append(("delete", keys, times, None, None))
        else:
            vecs = draw(st.lists(st.lists(component, min_size=dim, max_size=dim), min_size=size, max_size=size))
            colors = draw(st.lists(st.sampled_from(COLORS), min_size=size, max_size=size))
            ops.append(("insert", keys, times, np.asarray(vecs, dtype=np.float64) * scale, colors))
        t = max(times)
    queries = draw(st.lists(st.lists(component, min_size=dim, max_size=dim), min_size=1, max_size=4))
    at = draw(st.one_of(st.none(), st.integers(0, t + 2)))
    k = draw(st.integers(1, 8))
    flt = draw(st.sampled_from([None, {"color": "red"}, {"color": ["red", None]}, {"color": "green"}]))
    return dim, name, np.asarray(queries, dtype=np.float64) * scale, ops, at, k, flt, draw(st.integers(0, 99))


@SETTINGS
@given(histories())
def test_exact_index_equals_brute_force(case):
    dim, name, queries, ops, at, k, flt, seed = case
    m = make_metric(name, dim, seed)
    index = VectorIndex(dim, m, metadata=("color",))
    model = Model()
    for op, keys, times, vecs, colors in ops:
        if op == "insert":
            vecs32 = vecs.astype(np.float32)
            index.insert(keys, vecs32, np.asarray(times, dtype=np.int64), metadata={"color": colors})
            model.insert(keys, vecs32, times, {"color": colors})
        else:
            index.delete(keys, np.asarray(times, dtype=np.int64))
            model.delete(keys, times)
    result = index.search(queries.astype(np.float32), k=k, at=at, filter=flt)
    rows = model.visible(at)
    where = None
    if flt is not None:
        wanted = flt["color"] if isinstance(flt["color"], list) else [flt["color"]]
        where = lambda meta: meta["color"] in wanted  # noqa: E731
    strict = name != "mahalanobis"
    for i, q in enumerate(queries.astype(np.float32)):
        assert_same(m, result.keys[i], result.distances[i], rows, q, k, where, strict)
        assert np.all(np.isinf(result.distances[i][len(result.keys[i]):]))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["euclidean", "manhattan", "inner_product"]),
       st.integers(1, 40))
def test_exact_index_on_larger_random_sets(seed, name, k):
    """Blocks and pruning are exercised: thousands of rows, a batch of queries, duplicated rows."""
    rng = np.random.default_rng(seed)
    n, dim = 3000, 8
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[rng.integers(0, n, 200)] = x[rng.integers(0, n, 200)]  # exact duplicates: ties broken by key
    keys = rng.permutation(n).tolist()
    index = VectorIndex(dim, name)
    index.insert(keys, x, np.zeros(n, dtype=np.int64))
    queries = np.vstack([rng.standard_normal((5, dim)), x[:3]]).astype(np.float32)
    result = index.search(queries, k=k)
    rows = {key: (x[i], {}) for i, key in enumerate(keys)}
    for i, q in enumerate(queries):
        assert_same(metric(name), result.keys[i], result.distances[i], rows, q, k, None, True)


def test_many_identical_vectors_keep_the_scan_small():
    """Exact ties by the thousand: the answer is the k smallest keys, and the candidates kept per query
    are cut to k by exact distance instead of growing with the ties, so peak memory is set by the block
    size, not by the number of tied rows (three times the ties, about the same peak)."""
    import tracemalloc

    def peak_of(n):
        dim = 4
        index = VectorIndex(dim, "euclidean")
        keys = list(range(n, 0, -1))
        index.insert(keys, np.ones((n, dim), dtype=np.float32), np.zeros(n, dtype=np.int64))
        tracemalloc.start()
        try:
            result = index.search(np.zeros((260, dim), dtype=np.float32), k=5)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert all(found == (1, 2, 3, 4, 5) for found in result.keys)
        assert np.all(result.distances == 2.0)
        return peak

    small, large = peak_of(8_000), peak_of(24_000)
    assert large < 1.5 * small, (small, large)
