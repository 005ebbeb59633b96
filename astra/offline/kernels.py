"""Aggregation kernels that need more than prefix sums over the sorted rows: range max / min
through a sparse table, and distinct counts through flags on each value's consecutive rows.

Both work on an `EventIndex` (astra.offline.windows) and answer several windows or queries at
once; `Window.extremes` and `Window.distinct` (the structures of `astra.ops.structures` the
aggregations are written against) call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from astra.offline import ranges
from astra.offline.keys import _BITS, _bits

if TYPE_CHECKING:  # windows.py answers its `extremes` and `distinct` with these kernels
    from astra.offline.windows import Window


def sort_values(x: np.ndarray) -> np.ndarray:
    """Sorted copy."""
    return np.sort(x)


def value_codes(s: pl.Series) -> np.ndarray:
    """int64 codes with equal codes for equal values, 0 for null (for grouping, not ordering)."""
    if s.dtype.is_integer() or s.dtype == pl.Boolean:
        v = s.cast(pl.Int64)
        lo = v.min() if v.len() > v.null_count() else 0
        if _bits(int((v.max() or 0) - (lo or 0)) + 1) < 40:  # small range: no sort needed
            return (v - lo + 1).fill_null(0).to_numpy()
    return s.rank("dense").fill_null(0).cast(pl.Int64).to_numpy()


def extremes(windows: Sequence[Window], column: str, largest: bool) -> list[pl.Series]:
    """max (or min) of the non-null values of each window, for several windows of one index
    at once: one sparse table serves them all.  Values become order-preserving numeric codes
    (strings: their dense rank), nulls the type's smallest value, which wins only where every
    value of the window is that smallest value too (windows without values are not asked).
    NaN wins over every number (np.maximum propagates it): a window holding NaN has NaN as
    its min and its max."""
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
        x = index.numbers(column, keep=False)  # a fresh copy: the sparse table may overwrite it
        private = True

        def decode(v: np.ndarray, ok: np.ndarray) -> pl.Series:
            out = pl.select(pl.when(pl.Series(ok)).then(pl.Series(v))).to_series()
            return out.cast(dtype) if dtype != out.dtype else out
    # min is the max of an order-reversing map: negation for floats, bitwise not for integers
    # (-x overflows at the type's minimum, which would then pass for a missing value)
    flip = np.negative if x.dtype.kind == "f" else np.invert
    if not largest:
        x = flip(x, out=x) if private else flip(x)
        private = True
    valid = index.valid(column)
    if valid is not None:
        sentinel = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        if private:
            x[~valid] = sentinel
        else:
            x = np.where(valid, x, sentinel)
            private = True
    has = [w.count(column) > 0 for w in windows]  # only windows holding a value are asked
    at = [np.flatnonzero(h) for h in has]
    best = ranges.range_max(x, np.concatenate([w.lo[a] for w, a in zip(windows, at)]),
                            np.concatenate([w.hi[a] for w, a in zip(windows, at)]), overwrite=private)
    if not largest:
        best = flip(best, out=best)
    out, start = [], 0
    for w, h, a in zip(windows, has, at):
        part = np.zeros(w.size, dtype=best.dtype)
        part[a] = best[start:start + a.size]
        start += a.size
        out.append(decode(part, h))
    return out


def distinct_counts(window: Window, column: str) -> np.ndarray:
    """Distinct non-null values per window.

    Row i is the latest row of its (entity, value) before t and inside the window exactly
    when time_i < t <= end_i, end_i = min(time of the next row j of the same (entity, value),
    time_i + w).  So distinct = #{time_i < t} - #{end_i < t}, and end_i < t holds exactly when
    either j exists with time_j <= time_i + w and j lies before t (j < hi: flag j), or no
    such j exists and time_i < t - w (i < lo: flag i).  Both are prefix sums over the sorted
    rows, read at [start, hi) and [start, lo): no sort of window ends, one sort of
    (value, position) shared by every window of the column.  A null row is flagged like a
    row with a next occurrence at its own time, so it cancels out.
    """
    index, w = window.index, window.width
    start, hi = index.lo(None), window.hi
    prev, cur, gap, null_pos = index.cached(("distinct_pairs", column), lambda: _pairs(index, column))
    if window.gap is not None:
        return _session_distinct(window, column, prev, cur, null_pos)

    def flags():
        n = index.keys.size
        nxt = np.zeros(n, dtype=np.uint8)  # j follows a row of its group within w (or is null)
        within = None if w is None else gap <= w
        nxt[cur if within is None else cur[within]] = 1
        if null_pos is not None:
            nxt[null_pos] = 1
        last = None
        if within is not None:  # non-null rows with no next row within w: expire at time_i + w
            last = np.ones(n, dtype=np.uint8)
            if null_pos is not None:
                last[null_pos] = 0
            last[prev[within]] = 0
        dtype = np.int32 if n < 2**31 else np.int64
        return ranges.prefix(nxt, dtype), None if last is None else ranges.prefix(last, dtype)

    f, b = index.cached(("distinct_flags", column, w), flags)
    out = hi - start
    out -= f[hi] - f[start]
    if b is not None:
        lo = window.lo
        out -= b[lo] - b[start]
    return out


def _session_distinct(window: Window, column: str, prev, cur, null_pos) -> np.ndarray:
    """Distinct non-null values in session windows: a session window's rows [lo, hi) all lie in
    one session, so it holds (hi - lo) rows minus those whose value's previous row (of the
    entity) is in the same session, minus null rows: one prefix sum of flags per gap."""
    index = window.index

    def flags():
        starts = index.session_starts(window.gap)
        repeat = np.zeros(index.keys.size, dtype=np.uint8)
        repeat[cur[prev >= starts[cur]]] = 1
        if null_pos is not None:
            repeat[null_pos] = 1
        return ranges.prefix(repeat, np.int32 if repeat.size < 2**31 else np.int64)

    f = index.cached(("session_repeats", column, window.gap), flags)
    lo, hi = window.lo, window.hi
    return (hi - lo) - (f[hi] - f[lo])


def _codes(index, column: str) -> np.ndarray:
    """Value codes in sorted row order (0: null): the source's 16-bit codes as they are, else
    int64."""
    if ("numbers", column, 0) not in index.cache:  # not read as numbers: the source's codes, or ranks
        codes = index.codes(column)
        return value_codes(index.series(column)) if codes is None else codes
    x, valid = index.numbers(column), index.valid(column)  # prefetched, nulls filled with 0
    if x.dtype.kind in "iu" and x.size:
        lo, hi = int(x.min()), int(x.max())  # a filled null only widens the range a little
        if _bits(hi - lo + 1) < 40:  # codes x - lo + 1 in one pass over the column
            code = np.subtract(x, lo, dtype=np.int64)  # (not x - (lo - 1): lo may be int64's minimum)
            code += 1
            if valid is not None:
                code[~valid] = 0
            return code
    s = pl.Series(x) if valid is None else pl.Series(x).set(pl.Series(~valid), None)
    return value_codes(s)


_RADIX_BITS = 16  # value codes this narrow are grouped by a radix sort


def _group_order(index, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Sorted positions grouped by (entity, value), positions ascending inside a group: the
    rows of one (entity, value) are then adjacent, in time order.  Returns (positions, their
    keys, whether each position continues the group of the one before it, null flags or None
    when the column has no nulls).

    Value codes below 2**16 (most categorical columns) are grouped by NumPy's stable sort of
    16-bit numbers, a radix sort: one pass per byte, rows of one value kept in their sorted
    (entity, time) order.  Wider codes sort (entity, value code, position) packed into one
    int64 when it fits: the rows are already entity-contiguous, so this only orders short
    runs.  Otherwise (value code, position) is packed (adjacent rows of one value are then
    grouped by entity, since positions are entity-contiguous), or, when not even that fits,
    a stable arg-sort by code."""
    code = _codes(index, column)
    has_nulls = index.valid(column) is not None
    n = index.keys.size
    pos_bits, code_bits = _bits(n), _bits(int(code.max(initial=0)))
    pos_mask = (1 << pos_bits) - 1
    ks = index.ks
    if code_bits > _RADIX_BITS and _bits(ks.id_max) + code_bits + pos_bits <= _BITS:
        g = index.keys >> ks.t_bits  # entity ids, in sorted row order
        g <<= code_bits
        g |= code
        del code
        g <<= pos_bits
        g |= np.arange(n, dtype=np.int64)
        g = sort_values(g)
        pos = np.bitwise_and(g, pos_mask)
        grp = np.right_shift(g, pos_bits)
        del g
        nulls = (grp & ((1 << code_bits) - 1)) == 0 if has_nulls else None
        return pos, np.take(index.keys, pos), grp[1:] == grp[:-1], nulls
    if code_bits <= _RADIX_BITS:
        pos = np.argsort(code.astype(np.uint16, copy=False), kind="stable")
        code_g = np.repeat(np.arange(1 << code_bits, dtype=np.uint16), np.bincount(code, minlength=1 << code_bits))
    elif code_bits + pos_bits <= _BITS:
        g = code << pos_bits
        g |= np.arange(n, dtype=np.int64)
        g = sort_values(g)
        pos = np.bitwise_and(g, pos_mask)
        code_g = np.right_shift(g, pos_bits)
    else:
        pos = pl.DataFrame({"c": code}).select(
            pl.arg_sort_by("c", maintain_order=True)).to_series().to_numpy().astype(np.int64)
        code_g = code[pos]
    del code
    # rows of one value are in sorted (entity, time) order: a group continues while the entity does
    keys = np.take(index.keys, pos)
    same = code_g[1:] == code_g[:-1]
    entity = keys >> ks.t_bits
    same &= entity[1:] == entity[:-1]
    return pos, keys, same, code_g == 0 if has_nulls else None


def _pairs(index, column: str):
    """(previous, next) sorted positions of consecutive rows of one non-null (entity, value),
    their time gap, and the positions of null rows (None if none)."""
    pos, keys, same, nulls = _group_order(index, column)
    n = index.keys.size
    ks = index.ks
    # direct mode: offsets are (times - t0) / step; else raw times (offsets are ranks)
    direct = ks.t_uniq is None
    t = keys & ks.t_span if direct else index.times[index.order[pos]]
    del keys
    null_pos = None
    if nulls is not None:
        same &= ~nulls[1:]
        null_pos = pos[nulls] if nulls.any() else None
        del nulls
    i = np.flatnonzero(same)
    del same
    gap = t[i + 1] - t[i]
    if direct:
        gap = ks.duration(gap)
    del t
    if n < 2**31:  # positions as int32: half the memory while the pairs are cached
        pos = pos.astype(np.int32)
        null_pos = None if null_pos is None else null_pos.astype(np.int32)
    return pos[i], pos[i + 1], gap, null_pos
