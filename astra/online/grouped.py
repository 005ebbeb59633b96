"""Grouped reductions over a gathered window: rows tagged with their query index, in order.

`WindowView.moments`, `WindowView.last_k` and the min/max of strings or booleans (the structures
without a range structure in the store) reduce `WindowView.gather()` output with these; all are
vectorised over the whole batch.
"""

from __future__ import annotations

import numpy as np

from astra.ops.exact import TOLERANCE, U, exact_variance
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


def exact_where_needed(m2: np.ndarray, qid: np.ndarray, vals: np.ndarray, n: np.ndarray, allowed: np.ndarray) -> None:
    """Fix, in place, the two-pass M2 (sum of squared deviations) of gathered windows (rows by
    query) that may be off by more than `TOLERANCE`: a window of equal values has exactly 0; the
    mean's rounding error (at most about (n + 1) u sum|x| / n) adds up to n times its square to
    M2, so windows where that is not far below M2, or with integers beyond 2^53 (inexact as
    floats), or whose M2 is not finite, are computed exactly from their values.  Only queries
    where `allowed` holds are looked at."""
    counts = np.bincount(qid, minlength=len(n))
    has = np.flatnonzero((counts >= 2) & allowed)
    if not len(has):
        return
    starts = np.cumsum(counts) - counts
    x = vals.astype(np.float64)
    some = np.flatnonzero(counts)  # reduceat needs each query's rows to start a segment
    lo, hi = np.zeros(len(n)), np.zeros(len(n))
    lo[some], hi[some] = np.minimum.reduceat(x, starts[some]), np.maximum.reduceat(x, starts[some])
    lo, hi = lo[has], hi[has]
    mag = np.bincount(qid, weights=np.abs(x), minlength=len(n))[has]
    c = counts[has]
    drift = 4.0 * (c + 1.0) ** 2 * (U * mag) ** 2 / c
    equal = (lo == hi) & np.isfinite(lo)  # two infinities are equal, but their variance is NaN
    bad = ~equal & ~(drift <= TOLERANCE * m2[has])
    if vals.dtype.kind in "iu":
        big = np.bincount(qid, weights=np.abs(x) >= 2.0 ** 53, minlength=len(n))[has] > 0
        bad |= big
        equal &= ~big
    m2[has[equal]] = 0.0
    for j in has[bad].tolist():
        v = exact_variance(vals[starts[j]:starts[j] + counts[j]].tolist())
        m2[j] = v * (counts[j] - 1)  # the variance, exactly rounded, once divided back


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
