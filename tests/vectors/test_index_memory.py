"""Memory: the exact path holds at most 2x the raw float32 vectors (nbytes accounting of every array at
its capacity plus the key table, checked after every insert while arrays grow), and a memory limit
refuses a change that would pass it, with one line and no change made."""

from __future__ import annotations

import numpy as np
import pytest

from astra.vectors import VectorIndex, VectorMemoryError


@pytest.mark.parametrize("keys", ["int", "str"])
def test_exact_path_stays_within_twice_the_raw_vectors(keys):
    rng = np.random.default_rng(0)
    dim = 128
    index = VectorIndex(dim, "euclidean", metadata=("shop",))
    ratios = []
    t = 0
    for step in range(60):
        count = int(rng.integers(1, 400))
        names = [f"user-{t + i:08d}" if keys == "str" else t + i for i in range(count)]
        if step % 5 == 4:  # updates of existing keys keep their old rows (history)
            names = names[: count // 2] + [f"user-{i:08d}" if keys == "str" else i for i in range(count - count // 2)]
        index.insert(names, rng.standard_normal((count, dim)).astype(np.float32), np.full(count, t),
                     metadata={"shop": [f"s{i % 7}" for i in range(count)]})
        t += count
        ratios.append(index.memory_bytes() / index.raw_bytes())
    assert index.rows.n > 10_000
    assert max(ratios) <= 2.0, max(ratios)
    assert min(ratios) >= 1.0  # the accounting covers the vectors themselves


def test_memory_limit_refuses_and_changes_nothing():
    rng = np.random.default_rng(1)
    index = VectorIndex(64, memory_limit=1 << 20)  # 1 MiB: about 3,500 rows of 64 float32
    index.insert(list(range(2000)), rng.standard_normal((2000, 64)).astype(np.float32), np.zeros(2000, np.int64))
    before = index.search(np.zeros(64, np.float32), k=5)
    with pytest.raises(VectorMemoryError, match=r"inserting 3,000 vectors would take the vector index to "
                                                r"[0-9.]+ MiB, over its memory limit of 1.0 MiB \(now [0-9.]+ MiB "
                                                r"for 2,000 vectors of 64 float32\); raise memory_limit"):
        index.insert(list(range(2000, 5000)), rng.standard_normal((3000, 64)).astype(np.float32),
                     np.ones(3000, np.int64))
    assert index.rows.n == 2000 and len(index) == 2000
    after = index.search(np.zeros(64, np.float32), k=5)
    assert after.keys == before.keys
    assert index.memory_bytes() <= 1 << 20
    index.insert([9999], np.zeros((1, 64), np.float32), [2])  # a small change still fits


def test_memory_limit_counts_the_hnsw_graph():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    exact = VectorIndex(32, memory_limit=1 << 20)
    exact.insert(list(range(3000)), x, np.zeros(3000, np.int64))  # ~0.5 MiB of rows: fits
    graph = VectorIndex(32, kind="hnsw", memory_limit=1 << 20)
    with pytest.raises(VectorMemoryError, match="over its memory limit"):
        graph.insert(list(range(3000)), x, np.zeros(3000, np.int64))  # rows + faiss's copy and links do not
    assert graph.rows.n == 0 and graph.graph.ntotal == 0
    # a graph that fits, then grows past the limit: faiss's bytes so far count too
    grown = VectorIndex(32, kind="hnsw", memory_limit=1 << 20)
    grown.insert(list(range(1000)), x[:1000], np.zeros(1000, np.int64))
    assert grown.memory_bytes() <= 1 << 20
    with pytest.raises(VectorMemoryError, match="over its memory limit"):
        grown.insert(list(range(1000, 2000)), x[1000:2000], np.ones(1000, np.int64))
    assert grown.rows.n == 1000 and grown.graph.ntotal == 1000
