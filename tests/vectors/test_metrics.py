"""Every metric against scipy.spatial.distance.cdist: random data with zero vectors, huge and tiny
magnitudes, mixed scales and 10,000 dimensions; both the float64 reference (`pairwise`) and the
distances the index reports (from its float32 stored forms)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from astra.vectors import VectorError, VectorIndex, custom, fit_mahalanobis, mahalanobis, metric, pairwise

SCIPY = {"euclidean": "euclidean", "manhattan": "cityblock", "cosine": "cosine"}


def dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, queries) as float32; rows 3 and 7 are zero vectors, query 1 is zero."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    n, d, scale = {"normal": (60, 16, 1.0), "huge": (40, 8, 1e30), "tiny": (40, 8, 1e-30),
                   "mixed": (40, 12, None), "wide": (12, 10_000, 1.0)}[name]
    x = rng.standard_normal((n + 5, d))
    if scale is None:  # each row at its own scale, 1e-20 .. 1e20
        x *= 10.0 ** rng.integers(-20, 21, size=(n + 5, 1))
    else:
        x *= scale
    x = x.astype(np.float32)
    x[[3, 7]] = 0
    rows, queries = x[:n], x[n:]
    queries[1] = 0
    return rows, queries


def reference(name: str, rows: np.ndarray, queries: np.ndarray, m) -> np.ndarray:
    a, b = queries.astype(np.float64), rows.astype(np.float64)
    if name == "inner_product":
        return -(a @ b.T)
    if name == "mahalanobis":
        vi = m.whitening.T @ m.whitening
        return cdist(a, b, "mahalanobis", VI=vi)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cdist(a, b, SCIPY[name])
    if name == "cosine":  # the documented rule: a zero vector is at distance 1 from everything
        zero = (np.abs(a).sum(axis=1) == 0)[:, None] | (np.abs(b).sum(axis=1) == 0)[None, :]
        assert np.isnan(out[zero]).all()
        out[zero] = 1.0
    return out


DATASETS = ("normal", "huge", "tiny", "mixed", "wide")
METRICS = ("euclidean", "manhattan", "inner_product", "cosine", "mahalanobis")


def metric_for(name: str, rows: np.ndarray):
    return fit_mahalanobis(rows) if name == "mahalanobis" else metric(name)


def cases():
    for data in DATASETS:
        for name in METRICS:
            if name == "mahalanobis" and data == "wide":
                continue  # refused above 2,048 dimensions (test_mahalanobis_dimension_limit)
            yield pytest.param(data, name, id=f"{data}-{name}")


@pytest.mark.parametrize(("data", "name"), list(cases()))
def test_pairwise_matches_scipy(data, name):
    rows, queries = dataset(data)
    m = metric_for(name, rows)
    got = pairwise(m, queries, rows)
    want = reference(name, rows, queries, m)
    scale = np.abs(want).max()
    # float64 throughout: agreement to rounding, relative to the largest distance of the set; rows 40 orders
    # of magnitude apart make the covariance ill-conditioned, and both evaluations lose digits to it
    rtol = 1e-6 if (data, name) == ("mixed", "mahalanobis") else 1e-9
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize(("data", "name"), list(cases()))
def test_index_distances_match_scipy(data, name):
    rows, queries = dataset(data)
    m = metric_for(name, rows)
    index = VectorIndex(rows.shape[1], m)
    index.insert(list(range(len(rows))), rows, np.zeros(len(rows), dtype=np.int64))
    result = index.search(queries, k=len(rows))
    want = reference(name, rows, queries, m)
    for i, keys in enumerate(result.keys):
        assert sorted(keys) == list(range(len(rows)))
        got = result.distances[i]
        expect = want[i, list(keys)]
        if name in ("cosine", "mahalanobis"):
            # the stored form (unit / whitened vector) is float32: agreement to float32 rounding
            scale = 1.0 if name == "cosine" else np.abs(expect).max()
            np.testing.assert_allclose(got, expect, rtol=1e-5, atol=2e-6 * max(scale, 1e-300))
        else:
            np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-9 * np.abs(want).max())
        assert np.all(np.diff(got) >= 0), "answers come nearest first"


def test_cosine_zero_vector_rule():
    m = metric("cosine")
    zero, other = np.zeros((1, 4)), np.array([[1.0, -2.0, 3.0, 0.5]])
    assert pairwise(m, zero, other)[0, 0] == 1.0
    assert pairwise(m, zero, zero)[0, 0] == 1.0
    assert pairwise(m, other, other)[0, 0] == pytest.approx(0.0, abs=1e-15)
    assert pairwise(m, other, -other)[0, 0] == pytest.approx(2.0)


def test_mahalanobis_whitening_is_the_inverse_covariance():
    rows, _ = dataset("normal")
    m = fit_mahalanobis(rows)
    inverse = np.linalg.inv(np.cov(rows.astype(np.float64), rowvar=False))
    np.testing.assert_allclose(m.whitening.T @ m.whitening, inverse, rtol=1e-8, atol=1e-10)


def test_mahalanobis_of_a_singular_covariance_is_finite():
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((5, 10))  # fewer vectors than dimensions: the covariance is singular
    m = fit_mahalanobis(rows)
    assert np.isfinite(pairwise(m, rows, rows)).all()


def test_mahalanobis_refusals():
    with pytest.raises(VectorError, match="limited to 2048 dimensions"):
        fit_mahalanobis(np.zeros((3, 3000)))
    with pytest.raises(VectorError, match="at least 2 vectors"):
        fit_mahalanobis(np.zeros((1, 3)))
    with pytest.raises(VectorError, match="covariance is zero"):
        fit_mahalanobis(np.ones((4, 3)))
    with pytest.raises(VectorError, match="square"):
        mahalanobis(np.zeros((2, 3)))


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(VectorError, match="unknown metric `hamming`; known metrics: euclidean"):
        metric("hamming")


def test_custom_function_against_scipy():
    def chebyshev(query, rows):
        return np.abs(rows - query).max(axis=1)

    rows, queries = dataset("normal")
    m = custom(chebyshev, "chebyshev")
    np.testing.assert_allclose(pairwise(m, queries, rows), cdist(queries, rows, "chebyshev"), rtol=1e-6)
    index = VectorIndex(rows.shape[1], m)
    index.insert(list(range(len(rows))), rows, np.zeros(len(rows), dtype=np.int64))
    result = index.search(queries, k=5)
    want = cdist(queries.astype(np.float64), rows.astype(np.float64), "chebyshev")
    for i, keys in enumerate(result.keys):
        expect = sorted(range(len(rows)), key=lambda j, i=i: (want[i, j], j))[:5]
        assert list(keys) == expect
