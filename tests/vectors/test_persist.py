"""Save and load: every stored array and the HNSW graph come back bit for bit, answers are identical,
and the loaded index keeps working (inserts, deletes) as the original does.  Bad files are refused
with one line."""

from __future__ import annotations

import numpy as np
import pytest

from astra.vectors import HnswParams, VectorError, VectorIndex, custom, load, save
from astra.vectors import hnsw as hnsw_module

ARRAYS = ("vectors", "magnitudes", "key_id", "valid_from", "valid_to")


def filled(kind: str, metric: str, keys: str, seed: int = 0) -> VectorIndex:
    rng = np.random.default_rng(seed)
    n, dim = 600, 8
    names = [f"item-{i}" if keys == "str" else i * 7 - 100 for i in range(n)]
    index = VectorIndex(dim, metric, kind, metadata=("shop",), exact_below=0,
                        hnsw_params=HnswParams(m=8, ef_construction=40, ef_search=32))
    shops = [["north", "south", None, 3, True][i % 5] for i in range(n)]
    index.insert(names, rng.standard_normal((n, dim)).astype(np.float32), np.arange(n) % 10,
                 metadata={"shop": shops})
    index.insert(names[:100], rng.standard_normal((100, dim)).astype(np.float32), np.full(100, 20),
                 metadata={"shop": ["east"] * 100})
    index.delete(names[100:150], np.full(50, 25))
    return index


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize(("kind", "metric", "keys"), [("exact", "euclidean", "int"), ("exact", "cosine", "str"),
                                                      ("hnsw", "mahalanobis", "str"), ("hnsw", "manhattan", "int")])
def test_round_trip_is_bit_identical(tmp_path, kind, metric, keys):
    index = filled(kind, metric, keys)
    path = save(index, tmp_path / "index.npz")
    back = load(path)
    n = index.rows.n
    for name in ARRAYS:
        assert same_bits(getattr(back.rows, name)[:n], getattr(index.rows, name)[:n]), name
    assert same_bits(back.rows.codes["shop"][:n], index.rows.codes["shop"][:n])
    assert back.rows.keys == index.rows.keys and back.rows.values == index.rows.values
    assert len(back) == len(index) and back.memory_limit == index.memory_limit
    if metric == "mahalanobis":
        assert same_bits(back.metric.whitening, index.metric.whitening)
    if kind == "hnsw":
        assert same_bits(hnsw_module.serialize(back.graph), hnsw_module.serialize(index.graph))
    queries = np.random.default_rng(9).standard_normal((20, 8)).astype(np.float32)
    for at in (None, 15, 22, 30):
        for flt in (None, {"shop": ["north", 3]}):
            a, b = index.search(queries, k=7, at=at, filter=flt), back.search(queries, k=7, at=at, filter=flt)
            assert a.keys == b.keys
            assert same_bits(a.distances, b.distances)
    # both go on alike
    rng = np.random.default_rng(4)
    more = rng.standard_normal((30, 8)).astype(np.float32)
    new_keys = [f"new-{i}" if keys == "str" else 10_000 + i for i in range(30)]
    for ix in (index, back):
        ix.insert(new_keys, more, np.full(30, 40), metadata={"shop": ["west"] * 30})
        ix.delete(new_keys[:5], np.full(5, 41))
    a, b = index.search(queries, k=7, at=50), back.search(queries, k=7, at=50)
    assert a.keys == b.keys and same_bits(a.distances, b.distances)


def test_an_empty_mahalanobis_index_still_fits_on_its_first_insert(tmp_path):
    back = load(save(VectorIndex(3, "mahalanobis"), tmp_path / "empty.npz"))
    assert back.pending_fit
    back.insert([1, 2, 3, 4], np.asarray([[1, 0, 0], [0, 2, 0], [0, 0, 3], [1, 1, 1]], np.float32), [0] * 4)
    assert back.metric.whitening is not None


def test_custom_function_must_be_given_back(tmp_path):
    def far(query, rows):
        return -np.abs(rows - query).sum(axis=1)

    index = VectorIndex(2, custom(far, "far"))
    index.insert([1, 2], np.asarray([[0, 0], [5, 5]], np.float32), [0, 0])
    path = save(index, tmp_path / "custom.npz")
    with pytest.raises(VectorError, match="uses the custom distance `far`; pass it again"):
        load(path)
    back = load(path, custom(far, "far"))
    assert back.search(np.zeros(2, np.float32), k=1).keys == ((2,),)


def test_bad_files_are_refused_with_one_line(tmp_path):
    with pytest.raises(VectorError, match="no such vector index file"):
        load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(VectorError, match="not a vector index file"):
        load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, header=np.frombuffer(b'{"format": "something-else"}', dtype=np.uint8))
    with pytest.raises(VectorError, match="format 'something-else', this astra reads astra-vector-index/1"):
        load(other)
    # a file cut short of its arrays
    good = save(filled("exact", "euclidean", "int"), tmp_path / "good.npz")
    with np.load(good) as data:
        arrays = {name: data[name] for name in data.files if name != "valid_to"}
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(VectorError, match="damaged vector index file"):
        load(tmp_path / "cut.npz")


def test_a_save_replaces_the_file_whole(tmp_path):
    path = tmp_path / "index.npz"
    save(filled("exact", "euclidean", "int", seed=1), path)
    save(filled("exact", "euclidean", "int", seed=2), path)
    assert not (tmp_path / "index.npz.tmp").exists()
    assert load(path).search(np.zeros(8, np.float32), k=3).keys == \
        filled("exact", "euclidean", "int", seed=2).search(np.zeros(8, np.float32), k=3).keys


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_round_trip_of_huge_and_tiny_vectors(tmp_path, scale):
    """Their scans run in float64; the loaded index knows it too, and answers as brute force does."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((300, 6)) * scale).astype(np.float32)
    index = VectorIndex(6)
    index.insert(list(range(300)), x, np.zeros(300, np.int64))
    back = load(save(index, tmp_path / "scaled.npz"))
    assert back.rows.magnitude_range == index.rows.magnitude_range  # what decides float32 or float64 scans
    # queries of ordinary size: only the rows' magnitudes call for float64
    queries = np.vstack([rng.standard_normal((5, 6)), x[:5].astype(np.float64) * 1.5]).astype(np.float32)
    want = np.argsort(np.linalg.norm(queries[:, None, :].astype(np.float64) - x[None, :, :], axis=2), axis=1)[:, :5]
    for ix in (index, back):
        got = ix.search(queries, k=5)
        assert [list(keys) for keys in got.keys] == want.tolist()


def test_any_string_key_and_metadata_value_survive(tmp_path):
    keys = ["plain", "ünïcødé", "emoji 🧭", "lone \ud800 surrogate", "quote \" and \\ backslash", ""]
    index = VectorIndex(2, metadata=("label",))
    index.insert(keys, np.arange(12, dtype=np.float32).reshape(6, 2), [0] * 6, metadata={"label": keys})
    back = load(save(index, tmp_path / "strings.npz"))
    assert back.rows.keys == keys
    assert back.search(np.zeros(2, np.float32), k=6).keys == index.search(np.zeros(2, np.float32), k=6).keys
    assert back.search(np.zeros(2, np.float32), k=6, filter={"label": "emoji 🧭"}).keys == (("emoji 🧭",),)
