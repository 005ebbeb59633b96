"""Compensated summation over runs of an array, shared by both engines: each run (an entity's
sorted rows) is summed on its own, with every step's exact rounding error kept beside it, so an
entity's sums depend on its own values alone (docs/semantics.md, precision of sums)."""

from __future__ import annotations

import numpy as np


def step_errors(x: np.ndarray, p: np.ndarray, before: np.ndarray, out: np.ndarray | None = None,
                tmp: np.ndarray | None = None) -> np.ndarray:
    """The exact rounding error of each step p = fl(before + x) (Knuth's TwoSum), with two
    temporaries (`out`, which is returned, and `tmp` if given)."""
    err = np.subtract(p, before, out=out)  # b' = s - a
    a_ = np.subtract(p, err, out=tmp)  # a' = s - b'
    np.subtract(before, a_, out=a_)  # a - a'
    np.subtract(x, err, out=err)  # b - b'
    err += a_
    return err


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knuth's TwoSum: s = fl(a + b) and the exact rounding error e, a + b = s + e."""
    s = a + b
    return s, step_errors(b, s, a)


_LONG_RUN = 1 << 8  # runs longer than this are summed one at a time; shorter ones in blocks
_BLOCK = 1 << 14  # a long run's rows summed at a time (its temporaries stay in cache)


def _cumsum_down(block: np.ndarray) -> None:
    """Cumulative sums down the columns of a (width, runs) block, in place.  With many runs,
    one vector add per step: NumPy's cumsum along axis 0 walks each column with a stride,
    several times slower then."""
    if block.shape[1] < 256:
        np.cumsum(block, axis=0, out=block)
        return
    for j in range(1, block.shape[0]):
        np.add(block[j], block[j - 1], out=block[j])


def run_prefix(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The prefix sums of `compensated_runs` alone (the same bits, in the same layout), without
    the error terms: half the passes, for sums whose own rounding a caller bounds itself."""
    return _runs(x, starts, None, errors=False)[0]


def compensated_runs(x: np.ndarray, starts: np.ndarray,
                     lo_terms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums of x that start again from 0 at each index of `starts` (ascending, the
    first 0), and prefix sums of every step's exact rounding error (plus `lo_terms`),
    restarted likewise: each run between two starts is summed in order on its own, so its
    sums depend on its values alone, not on what runs precede it.

    Both come in the layout of `RunPrefix`: run r's sums after its rows i = starts[r] ..
    sit at i + r + 1, and a 0 before them at starts[r] + r (length x.size + runs).

    Long runs (few: hot entities) are summed one by one; short runs are padded with zeros into
    one (width, runs) block per power-of-two width and summed down the columns (each step one
    vector add across the runs), so that no Python loop runs over many runs."""
    return _runs(x, starts, lo_terms, errors=True)


def _long_run(x: np.ndarray, p: np.ndarray, e: np.ndarray | None, lo_terms: np.ndarray | None) -> None:
    """One run's prefix sums into p (and its error sums into e), `_BLOCK` rows at a time so that
    the passes of TwoSum read and write cache, not memory.  A block's first sum adds its first
    value to the previous block's last sum, which is the step a single cumulative sum would
    take: the bits are those of one sequential pass."""
    n = x.size
    block = min(n, _BLOCK)
    err, tmp = (np.empty(block), np.empty(block)) if e is not None else (None, None)
    for a in range(0, n, block):
        b = min(a + block, n)
        ps = p[a:b]
        if a:
            np.copyto(ps, x[a:b])
            ps[0] += p[a - 1]
            np.cumsum(ps, out=ps)
        else:
            np.cumsum(x[:b], out=ps)  # from the run's first value itself (-0.0 stays -0.0)
        if e is None:
            continue
        es = err[:b - a]
        if a:
            step_errors(x[a:b], ps, p[a - 1:b - 1], out=es, tmp=tmp[:b - a])
        else:
            es[0] = 0.0  # the first step adds to 0: exact
            step_errors(x[1:b], ps[1:], ps[:-1], out=es[1:], tmp=tmp[:b - 1])
        if lo_terms is not None:
            es += lo_terms[a:b]
        if a:
            es[0] += e[a - 1]
        np.cumsum(es, out=e[a:b])


def _runs(x: np.ndarray, starts: np.ndarray, lo_terms: np.ndarray | None,
          errors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """`compensated_runs`, or its prefix sums alone (e None) unless `errors`."""
    n, runs = x.size, starts.size
    p = np.empty(n + runs)
    e = np.empty(n + runs) if errors else None
    if n == 0:
        return p, e
    first = starts + np.arange(runs)
    p[first] = 0.0
    if errors:
        e[first] = 0.0
    ends = np.append(starts[1:], n)
    lengths = ends - starts
    for r in np.flatnonzero(lengths > _LONG_RUN).tolist():
        at, to = int(starts[r]), int(starts[r]) + r + 1
        _long_run(x[at:ends[r]], p[to:ends[r] + r + 1], None if e is None else e[to:ends[r] + r + 1],
                  None if lo_terms is None else lo_terms[at:ends[r]])
    short = np.flatnonzero(lengths <= _LONG_RUN)
    width_bits = np.frexp((lengths[short] - 1).astype(np.float64))[1].astype(np.uint8)  # width 2**b >= length
    order = np.argsort(width_bits, kind="stable")  # 8 bits: a radix sort
    bounds = np.searchsorted(width_bits[order], np.arange(int(width_bits.max(initial=0)) + 2))
    for b in range(bounds.size - 1):
        rs = short[order[bounds[b]:bounds[b + 1]]]
        if not rs.size:
            continue
        step = np.arange(1 << b)[:, None]
        at = starts[rs] + step
        inside = step < lengths[rs]
        xs = np.where(inside, x[np.minimum(at, n - 1)], 0.0)  # zeros after a run's end change none of its sums
        ps = xs.copy() if errors else xs  # the error steps read xs
        _cumsum_down(ps)
        slots = (at + (rs + 1))[inside]
        p[slots] = ps[inside]
        if not errors:
            continue
        err = np.empty_like(ps)
        err[0] = 0.0
        err[1:] = step_errors(xs[1:], ps[1:], ps[:-1])
        if lo_terms is not None:
            err += np.where(inside, lo_terms[np.minimum(at, n - 1)], 0.0)
        _cumsum_down(err)
        e[slots] = err[inside]
    return p, e
