"""The range kernels against brute force, including ranges far longer than a block."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from astra.offline import ranges
from astra.ops import summation


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


@pytest.mark.parametrize("long_run", [1, 3, 1 << 12])
@pytest.mark.parametrize("lo_terms", [False, True])
def test_compensated_runs_sum_every_run_on_its_own(long_run, lo_terms, monkeypatch):
    """Bit for bit the prefix sums and error sums of each run alone, whether the run is summed
    alone (longer than `long_run`) or padded into a block with runs of its width (blocks of
    fewer and of more than 256 runs are summed differently)."""
    monkeypatch.setattr(summation, "_LONG_RUN", long_run)
    rng = np.random.default_rng(long_run)
    lengths = np.concatenate([[1, 2, 3, 4, 5, 8, 9, 16, 17], rng.integers(1, 40, 200), rng.integers(1, 5, 1500), [300]])
    rng.shuffle(lengths)
    x = rng.normal(0, 1, lengths.sum()) * 10.0 ** rng.integers(-6, 12, lengths.sum())
    lo = rng.normal(0, 1e-20, x.size) if lo_terms else None
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    p, e = summation.compensated_runs(x, starts, lo)
    for r, (a, n) in enumerate(zip(starts, lengths)):
        run = x[a:a + n]
        want_p = np.cumsum(run)
        # each step's rounding error, exactly: (sum before + value) - rounded sum
        errors = [0.0] + [float(Fraction(want_p[i - 1]) + Fraction(run[i]) - Fraction(want_p[i])) for i in range(1, n)]
        if lo_terms:
            errors = np.array(errors) + lo[a:a + n]
        assert p[a + r] == 0.0 and e[a + r] == 0.0  # each run's sums follow a 0
        assert np.array_equal(p[a + r + 1:a + r + 1 + n], want_p)
        assert np.array_equal(e[a + r + 1:a + r + 1 + n], np.cumsum(errors))
    assert all(a.size == 0 for a in summation.compensated_runs(np.zeros(0), np.zeros(0, np.int64)))


def test_run_sums_are_exact_deep_in_a_long_history():
    x = np.concatenate([np.full(100_000, 1e12), [0.1, 0.2, 0.3]])
    p = ranges.RunPrefix(x, np.array([0]))
    got = p.sums(np.array([100_000]), np.array([100_003]), np.array([0]))  # run 0
    assert abs(got[0] - 0.6) <= 1e-15


def test_run_sums_do_not_depend_on_the_runs_before():
    """A run's window sums (and their double-double form) are the same bit for bit alone and
    after a run of values 15 orders of magnitude larger; empty windows sum to 0 exactly."""
    rng = np.random.default_rng(3)
    small = rng.random(50) * 1e-3
    big = rng.normal(0, 1e12, 1000)
    lo = np.array([0, 0, 5, 17, 50, 30])
    hi = np.array([0, 50, 9, 40, 50, 30])
    alone = ranges.RunPrefix(small, np.array([0]))
    after = ranges.RunPrefix(np.concatenate([big, small]), np.array([0, big.size]))
    n, first, second = big.size, np.zeros_like(lo), np.ones_like(lo)  # run numbers
    assert np.array_equal(alone.sums(lo, hi, first), after.sums(lo + n, hi + n, second))
    for a, b in zip(alone.window(lo, hi, first), after.window(lo + n, hi + n, second)):
        assert np.array_equal(a, b)
    sums = alone.sums(lo, hi, first)
    assert sums[0] == 0.0 and sums[4] == 0.0 and sums[5] == 0.0
    want = [math.fsum(small[a:b]) for a, b in zip(lo, hi)]
    assert np.allclose(sums, want, rtol=1e-15, atol=0)
