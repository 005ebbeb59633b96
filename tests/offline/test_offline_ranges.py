"""The range kernels against brute force, including ranges far longer than a block."""

from __future__ import annotations

import numpy as np
import pytest

from astra.offline import ranges


@pytest.mark.parametrize("chunk", [3, 1 << 16])
@pytest.mark.parametrize("block_bits", [1, 2, 3, 10])
@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_range_max_matches_brute_force(block_bits, dtype, chunk, monkeypatch):
    monkeypatch.setattr(ranges, "_CHUNK", chunk)  # in-place levels processed in small chunks too
    rng = np.random.default_rng(block_bits)
    for n in (1, 2, 7, 8, 9, 100, 1000):
        x = rng.integers(-50, 50, size=n).astype(dtype)
        lo = rng.integers(0, n, size=300)
        hi = lo + 1 + rng.integers(0, n, size=300) % (n - lo)
        want = np.array([x[a:b].max() for a, b in zip(lo, hi)])
        for overwrite in (False, True):
            got = ranges.range_max(x.copy(), lo, hi, overwrite=overwrite, block_bits=block_bits)
            assert (got == want).all()


def test_compensated_prefix_is_exact_deep_in_a_long_history():
    x = np.concatenate([np.full(100_000, 1e12), [0.1, 0.2, 0.3]])
    p, e = ranges.compensated_prefix(x)
    a, b = 100_000, 100_003
    assert abs(((p[b] - p[a]) + (e[b] - e[a])) - 0.6) <= 1e-15
