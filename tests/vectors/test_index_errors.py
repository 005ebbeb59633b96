"""Bad input to the vector index: one clear line (a VectorError, which the CLI and server report as a
user error), and the index unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from astra.errors import DataError
from astra.vectors import VectorError, VectorIndex, custom


@pytest.fixture
def index():
    ix = VectorIndex(3, metadata=("shop",))
    ix.insert([1, 2], np.eye(3, dtype=np.float32)[:2], [0, 0])
    return ix


@pytest.mark.parametrize(("call", "message"), [
    (lambda ix: ix.insert([3], np.zeros((1, 4)), [1]), r"vectors must have shape \(1, 3\), got \(1, 4\)"),
    (lambda ix: ix.insert([3, 4], np.zeros((1, 3)), [1, 1]), r"vectors must have shape \(2, 3\), got \(1, 3\)"),
    (lambda ix: ix.insert([3], [[1, float("nan"), 0]], [1]), "vectors: row 0 has a NaN or infinite value"),
    (lambda ix: ix.insert([3], [[1, float("inf"), 0]], [1]), "vectors: row 0 has a NaN or infinite value"),
    (lambda ix: ix.insert([3], [["a", "b", "c"]], [1]), "vectors must be numbers"),
    (lambda ix: ix.insert(["x"], np.zeros((1, 3)), [1]), "keys of one index have one type: got int, str"),
    (lambda ix: ix.insert([1.5], np.zeros((1, 3)), [1]), "a key must be an int or a str, got float 1.5"),
    (lambda ix: ix.insert(7, np.zeros((1, 3)), [1]), "keys must be a sequence"),
    (lambda ix: ix.insert([3], np.zeros((1, 3)), [1, 2]), "times must have one time per key: 1 keys, 2 times"),
    (lambda ix: ix.insert([3], np.zeros((1, 3)), ["yesterday"]), "yesterday"),
    (lambda ix: ix.insert([3], np.zeros((1, 3)), [1], metadata={"city": ["x"]}),
     "unknown metadata column `city`; this index has shop"),
    (lambda ix: ix.insert([3], np.zeros((1, 3)), [1], metadata={"shop": [[1]]}),
     "metadata column `shop`: a value must be a str, number, bool or None"),
    (lambda ix: ix.insert([3], np.zeros((1, 3)), [1], metadata={"shop": ["a", "b"]}),
     "metadata column `shop` has 2 values for 1 keys"),
    (lambda ix: ix.search(np.zeros(3), k=0), "k must be an integer from 1 to 10,000, got 0"),
    (lambda ix: ix.search(np.zeros(3), k=True), "k must be an integer from 1 to 10,000, got True"),
    (lambda ix: ix.search(np.zeros(3), k=10**12), "k must be an integer from 1 to 10,000"),
    (lambda ix: ix.search(np.zeros(3), k=2.0), "k must be an integer"),
    (lambda ix: ix.search(np.zeros(2)), r"queries must have shape \(n, 3\), got \(1, 2\)"),
    (lambda ix: ix.search([np.nan, 0, 0]), "queries: row 0 has a NaN or infinite value"),
    (lambda ix: ix.search(np.zeros(3), filter="shop=a"), "a filter is a mapping"),
    (lambda ix: ix.search([[0, 0, 0], [1]]), "queries must be one vector or a matrix of numbers"),
    (lambda ix: ix.search(np.zeros(3), at=1.5), "time: expected a datetime"),
    (lambda ix: ix.search(np.zeros((2, 3)), at=[1, 2, 3]), "times must have one time per key: 2 keys, 3 times"),
])
def test_bad_input_is_one_line_and_changes_nothing(index, call, message):
    with pytest.raises(VectorError, match=message) as info:
        call(index)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)
    assert index.rows.n == 2 and len(index) == 2


@pytest.mark.parametrize(("args", "message"), [
    ((0,), "dim must be a positive integer, got 0"),
    ((3, "hamming"), "unknown metric `hamming`"),
    ((3, "euclidean", "annoy"), "unknown index kind `annoy`: use exact or hnsw"),
])
def test_bad_settings(args, message):
    with pytest.raises(VectorError, match=message):
        VectorIndex(*args)
    with pytest.raises(VectorError, match="metadata columns must be distinct"):
        VectorIndex(3, metadata=("a", "a"))
    with pytest.raises(VectorError, match="memory_limit must be a positive number of bytes"):
        VectorIndex(3, memory_limit=-1)


def test_a_custom_function_that_misbehaves():
    ix = VectorIndex(2, custom(lambda q, rows: np.zeros(len(rows) + 1), "broken"))
    ix.insert([1], np.zeros((1, 2), np.float32), [0])
    with pytest.raises(VectorError, match=r"distance function `broken` returned shape \(2,\) for 1 rows"):
        ix.search(np.zeros(2))
    nan = VectorIndex(2, custom(lambda q, rows: np.full(len(rows), np.nan), "nan"))
    nan.insert([1], np.zeros((1, 2), np.float32), [0])
    with pytest.raises(VectorError, match="distance function `nan` returned NaN"):
        nan.search(np.zeros(2))


def test_mahalanobis_fitted_on_a_first_insert_of_one_vector_is_refused():
    ix = VectorIndex(2, "mahalanobis")
    with pytest.raises(VectorError, match="fitted from its first insert, which needs at least 2 vectors"):
        ix.insert([1], np.zeros((1, 2)), [0])
    assert ix.rows.n == 0


def test_numpy_keys_and_empty_changes():
    ix = VectorIndex(2)
    ix.insert([np.int64(5), np.int32(7)], np.eye(2, dtype=np.float32), np.zeros(2, np.int64))
    ix.insert(np.array([9]), np.ones((1, 2), np.float32), [1])
    ix.insert([], [], [])
    ix.delete([], [])
    assert ix.search(np.zeros(2), k=3).keys == ((5, 7, 9),)
    assert all(type(key) is int for key in ix.rows.keys)
    named = VectorIndex(2)
    named.insert(np.array(["a", "b"]), np.eye(2, dtype=np.float32), [0, 0])
    assert named.search(np.zeros(2), k=np.int64(1)).keys == (("a",),)
