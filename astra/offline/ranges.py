"""Range queries over one sorted array, batched: prefix sums (exact or compensated), range
maximum, nearest valid index.  All work is vectorised; a query is a half-open slice [lo, hi).
"""

from __future__ import annotations

import numpy as np

from astra.ops import exact
from astra.ops.summation import compensated_runs, run_prefix, two_sum


def prefix(x: np.ndarray, dtype=None) -> np.ndarray:
    """Inclusive prefix sums with a leading 0 (length n + 1): sum(x[a:b]) = p[b] - p[a]."""
    out = np.empty(x.size + 1, dtype=dtype or x.dtype)
    out[0] = 0
    np.cumsum(x.view(np.uint8) if x.dtype == np.bool_ else x, out=out[1:])  # bool loops are slow
    return out


class RunPrefix:
    """Compensated sums over the runs of an array (an entity's sorted rows are a run), from
    `compensated_runs`.

    A window [lo, hi) of run r sums to (p[hi + r] - p[lo + r]) + (e[hi + r] - e[lo + r]):
    within about one ulp of the window's sum, plus the rounding of the error sums over the
    window's own rows, which `bound` bounds.  A window deep in a long history of similar values
    stays exact; after values many orders of magnitude larger earlier in the same run (1e12
    before 1e-3) the bound tells the caller to sum the window's rows exactly instead.  Other runs
    never matter: the sums restart at each run, so an entity's values never depend on which
    other rows share its chunk.
    `lo_terms` (optional) are added to the error terms: a double-double input hi + lo.
    """

    def __init__(self, x: np.ndarray, starts: np.ndarray, lo_terms: np.ndarray | None = None):
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: `bound` sends those windows back
            self.p, self.e = compensated_runs(x, starts, lo_terms)
        self._slots = starts + np.arange(starts.size)  # where each run's slots begin in p and e
        self._abs_e: np.ndarray | None = None  # prefix sums of |e| per run (`bound`), made on first use
        self._largest: float | None = None  # max |e| (`most`)

    def window(self, lo: np.ndarray, hi: np.ndarray, run: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """sum(x[lo:hi]) as a double-double pair (hi + lo), 0 for an empty window; `run` is
        each window's run number (any, for an empty window)."""
        if not self.p.size:
            return np.zeros(lo.size), np.zeros(lo.size)
        top, bottom = hi + run, lo + run
        s, e = two_sum(self.p[top], -self.p[bottom])
        s, e = dd_norm(s, e + (self.e[top] - self.e[bottom]))
        empty = hi == lo  # exactly 0, also where the prefix is NaN or inf
        s[empty], e[empty] = 0.0, 0.0
        return s, e

    def bound(self, lo: np.ndarray, hi: np.ndarray, run: np.ndarray, steps: int = 2) -> np.ndarray:
        """An upper bound on the error of `sums` (and `window`) of each window, up to a few ulps
        of the sum itself.  The error sums' prefixes round at each step by at most u times the
        prefix, and steps before the window are shared by both ends, so they cancel: the
        window's error is below u * (sum of |e| over its own steps) plus the final subtractions.
        The sum of |e| comes from a plain cumulative sum restarted at each run, whose own error
        is at most n * u * its value after n steps.  So a window's bound, and whether it is summed
        again exactly, depends on its run alone, never on the other entities of its chunk (a
        training row's features are the same bit for bit in any spine, or partition of one).
        `steps`: roundings per step (3 when `lo_terms` were added)."""
        if not self.p.size:
            return np.zeros(lo.size)
        top, bottom = hi + run, lo + run
        at_top, at_bottom = self._abs_sums(run, top, bottom)
        inside = at_top - at_bottom
        inside += at_top * ((top - self._slots[run] + 1) * _U)
        inside *= steps * _U
        edges = np.abs(self.e[top])
        edges += np.abs(self.e[bottom])
        edges *= 2 * _U
        inside += edges
        inside[hi == lo] = 0.0  # an empty window's sum is exactly 0 (p[top] - p[top])
        return inside

    def _abs_sums(self, run: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each run's sums of |e| (a plain prefix restarted at the run) through slots `top` and
        `bottom` of runs `run`.  When windows of only a few runs ask (those `suspect` could not
        settle), the sums are made for those runs alone, side by side: a run's sums are the same
        bits either way, and the other runs' rows are not read."""
        if self._abs_e is None:
            asked = np.unique(run)
            ends = np.append(self._slots[1:], self.e.size)
            lengths = ends[asked] - self._slots[asked]
            if 4 * int(lengths.sum()) < self.e.size:
                offsets = np.zeros(asked.size, dtype=np.int64)
                np.cumsum(lengths[:-1], out=offsets[1:])
                rows = np.repeat(self._slots[asked] - offsets, lengths)  # slot of each gathered row
                rows += np.arange(rows.size)
                sums = run_prefix(np.abs(self.e[rows]), offsets)
                i = np.searchsorted(asked, run)  # run[j] is asked[i[j]], gathered from offsets[i[j]]
                shift = offsets[i] - self._slots[run] + i + 1
                return sums[top + shift], sums[bottom + shift]
            # run r's sums of |e| through slot k sit at k + r + 1
            self._abs_e = run_prefix(np.abs(self.e), self._slots)
        return self._abs_e[top + run + 1], self._abs_e[bottom + run + 1]

    def most(self, steps: int = 2) -> float:
        """A bound of every window's `bound` (NaN if some |e| is): a window's sum of |e| is at
        most n max|e| over the chunk's n slots (within n u of it as a float), its edges at most
        4u max|e|, and 1.5 (1 + n u) covers the rounding of the |e| prefix and of the bound's
        own products.  Two passes, no temporary."""
        if self._largest is None:
            self._largest = float(np.maximum(self.e.max(), -self.e.min())) if self.e.size else 0.0  # NaN stays
        n = self.e.size
        return (1.5 * steps * n * (1 + n * _U) + 4) * _U * self._largest

    def suspect(self, sums: np.ndarray, lo: np.ndarray, hi: np.ndarray, run: np.ndarray) -> np.ndarray:
        """Where the windows' `sums` may be off by more than `astra.ops.exact.TOLERANCE` of
        themselves by their `bound` (`exact.suspect`): the windows to sum again exactly.  One
        bound of every window's bound (`most`) settles most windows at once; only the others (a
        sum of 0, one tiny beside the chunk's errors, or not finite) get their own bound.  A window this
        settles would have passed its own bound too, so the answer is each window's own
        bound's, and depends on its run alone."""
        bad = np.zeros(sums.size, dtype=bool)
        if not self.p.size:
            return bad
        with np.errstate(invalid="ignore", over="ignore"):
            unsure = ~((self.most() <= exact.TOLERANCE * np.abs(sums)) & np.isfinite(sums))
            unsure &= hi > lo  # empty windows sum to exactly 0
            j = np.flatnonzero(unsure)
            if j.size:
                bad[j] = exact.suspect(sums[j], self.bound(lo[j], hi[j], run[j]))
        return bad

    def sums(self, lo: np.ndarray, hi: np.ndarray, run: np.ndarray) -> np.ndarray:
        """sum(x[lo:hi]) as one float, 0 for an empty window."""
        if not self.p.size:
            return np.zeros(lo.size)
        top, bottom = hi + run, lo + run
        with np.errstate(invalid="ignore"):  # inf - inf: a non-finite answer is summed again exactly
            out = self.p[top]
            out -= self.p[bottom]
            err = self.e[top]
            err -= self.e[bottom]
            out += err
        out[hi == lo] = 0.0  # empty: exactly 0, also where the prefix is NaN or inf (NaN - NaN is not 0)
        return out


_U = 2.0 ** -53  # float64's unit roundoff


def dd_norm(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = hi + lo
    return s, lo - (s - hi)


_SPLIT = 134217729.0  # 2^27 + 1, Dekker's splitter


def two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker's TwoProduct: p = fl(a * b) and the exact error, a * b = p + e."""
    p = a * b
    t = _SPLIT * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLIT * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def dd_mul(ah, al, bh, bl):
    p, e = two_prod(ah, bh)
    return dd_norm(p, e + (ah * bl + al * bh))


def dd_div_scalar(ah, al, b):
    """(ah + al) / b for float arrays b, to double-double accuracy (one Newton step)."""
    q1 = ah / b
    p, e = two_prod(q1, b)
    r = ((ah - p) - e + al) / b
    return dd_norm(q1, r)


def range_max(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, overwrite: bool = False,
              block_bits: int = 10) -> np.ndarray:
    """max(x[lo:hi]) for many non-empty ranges (x is reused as a buffer if `overwrite`).

    A range that crosses a block boundary (blocks of 2**block_bits rows) is split into its
    partial first block, its partial last block and the full blocks between; the full blocks
    come from a small sparse table over block maxima, and every piece shorter than a block
    from a sparse table over the rows built only up to level block_bits.  Long windows of hot
    entities thus never add levels (passes over all rows) or memory.
    """
    if lo.size == 0:
        return np.empty(0, dtype=x.dtype)
    crossing = (lo >> block_bits) != ((hi - 1) >> block_bits)
    if not crossing.any():
        return _sparse_max(x, lo, hi, overwrite)
    size, n = 1 << block_bits, x.size
    full = n >> block_bits
    block_max = np.empty(-(-n // size), dtype=x.dtype)  # taken before x may be overwritten
    if full:
        block_max[:full] = x[:full * size].reshape(full, size).max(axis=1)
    if n > full * size:
        block_max[full] = x[full * size:].max()
    c, s = np.flatnonzero(crossing), np.flatnonzero(~crossing)
    first, last = (lo[c] >> block_bits) + 1, (hi[c] - 1) >> block_bits  # full blocks [first, last)
    pieces = _sparse_max(x, np.concatenate([lo[s], lo[c], last << block_bits]),
                         np.concatenate([hi[s], first << block_bits, hi[c]]), overwrite)
    out = np.empty(lo.size, dtype=x.dtype)
    out[s] = pieces[:s.size]
    res = np.maximum(pieces[s.size:s.size + c.size], pieces[s.size + c.size:])
    mid = np.flatnonzero(last > first)
    if mid.size:
        res[mid] = np.maximum(res[mid], _sparse_max(block_max, first[mid], last[mid], overwrite=True))
    out[c] = res
    return out


def _sparse_max(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, overwrite: bool) -> np.ndarray:
    """Sparse table built level by level in place (one buffer, x itself if `overwrite`): level k
    holds max(x[i : i + 2**k]); a range of length L is answered at level floor(log2 L) from two
    overlapping halves.  Queries are grouped by level, so each level is visited once."""
    out = np.empty(lo.size, dtype=x.dtype)
    if lo.size == 0:
        return out
    level = (np.frexp((hi - lo).astype(np.float64))[1] - 1).astype(np.int8)
    order = np.argsort(level, kind="stable")
    bounds = np.searchsorted(level[order], np.arange(int(level.max()) + 2))
    cur, m = (x if overwrite else x.copy()), x.size
    for k in range(bounds.size - 1):
        q = order[bounds[k]:bounds[k + 1]]
        if q.size:
            out[q] = np.maximum(cur[lo[q]], cur[hi[q] - (1 << k)])
        if k + 2 < bounds.size:  # level k + 1, in place: cur[i] only reads cur[i + s], not yet updated
            s = 1 << k
            for j in range(0, m - s, _CHUNK):  # chunks keep NumPy's overlap copies small
                e = min(j + _CHUNK, m - s)
                np.maximum(cur[j:e], cur[j + s:e + s], out=cur[j:e])
            m -= s
    return out


_CHUNK = 1 << 16


def last_valid(valid: np.ndarray) -> np.ndarray:
    """For each i, the largest j <= i with valid[j], or -1."""
    return np.maximum.accumulate(np.where(valid, np.arange(valid.size), -1))


def next_valid(valid: np.ndarray) -> np.ndarray:
    """For each i, the smallest j >= i with valid[j], or n (length n + 1: entry n is n)."""
    n = valid.size
    idx = np.where(np.append(valid, True), np.arange(n + 1), n + 1)
    return np.minimum.accumulate(idx[::-1])[::-1]
