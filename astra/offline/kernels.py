"""Aggregation kernels that need more than prefix sums over the sorted rows: range max / min
through a sparse table, and distinct counts through per-value expiry times.

Both work on an `EventIndex` (astra.offline.windows) and answer several windows or queries at
once; the aggregations in `astra.ops.aggregations` call them from their `offline` methods.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from astra.offline import ranges
from astra.offline.windows import _BITS, Window, _bits


def sort_values(x: np.ndarray) -> np.ndarray:
    """Sorted copy (Polars' parallel sort; may be read-only)."""
    return pl.Series(x).sort().to_numpy()


def value_codes(s: pl.Series) -> np.ndarray:
    """int64 codes with equal codes for equal values, 0 for null (for grouping, not ordering)."""
    if s.dtype.is_integer() or s.dtype == pl.Boolean:
        v = s.cast(pl.Int64)
        lo = v.min() if v.len() > v.null_count() else 0
        if _bits(int((v.max() or 0) - (lo or 0)) + 1) < 40:  # small range: no sort needed
            return (v - lo + 1).fill_null(0).to_numpy()
    return s.rank("dense").fill_null(0).cast(pl.Int64).to_numpy()


def extremes(windows: list[Window], column: str, largest: bool) -> list[pl.Series]:
    """max (or min) of the non-null values of each window, for several windows of one index
    at once: one sparse table serves them all.  Values become order-preserving numeric codes
    (strings: their dense rank), nulls a sentinel that never wins."""
    index = windows[0].index
    dtype = index.dtype(column)
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        s = index.series(column)
        codes = s.cast(pl.String).rank("dense").cast(pl.Int64)
        table = s.cast(pl.String).drop_nulls().unique().sort()
        x = codes.fill_null(0).to_numpy()
        private = False  # Polars' memory

        def decode(v: np.ndarray, ok: np.ndarray) -> pl.Series:
            idx = pl.Series(np.where(ok, v - 1, 0))
            return table.gather(pl.select(pl.when(pl.Series(ok)).then(idx)).to_series())
    else:
        private = ("numbers", column, 0) not in index.cache  # else shared with sum / mean
        x = index.numbers(column, keep=False)

        def decode(v: np.ndarray, ok: np.ndarray) -> pl.Series:
            out = pl.select(pl.when(pl.Series(ok)).then(pl.Series(v))).to_series()
            return out.cast(dtype) if dtype != out.dtype else out
    if not largest:
        x = np.negative(x, out=x) if private else -x
        private = True
    valid = index.valid(column)
    if valid is not None:
        sentinel = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        if private:
            x[~valid] = sentinel
        else:
            x = np.where(valid, x, sentinel)
            private = True
    counts = [w.count(column) for w in windows]
    q_lo = np.concatenate([w.lo for w in windows])
    q_hi = np.concatenate([w.hi for w in windows])
    has = np.concatenate(counts) > 0
    best = np.zeros(q_lo.size, dtype=x.dtype)
    best[has] = ranges.range_max(x, q_lo[has], q_hi[has], overwrite=private)
    if not largest:
        best = -best
    out = []
    for i, w in enumerate(windows):
        part = best[i * w.size:(i + 1) * w.size]
        out.append(decode(part, counts[i] > 0))
    return out


def distinct_counts(window: Window, column: str) -> np.ndarray:
    """Distinct non-null values per window.

    Row i is the latest row of its (entity, value) before t and inside the window exactly
    when time_i < t <= end_i, end_i = min(time_i + w, time of the next row with the same
    (entity, value)).  Hence distinct = #{time_i < t} - #{end_i < t}: one binary search over
    the sorted (entity, end_i) keys, on top of hi.
    """
    index, w = window.index, window.width
    ks = index.ks

    def end_keys():
        # Buffers are reused in place where possible: this runs over every source row.
        n = index.keys.size
        if ("numbers", column, 0) in index.cache:  # an integer-like column, prefetched
            x, valid = index.numbers(column), index.valid(column)
            code = pl.Series(x) if valid is None else pl.Series(x).set(pl.Series(~valid), None)
            code = value_codes(code).copy()  # overwritten below
        else:
            code = value_codes(index.series(column)).copy()  # sorted order; overwritten below
        ids = index.keys >> ks.t_bits
        pos_bits, code_bits = _bits(n), _bits(int(code.max(initial=0)))
        # group order: rows by (entity, value), time order inside a group
        if _bits(int(ids.max(initial=0))) + code_bits + pos_bits <= _BITS:  # one sort of unique values
            ids <<= code_bits + pos_bits
            code <<= pos_bits
            ids |= code
            code.fill(1)  # code becomes arange(n), in place
            code[:1] = 0
            np.cumsum(code, out=code)
            ids |= code
            del code
            g = sort_values(ids)
            del ids
            grp_order = np.bitwise_and(g, (1 << pos_bits) - 1)
            grp = np.right_shift(g, pos_bits)
            del g
            null = np.bitwise_and(grp, (1 << code_bits) - 1) == 0
            same = grp[1:] == grp[:-1]
            grp >>= code_bits  # entity ids in group order
        else:  # too wide to pack: a stable two-column arg-sort
            grp_order = pl.DataFrame({"i": ids, "c": code}).select(
                pl.arg_sort_by(["i", "c"], maintain_order=True)).to_series().to_numpy()
            grp, code = ids[grp_order], code[grp_order]
            null = code == 0
            same = (grp[1:] == grp[:-1]) & (code[1:] == code[:-1])
            del code
        off_g = index.keys[grp_order]
        off_g &= ks.t_span
        if w is not None and ks.t_uniq is not None:
            expiry = ks.end_offset(index.times[index.order[grp_order]] + w)
        del grp_order
        # end = min(next offset of the same (entity, value), own offset + w), top if none
        end = np.full(n, ks.t_span, dtype=np.int64)
        np.copyto(end[:-1], off_g[1:], where=same)
        del same
        if w is not None and ks.t_uniq is None:  # direct mode: offsets are times - t0
            off_g += w
            np.minimum(end, off_g, out=end)
            off_g -= w
        elif w is not None:
            np.minimum(end, expiry, out=end)
            del expiry
        np.copyto(end, off_g, where=null)  # a null value expires at once: never counted
        del off_g, null
        grp <<= ks.t_bits
        grp |= end
        del end
        return sort_values(grp)

    ek = index.cached(("distinct", column, w), end_keys)
    return window.hi - np.searchsorted(ek, index.q_keys, side="left")
