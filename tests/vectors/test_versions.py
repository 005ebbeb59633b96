"""Versions, tombstones and point-in-time search, from the documented rule: a version inserted at t0
is seen by queries at t > t0 until the key's next change at t1 (seen at t1, gone after); a later change
at the same time wins; `at=None` sees every key's latest version.  Also metadata filters."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from astra.vectors import VectorError, VectorIndex

ORIGIN = np.zeros((1, 2), dtype=np.float32)


def vec(*xs):
    return np.asarray([xs], dtype=np.float32)


def nearest(index, at=None, query=ORIGIN, k=10, **kw):
    result = index.search(query, k=k, at=at, **kw)
    return dict(zip(result.keys[0], result.distances[0].tolist()))


@pytest.fixture(params=["exact", "hnsw"])
def index(request):
    # exact_below=0 makes the hnsw kind use its graph even for these few rows
    return VectorIndex(2, "euclidean", request.param, exact_below=0, metadata=("color", "size"))


def test_visibility_is_strictly_after_the_version_time(index):
    index.insert(["a"], vec(3, 4), [10])
    assert nearest(index, at=10) == {}
    assert nearest(index, at=11) == {"a": 5.0}
    assert nearest(index) == {"a": 5.0}


def test_update_is_a_tombstone_and_an_insert(index):
    index.insert(["a", "b"], np.asarray([[3, 4], [6, 8]], np.float32), [10, 10])
    index.insert(["a"], vec(0, 1), [20])
    assert nearest(index, at=20) == {"a": 5.0, "b": 10.0}  # the old version is still seen at its end time
    assert nearest(index, at=21) == {"a": 1.0, "b": 10.0}
    assert nearest(index) == {"a": 1.0, "b": 10.0}
    assert len(index) == 2 and index.rows.n == 3  # the old row stays for point-in-time queries


def test_delete_ends_the_live_version(index):
    index.insert(["a", "b"], np.asarray([[3, 4], [6, 8]], np.float32), [10, 10])
    index.delete(["a"], [40])
    assert nearest(index, at=40) == {"a": 5.0, "b": 10.0}
    assert nearest(index, at=41) == {"b": 10.0}
    assert nearest(index) == {"b": 10.0}
    assert len(index) == 1
    index.insert(["a"], vec(0, 2), [50])
    assert nearest(index, at=45) == {"b": 10.0}
    assert nearest(index, at=51) == {"a": 2.0, "b": 10.0}
    index.delete(["never-seen"], [60])  # nothing to end: no change
    assert len(index) == 2


def test_same_time_later_change_wins(index):
    index.insert(["a"], vec(1, 0), [5])
    index.insert(["a", "a"], np.asarray([[3, 4], [6, 8]], np.float32), [30, 30])
    assert nearest(index, at=30) == {"a": 1.0}
    assert nearest(index, at=31) == {"a": 10.0}
    index.insert(["b"], vec(0, 1), [40])
    index.delete(["b"], [40])  # inserted and deleted at the same time: never seen
    assert "b" not in nearest(index, at=41)
    assert "b" not in nearest(index)


def test_a_batch_is_applied_in_time_order(index):
    index.insert(["a", "a"], np.asarray([[6, 8], [3, 4]], np.float32), [20, 10])
    assert nearest(index, at=15) == {"a": 5.0}
    assert nearest(index, at=21) == {"a": 10.0}


def test_an_older_change_is_refused_and_changes_nothing(index):
    index.insert(["a"], vec(3, 4), [50])
    with pytest.raises(VectorError, match=r"key 'a': a change at 20 is older than its latest change at 50"):
        index.insert(["b", "a"], np.asarray([[1, 0], [0, 1]], np.float32), [60, 20])
    with pytest.raises(VectorError, match="older than"):
        index.delete(["a"], [49])
    assert nearest(index) == {"a": 5.0}
    assert index.rows.n == 1


def test_times_as_datetimes_strings_and_per_query(index):
    t = dt.datetime(2024, 1, 1)
    index.insert(["a"], vec(3, 4), [t])
    index.insert(["a"], vec(0, 1), ["2024-01-02T00:00:00"])
    assert nearest(index, at="2024-01-01T12:00:00") == {"a": 5.0}
    assert nearest(index, at=dt.datetime(2024, 1, 3)) == {"a": 1.0}
    result = index.search(np.zeros((3, 2), np.float32), k=1,
                          at=[t, dt.datetime(2024, 1, 1, 1), dt.datetime(2024, 1, 3)])
    assert result.keys == ((), ("a",), ("a",))
    assert result.distances[1:, 0].tolist() == [5.0, 1.0]


def test_filters_equality_in_list_and_conjunction(index):
    index.insert(["a", "b", "c", "d"], np.asarray([[1, 0], [2, 0], [3, 0], [4, 0]], np.float32), [1] * 4,
                 metadata={"color": ["red", "blue", "red", None], "size": [1, 2, 2, 1]})
    assert list(nearest(index, filter={"color": "red"})) == ["a", "c"]
    assert list(nearest(index, filter={"color": ["blue", None]})) == ["b", "d"]
    assert list(nearest(index, filter={"color": "red", "size": 2})) == ["c"]
    assert nearest(index, filter={"color": "green"}) == {}
    assert list(nearest(index, filter={"size": [2]}, k=1)) == ["b"]
    # an update carries its own metadata
    index.insert(["a"], vec(1, 0), [5], metadata={"color": ["blue"], "size": [1]})
    assert list(nearest(index, filter={"color": "red"})) == ["c"]
    assert list(nearest(index, at=3, filter={"color": "red"})) == ["a", "c"]


def test_filter_on_an_unknown_column(index):
    index.insert(["a"], vec(1, 0), [1])
    with pytest.raises(VectorError, match="unknown filter column `shape`; this index has color, size"):
        index.search(ORIGIN, filter={"shape": "round"})


def test_ties_are_broken_by_key(index):
    keys = ["d", "b", "c", "a", "e"]
    index.insert(keys, np.asarray([[1, 0], [0, 1], [-1, 0], [0, -1], [2, 0]], np.float32), [1] * 5)
    result = index.search(ORIGIN, k=3)
    assert result.keys[0] == ("a", "b", "c")
    assert result.distances[0].tolist() == [1.0, 1.0, 1.0]


def test_cosine_zero_query_returns_the_smallest_keys():
    index = VectorIndex(2, "cosine")
    index.insert([5, 3, 9, 1], np.asarray([[1, 0], [0, 0], [0, 1], [1, 1]], np.float32), [1] * 4)
    result = index.search(ORIGIN, k=3)
    assert result.keys[0] == (1, 3, 5)
    assert result.distances[0].tolist() == [1.0, 1.0, 1.0]
    # a zero row is at distance 1 from a non-zero query too
    assert nearest(index, query=vec(1, 0))[3] == 1.0
    # zero and non-zero queries in one batch
    batch = index.search(np.asarray([[0, 0], [1, 0], [0, 0]], np.float32), k=2)
    assert batch.keys == ((1, 3), (5, 1), (1, 3))
    assert batch.distances[0].tolist() == batch.distances[2].tolist() == [1.0, 1.0]


def test_fewer_rows_than_k_pad_with_inf(index):
    index.insert(["a"], vec(1, 0), [1])
    result = index.search(np.zeros((2, 2), np.float32), k=3)
    assert result.keys == (("a",), ("a",))
    assert result.distances[:, 1:].tolist() == [[np.inf, np.inf]] * 2
    empty = VectorIndex(2)
    assert empty.search(ORIGIN, k=2).keys == ((),)


def test_a_true_metadata_value_is_not_the_number_one():
    index = VectorIndex(2, metadata=("flag",))
    index.insert(["a", "b", "c"], np.eye(2, dtype=np.float32)[[0, 1, 1]], [0] * 3, metadata={"flag": [True, 1, 1.0]})
    assert list(nearest(index, filter={"flag": True})) == ["a"]
    assert list(nearest(index, filter={"flag": 1})) == ["b", "c"]  # 1 and 1.0 are the same number
    assert nearest(index, filter={"flag": [[1]]}) == {}  # an unhashable value matches nothing


def test_one_time_per_query_equals_separate_searches_and_never_leaks():
    """`at` per query (a spine of query times, as a backfill of "k nearest at t" uses): each row's answer
    is the search at its own time, and nothing changed at or after that time is seen."""
    rng = np.random.default_rng(12)
    index = VectorIndex(3)
    for t in range(1, 30):
        keys = rng.integers(0, 40, 5).tolist()
        index.insert(keys, rng.standard_normal((5, 3)).astype(np.float32), [t * 10] * 5)
        if t % 4 == 0:
            index.delete(rng.integers(0, 40, 3).tolist(), [t * 10 + 5] * 3)
    queries = rng.standard_normal((60, 3)).astype(np.float32)
    times = rng.integers(0, 320, 60)
    together = index.search(queries, k=4, at=times)
    for i, (q, t) in enumerate(zip(queries, times.tolist())):
        alone = index.search(q, k=4, at=t)
        assert together.keys[i] == alone.keys[0]
        assert np.array_equal(together.distances[i], alone.distances[0])
        rows = index.rows
        for key in together.keys[i]:  # the version found began strictly before t and had not ended before t
            kid = rows.key_index[key]
            versions = np.flatnonzero(rows.key_id[: rows.n] == kid)
            seen = [r for r in versions if rows.valid_from[r] < t <= rows.valid_to[r]]
            assert len(seen) == 1
