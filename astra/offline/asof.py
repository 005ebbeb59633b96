"""As-of lookups without an event index: the latest snapshot row before each query time.

A source whose every leaf is an as-of lookup needs no windows, prefix sums or sorted columns.
Only the snapshot's (entity, time) keys are sorted, stably (rows with equal keys keep file
order, so the later row of a tie comes last); for each query, the row just below its packed
key is the latest row with time < t when it belongs to the query's entity.  The queries are
sorted only to keep the binary search cache-friendly; the answers go back to spine order
before one gather of every needed column.

Row times are divided by the greatest common divisor of their offsets (whole seconds in most
data), query times rounded up to that grid: row < query is unchanged, and the keys usually
leave room to pack each row's position below them, so both sorts are sorts of distinct
integers (twice as fast as a stable arg-sort).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from astra.offline.keys import _BITS, _bits, gather, sort_with_positions, time_grid


def latest_rows(ids: np.ndarray, times: np.ndarray, q_ids: np.ndarray, q_times: np.ndarray,
                threads: int = 1) -> np.ndarray:
    """For each query (q_ids[j], q_times[j]): the row i with ids[i] == q_ids[j] and the largest
    times[i] < q_times[j], the last such row in input order on ties; -1 when there is none.

    `ids` are non-negative int64 entity ids (as from `entity_ids`), times int64 µs; the rows
    are in file order.  The result is int64, one entry per query, in query order.
    """
    if ids.size == 0 or q_ids.size == 0:
        return np.full(q_ids.size, -1, dtype=np.int64)
    # the key space is the snapshot's: rows' ids count from 1, a query id outside them becomes
    # 0 or one past the last, which no row has, and query times are clamped to just outside
    # the rows' time range (the same rows stay below)
    id_lo, id_hi = int(ids.min()), int(ids.max())
    t0, t_end = int(times.min()), int(times.max())
    step = time_grid([times], t0, threads)
    span = (t_end - t0) // step + 1  # a query offset lies in [0, span]
    t_bits, id_bits = _bits(span), _bits(id_hi - id_lo + 2)
    if id_bits + t_bits > _BITS:  # too wide to pack: compare (id, time) pairs by rank
        return _latest_rows_ranked(ids, times, q_ids, q_times)

    def pack(i: np.ndarray, off: np.ndarray) -> np.ndarray:
        i <<= t_bits
        i += off
        return i

    # a row time r is < t exactly when its offset (r - t0) / step is < ceil((t - t0) / step)
    q_off = np.clip(q_times, t0, t_end + 1)
    q_off -= t0
    if step > 1:  # ceil division, in place
        np.negative(q_off, out=q_off)
        q_off //= step
        np.negative(q_off, out=q_off)
    row_off = times - t0
    if step > 1:
        row_off //= step
    keys, order = sort_with_positions(pack(ids - (id_lo - 1), row_off), stable=True)
    del row_off
    q_ent = np.clip(q_ids, id_lo - 1, id_hi + 1)
    q_ent -= id_lo - 1
    q_keys, q_order = sort_with_positions(pack(q_ent, q_off), stable=False)
    del q_ent, q_off
    below = np.searchsorted(keys, q_keys, side="left")
    below -= 1  # the last row with key < (id, t): time < t if it has the query's entity
    first = np.maximum(below, 0)
    ok = below >= 0
    del below
    q_keys >>= t_bits
    ok &= (gather(keys, first) >> t_bits) == q_keys
    del q_keys
    rows_sorted = np.where(ok, gather(order, first).astype(np.int64), -1)
    out = np.empty(q_ids.size, dtype=np.int64)
    out[q_order] = rows_sorted
    return out


def _latest_rows_ranked(ids: np.ndarray, times: np.ndarray, q_ids: np.ndarray,
                        q_times: np.ndarray) -> np.ndarray:
    """`latest_rows` for ids and times too wide to pack: both replaced by their dense rank
    among rows and queries (the same comparisons hold), then packed."""
    all_ids = np.unique(np.concatenate([ids, q_ids]))
    all_t = np.unique(np.concatenate([times, q_times]))
    return latest_rows(np.searchsorted(all_ids, ids), np.searchsorted(all_t, times),
                       np.searchsorted(all_ids, q_ids), np.searchsorted(all_t, q_times))


def lookup(frame: pl.DataFrame, ids: np.ndarray, times: np.ndarray, q_ids: np.ndarray, q_times: np.ndarray,
           columns: list[str], threads: int = 1) -> pl.DataFrame:
    """The `columns` of each query's latest row before its time (all null when there is none),
    in query order: one gather of every column.

    The columns are made contiguous first: a file read in row groups comes in chunks, and
    Polars' gather of random rows across chunks is ~8x slower for strings than the copy."""
    rows = latest_rows(ids, times, q_ids, q_times, threads)
    idx = pl.select(pl.when(pl.Series(rows >= 0)).then(pl.Series(rows))).to_series()
    return frame.select(list(dict.fromkeys(columns))).rechunk().gather(idx)
