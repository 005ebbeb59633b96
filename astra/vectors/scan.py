"""The exact search: blocked matrix products over the stored vectors, then an exact re-ranking.

For each block of rows the metric's `approx` gives every (query, row) distance with an error bound.
A row can be among a query's k nearest only if its lower bound is at most the k-th smallest upper
bound seen so far, so only such pairs are kept (a handful per query, plus exact ties).  The kept
pairs are then evaluated exactly (float64) and ordered by (distance, key): the answer is the true
k nearest of the float64 distance, ties broken by the smaller key, whatever float32 rounding did.
No Python loop runs over rows or queries; scratch memory is bounded by `SCRATCH_BYTES` per block.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from astra.vectors.errors import VectorError
from astra.vectors.metrics import Metric, wide_range

SCRATCH_BYTES = 16 << 20  # per block of (query, row) distances
_QUERY_CHUNK = 256


class DistanceFunctionError(VectorError):
    """A custom distance function that returned something other than one finite-or-inf number per row."""


def _call_custom(m: Metric, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.asarray(m.function(query, rows), dtype=np.float64)
    if out.shape != (len(rows),):
        raise DistanceFunctionError(f"distance function `{m.name}` returned shape {out.shape} for {len(rows)} rows; "
                                    f"it must return one distance per row")
    if np.isnan(out).any():
        raise DistanceFunctionError(f"distance function `{m.name}` returned NaN")
    return out


def _blocks(n_rows: int, dim: int, n_queries: int, m: Metric, subset: np.ndarray | None):
    """Row blocks as (row ids or slice start, count): contiguous slices, or chunks of `subset`."""
    per_pair = 4 * (dim if m.kind == "l1" else 3)  # l1 materialises q x b x d differences
    size = max(64, min(1 << 16, SCRATCH_BYTES // max(1, per_pair * n_queries)))
    total = n_rows if subset is None else len(subset)
    for start in range(0, total, size):
        stop = min(total, start + size)
        yield (slice(start, stop) if subset is None else subset[start:stop])


def search(vectors: np.ndarray, magnitudes: np.ndarray, queries: np.ndarray, query_mag: np.ndarray, k: int,
           m: Metric, rank: Callable[[np.ndarray], np.ndarray], subset: np.ndarray | None = None,
           mask: np.ndarray | None = None, magnitude_range: tuple[float, float] | None = None,
           window: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of `vectors` (stored forms) to each query: (rows q x k, int64, -1 where fewer
    rows exist; distances q x k, float64, inf there).  Only rows in `subset` (sorted row ids) or where
    `mask` is true are candidates.  `window` (valid_from, valid_to per row, a time per query): a
    query at t sees only rows with valid_from < t <= valid_to (one pass for queries of many times).
    `rank(rows)` orders rows by their keys (ties).  `magnitude_range` (largest, smallest non-zero
    magnitude of all rows), when known, spares the per-block precision check."""
    nq = len(queries)
    out_rows = np.full((nq, k), -1, dtype=np.int64)
    out_dist = np.full((nq, k), np.inf)
    chunk = 8 if m.kind == "l1" else _QUERY_CHUNK
    for start in range(0, nq, chunk):
        stop = min(nq, start + chunk)
        seen = None if window is None else (window[0], window[1], window[2][start:stop])
        pq, pr, pd = _candidates(vectors, magnitudes, queries[start:stop], query_mag[start:stop], k, m, subset, mask,
                                 rank, magnitude_range, seen)
        rows, dist = finish(queries[start:stop], pq, pr, k, m, vectors, rank, pd if m.is_custom else None)
        out_rows[start:stop], out_dist[start:stop] = rows, dist
    return out_rows, out_dist


