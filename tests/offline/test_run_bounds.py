"""Which windows of a chunk's float sums are summed again exactly (`RunPrefix.suspect`): the
windows whose own error bound is not far below their sum, whatever other windows are asked
about at the same time, and however the bound's per-run prefix of |e| is made."""

from __future__ import annotations

import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from astra.offline import ranges
from astra.ops import exact, summation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agg_engines import run_offline
from precision_cases import S, T, histories, plan

PRECISION = plan()  # sums, means and variances of 10 s windows and lifetimes


def _chunk(seed: int, special: bool = False):
    """Runs of mixed magnitudes (small values after much larger ones, zeros, cancellation),
    and windows over them: empty ones, all-zero ones, whole runs."""
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([rng.integers(1, 30, 300), rng.integers(300, 2000, 3)])
    rng.shuffle(lengths)
    n = int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    x = rng.normal(0, 1, n) * 10.0 ** rng.integers(-4, 13, n)
    x[rng.random(n) < 0.2] = 0.0  # null values are summed as zeros: windows of zeros only
    # in some runs, tiny values after huge ones: the error sums' own rounding is not negligible
    first = np.repeat(starts, lengths)
    at = (np.arange(n) - first) / np.repeat(lengths, lengths)
    skewed = np.repeat(rng.random(lengths.size) < 0.3, lengths)
    x[skewed] = rng.normal(0, 1, skewed.sum()) * np.where(at[skewed] < 0.3, 1e14, 1e-6)
    big = rng.random(n) < 0.01
    x[np.flatnonzero(big)[1::2]] = -x[np.flatnonzero(big)[::2]][: big.sum() // 2]  # cancellation
    if special:
        x[rng.integers(0, n, 3)] = [np.inf, -np.inf, np.nan]
    run = rng.integers(0, lengths.size, 4000)
    a = rng.integers(0, lengths[run] + 1)
    b = rng.integers(0, lengths[run] + 1)
    lo, hi = starts[run] + np.minimum(a, b), starts[run] + np.maximum(a, b)
    return x, starts, lo, hi, run


@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_suspect_is_each_windows_own_bound(seed, special):
    """The quick chunk-wide check never settles a window its own bound would send back, and
    every window it leaves is judged by its own bound: the same answer as checking each
    window's bound, window by window."""
    x, starts, lo, hi, run = _chunk(seed, special)
    with np.errstate(invalid="ignore", over="ignore"):
        p = ranges.RunPrefix(x, starts)
        sums = p.sums(lo, hi, run)
        want = exact.suspect(sums, ranges.RunPrefix(x, starts).bound(lo, hi, run))
    got = p.suspect(sums, lo, hi, run)
    assert got.dtype == np.bool_ and np.array_equal(got, want)
    assert (want & (sums != 0) & np.isfinite(sums)).any() and not want.all()  # not trivial either way
    assert not got[hi == lo].any()  # an empty window is 0 exactly


@pytest.mark.parametrize("seed", [4, 5])
def test_a_windows_bound_does_not_depend_on_the_windows_asked_with_it(seed):
    """Bounds asked for a few runs' windows (their |e| prefix made for those runs alone) are
    the same bits as when every window is asked (the prefix made for every run)."""
    x, starts, lo, hi, run = _chunk(seed)
    everything = ranges.RunPrefix(x, starts).bound(lo, hi, run)
    rng = np.random.default_rng(seed)
    for size in (1, 5, 40):
        few = np.flatnonzero(np.isin(run, rng.choice(np.unique(run), size, replace=False)))
        alone = ranges.RunPrefix(x, starts).bound(lo[few], hi[few], run[few])
        assert np.array_equal(alone, everything[few])


@pytest.mark.parametrize("long_run", [1, 3, 1 << 12])
def test_run_prefix_is_compensated_runs_prefix(long_run, monkeypatch):
    """The plain run prefix is bit for bit `compensated_runs`' prefix sums, whichever way each
    run is summed (alone, or padded in a block)."""
    monkeypatch.setattr(summation, "_LONG_RUN", long_run)
    x, starts, *_ = _chunk(6)
    assert np.array_equal(summation.run_prefix(x, starts), summation.compensated_runs(x, starts)[0])
    assert summation.run_prefix(np.zeros(0), np.zeros(0, np.int64)).size == 0


@pytest.mark.parametrize("lo_terms", [False, True])
def test_long_runs_summed_by_blocks_are_one_sequential_pass(lo_terms, monkeypatch):
    """Long runs are summed a block of rows at a time; the sums and error sums are the same bits
    as with one block per run, and the prefix sums are NumPy's own cumulative sums of the run."""
    x, starts, *_ = _chunk(7)
    x[starts[3]] = -0.0  # a run may start with -0.0: its first sum is that value itself
    lo = np.random.default_rng(7).normal(0, 1e-20, x.size) if lo_terms else None
    monkeypatch.setattr(summation, "_LONG_RUN", 2)
    monkeypatch.setattr(summation, "_BLOCK", 1 << 30)
    whole = summation.compensated_runs(x, starts, lo)
    for block in (1, 2, 5, 64):
        monkeypatch.setattr(summation, "_BLOCK", block)
        got = summation.compensated_runs(x, starts, lo)
        assert all(np.array_equal(a.view(np.int64), b.view(np.int64)) for a, b in zip(got, whole))
    ends = np.append(starts[1:], x.size)
    for r in range(starts.size):
        assert np.array_equal(whole[0][starts[r] + r + 1:ends[r] + r + 1].view(np.int64),
                              np.cumsum(x[starts[r]:ends[r]]).view(np.int64))


def _forced_own_bounds(mp: pytest.MonkeyPatch) -> None:
    """Every window judged by its own bound: the chunk-wide bound settles none."""
    mp.setattr(ranges.RunPrefix, "most", lambda self, steps=2: math.inf)


def _bits(rows: list[dict]) -> list[dict]:
    return [{k: struct.pack("<d", v) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_the_chunk_wide_bound_changes_no_answer_on_hostile_histories(case):
    """Sums, means and variances are the same bits whether the chunk-wide bound settles windows
    or each window is judged by its own bound."""
    events, spine = case
    quick = run_offline(PRECISION, events, spine)
    with pytest.MonkeyPatch.context() as mp:
        _forced_own_bounds(mp)
        assert _bits(run_offline(PRECISION, events, spine)) == _bits(quick)


def test_the_chunk_wide_bound_settles_ordinary_windows(monkeypatch):
    """Ordinary amounts (some null, some 0, entities of very different lengths): the same bits
    either way, and most windows never need their own bound."""
    rng = np.random.default_rng(11)
    n = 3000
    ids, times = rng.zipf(1.5, n) % 60, rng.integers(0, 40 * S, n)
    amounts = np.round(rng.gamma(2, 40, n), 2) * (rng.random(n) > 0.05)
    events = [dict(id=int(i), ts=T + int(t), x=None if r < 0.1 else float(a), f=float(np.float32(a / 3)))
              for i, t, r, a in zip(ids, times, rng.random(n), amounts)]
    spine = [dict(id=int(i), ts=T + int(t)) for i, t in zip(rng.integers(0, 70, 400), rng.integers(0, 45 * S, 400))]
    asked = []
    bound = ranges.RunPrefix.bound

    def counted(self, lo, *args, **kwargs):
        asked.append(lo.size)
        return bound(self, lo, *args, **kwargs)

    monkeypatch.setattr(ranges.RunPrefix, "bound", counted)
    quick = run_offline(PRECISION, events, spine)
    settled, asked[:] = sum(asked), []
    _forced_own_bounds(monkeypatch)
    assert _bits(run_offline(PRECISION, events, spine)) == _bits(quick)
    assert settled < 0.2 * sum(asked)
