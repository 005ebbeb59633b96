"""Vectorised array kernels shared by the online store's tables and views."""

from __future__ import annotations

import numpy as np

BIG = np.iinfo(np.int64).max  # "no end": rows that never leave a count_distinct window
BLOCK = 32  # rows per block of the min/max sparse table


def _wrap64(x: int) -> int:
    """A Python int reduced to int64 the way numpy's int64 arithmetic wraps."""
    return ((x + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


def two_sum_err(a, b, s):
    """The exact rounding error of s = fl(a + b) (Knuth's TwoSum), elementwise."""
    bb = s - a
    return (a - (s - bb)) + (b - bb)


def ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The concatenation of arange(s, s + n) for each (s, n), vectorised."""
    lens = np.asarray(lens, np.int64)
    offs = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    return np.repeat(np.asarray(starts, np.int64), lens) + offs


def count_before(arr: np.ndarray, start: np.ndarray, length: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per query, how many values of its sorted segment arr[start:start+length] are < x.

    A binary search run in lock-step over all queries (log2 of the longest segment vectorised steps)."""
    if len(start) <= 2:  # one or two entities: numpy's own searchsorted per segment is cheaper
        out = np.empty(x.shape, np.int64)
        for j, (s, n) in enumerate(zip(start.tolist(), length.tolist())):
            out[..., j] = np.searchsorted(arr[s:s + n], x[..., j], "left")
        return out
    lo = np.broadcast_to(start, x.shape).copy()
    hi = lo + length
    while True:
        active = lo < hi
        if not active.any():
            return lo - start
        mid = (lo + hi) >> 1
        go = arr[np.where(active, mid, 0)] < x
        lo = np.where(active & go, mid + 1, lo)
        hi = np.where(active & ~go, mid, hi)


def identity(dt: np.dtype, kind: str):
    """The neutral value of min or max for a numeric dtype."""
    if dt.kind == "f":
        return np.inf if kind == "min" else -np.inf
    return np.iinfo(dt).max if kind == "min" else np.iinfo(dt).min


def _seg_cumsum(x: np.ndarray, gstart: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Running sums of x restarting at each group (groups are contiguous; gstart = first row)."""
    c = np.cumsum(x)
    before = np.where(gstart > 0, c[np.maximum(gstart - 1, 0)], 0)
    return c - before[g]