def _candidates(vectors, magnitudes, queries, query_mag, k, m, subset, mask, rank, magnitude_range, window):
    """(query, row) pairs that may be among the k nearest, with the custom function's distances."""
    nq, dim = queries.shape
    # when no stored row and no query needs float64, no block does: the per-block check is skipped
    narrow = (not m.is_custom and magnitude_range is not None
              and not wide_range(*magnitude_range) and not m.needs_wide(query_mag))
    tau = np.full(nq, np.inf)  # per query, an upper bound of the k-th smallest distance (ranking space)
    keep_q, keep_r, keep_lo, keep_d = [], [], [], []
    for block in _blocks(len(vectors), dim, nq, m, subset):
        rows = vectors[block]
        valid = None if mask is None else mask[block][None, :]
        if window is not None:  # per (query, row): visible at the query's time
            start, end, t = window[0][block], window[1][block], window[2][:, None]
            seen = (start[None, :] < t) & (t <= end[None, :])
            valid = seen if valid is None else seen & valid
        if m.is_custom:
            d = np.stack([_call_custom(m, q, rows) for q in queries]) if len(rows) else np.empty((nq, 0))
            err = np.zeros((nq, 1))
        else:
            mags = magnitudes[block]
            d, err = m.approx(queries, rows, query_mag, mags, not narrow and m.needs_wide(query_mag, mags))
        if valid is not None:
            d = np.where(valid, d, np.inf)
        if err.shape[1] == 1:  # one bound per query: lower = d - e, upper = d + e without materialising them
            e = err[:, 0]
            if d.shape[1] >= k:
                tau = np.minimum(tau, np.partition(d, k - 1, axis=1)[:, k - 1] + e)
            take = d <= (tau + e)[:, None]
        else:
            hi = d + err
            if d.shape[1] >= k:
                tau = np.minimum(tau, np.partition(hi, k - 1, axis=1)[:, k - 1])
            take = (d - err) <= tau[:, None]
        if valid is not None:
            take &= valid
        qi, ci = np.nonzero(take)
        keep_q.append(qi)
        keep_r.append(ci + block.start if isinstance(block, slice) else block[ci])
        keep_lo.append(d[qi, ci].astype(np.float64) - (err[qi, 0] if err.shape[1] == 1 else err[qi, ci]))
        keep_d.append(d[qi, ci].astype(np.float64))
        limit = 4 * nq * k + 4096
        if sum(len(x) for x in keep_q) > limit:  # prune with the tightened bound
            q, r, low, dd = (np.concatenate(x) for x in (keep_q, keep_r, keep_lo, keep_d))
            alive = low <= tau[q]
            q, r, low, dd = q[alive], r[alive], low[alive], dd[alive]
            if len(q) > limit:  # still many: exact ties (duplicate vectors); keep each query's k best exactly
                q, r, dd = _best_exact(queries, q, r, dd, k, m, vectors, rank)
                low = np.full(len(q), -np.inf)  # final candidates: kept whatever tau becomes
            keep_q, keep_r, keep_lo, keep_d = [q], [r], [low], [dd]
    if not keep_q:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    q, r, low, dd = (np.concatenate(x) for x in (keep_q, keep_r, keep_lo, keep_d))
    alive = low <= tau[q]
    return q[alive].astype(np.int64), r[alive].astype(np.int64), dd[alive]


def _best_exact(queries, q, r, dd, k, m, vectors, rank):
    """Of candidate pairs, each query's k best by exact distance then key (none of the others can win)."""
    rows, dist = finish(queries, q.astype(np.int64), r.astype(np.int64), k, m, vectors, rank,
                        dd if m.is_custom else None)
    qi, slot = np.nonzero(rows >= 0)
    return qi, rows[qi, slot], dist[qi, slot]


def finish(queries: np.ndarray, pq: np.ndarray, pr: np.ndarray, k: int, m: Metric, vectors: np.ndarray,
           rank: Callable[[np.ndarray], np.ndarray], distances: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Order candidate pairs (query index, row) by exact distance then key; the first k per query.
    `distances` are the pairs' exact distances when already known (a custom function's)."""
    nq = len(queries)
    rows = np.full((nq, k), -1, dtype=np.int64)
    dist = np.full((nq, k), np.inf)
    if len(pq) == 0:
        return rows, dist
    if distances is None:
        distances = np.empty(len(pq))
        step = max(1, (SCRATCH_BYTES // 8) // max(1, queries.shape[1]))
        for s in range(0, len(pq), step):
            distances[s:s + step] = m.exact(queries[pq[s:s + step]], vectors[pr[s:s + step]])
    order = np.lexsort((distances, pq))
    sq, sd = pq[order], distances[order]
    # keys decide only between equal distances of one query (NaNs count as equal): rank them then
    same = (sq[1:] == sq[:-1]) & ((sd[1:] == sd[:-1]) | (np.isnan(sd[1:]) & np.isnan(sd[:-1])))
    if same.any():
        order = np.lexsort((rank(pr), distances, pq))
    pq, pr, distances = pq[order], pr[order], distances[order]
    starts = np.searchsorted(pq, np.arange(nq))
    position = np.arange(len(pq)) - starts[pq]
    first = position < k
    rows[pq[first], position[first]] = pr[first]
    dist[pq[first], position[first]] = distances[first]
    return rows, dist
