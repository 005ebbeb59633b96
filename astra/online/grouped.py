"""Grouped reductions over a gathered window: rows tagged with their query index, in order.

The online kernels of aggregations without a range structure (variance, last_k, and min/max of
strings or booleans) reduce `WindowView.gather()` output with these; all are vectorised over the
whole batch.
"""

from __future__ import annotations

import numpy as np

from astra.ops.registry import Vec


def group_extreme(qid: np.ndarray, vals: np.ndarray, n: int, largest: bool) -> Vec:
    """Per query, the smallest or largest value (null when the query has no rows)."""
    counts = np.bincount(qid, minlength=n)
    ok = counts > 0
    out = np.zeros(n, vals.dtype)
    if len(qid) and vals.dtype.kind in "iuf":  # numbers: one linear segmented reduction
        starts = (np.cumsum(counts) - counts)[ok]
        out[ok] = (np.maximum if largest else np.minimum).reduceat(vals, starts)
    elif len(qid):
        order = np.lexsort((vals, qid))  # by query, then value
        ends = np.cumsum(counts)
        pick = np.where(largest, ends - 1, ends - counts)[ok]
        out[ok] = vals[order[pick]]
    return Vec(out, ok)


def group_moments(qid: np.ndarray, vals: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query, (count, mean, sum of squared deviations from the mean): two passes for accuracy."""
    x = vals.astype(np.float64)
    cnt = np.bincount(qid, minlength=n)
    mean = np.bincount(qid, weights=x, minlength=n) / np.maximum(cnt, 1)
    dev = x - mean[qid]
    return cnt, mean, np.bincount(qid, weights=dev * dev, minlength=n)


def combine_moments(na, ma, m2a, nb, mb, m2b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (count, mean, M2) of two disjoint sets of values from theirs (Chan et al.)."""
    n = na + nb
    safe = np.maximum(n, 1)
    delta = mb - ma
    mean = ma + delta * (nb / safe)
    return n, mean, m2a + m2b + delta * delta * (na * nb / safe)


def group_last_k(qid: np.ndarray, vals: np.ndarray, n: int, k: int) -> Vec:
    """Per query, a tuple of its last k values, newest first (empty when none)."""
    counts = np.bincount(qid, minlength=n)
    ends = np.cumsum(counts)
    from_end = ends[qid] - 1 - np.arange(len(qid))  # 0 for each query's newest row
    keep = from_end < k
    q, v = qid[keep][::-1], vals[keep][::-1].tolist()  # newest first within each query
    kept = np.bincount(q, minlength=n)
    bounds = np.concatenate(([0], np.cumsum(kept[::-1])))  # q reversed: queries run n-1 .. 0
    out = np.empty(n, object)
    for j in range(n):  # building Python tuples is inherently per query
        lo, hi = bounds[n - 1 - j], bounds[n - j]
        out[j] = tuple(v[lo:hi])
    return Vec(out, np.ones(n, bool))
