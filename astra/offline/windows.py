"""Sorting sources by (entity, time) and turning windows into slices of the sorted rows.

Rows and queries carry packed (entity, time) keys (`astra.offline.keys`).
1. `SortedSource` (astra.offline.sorted_source) sorts the queries by that key, cuts the entities into chunks of about a
   million rows, and partitions the rows by chunk (file order kept inside each), dropping
   the rows no query can see.
2. `EventIndex` is one chunk, its rows stably sorted by key (ties stay in file order): for
   each query (id, t) taken in sorted order, hi = first row >= (id, t), so the rows of a
   window [t - w, t) are exactly the slice [lo_w, hi).  Aggregation kernels
   (`Aggregation.offline` in `astra.ops.aggregations`) read those slices through a `Window`.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import polars as pl

from astra.offline import kernels, ranges
from astra.offline.keys import sort_with_positions
from astra.offline.sorted_source import SortedSource, numeric
from astra.ops import exact
from astra.ops.segments import Segments, concatenated_ranges, offsets_of
from astra.ops.summation import two_sum


class EventIndex:
    """One chunk of a `SortedSource`: the sorted rows and queries of a range of entities, and
    what kernels read about them.  Positions (`hi`, `lo`, kernels' row indexes) are relative
    to the chunk; `order` maps them to frame rows.

    For each query (id, t) hi is the first row >= (id, t), so the rows of a window [t - w, t)
    are exactly the slice [lo_w, hi).
    """

    def __init__(self, source: SortedSource, chunk: int, queries: slice):
        self.source, self.frame, self.ks, self.times = source, source.frame, source.ks, source.times
        frame_rows = source.chunk_rows(chunk)
        if frame_rows is None:
            self.keys, self.order = sort_with_positions(source.keys)
        else:  # ascending rows: a gather that streams through the source's keys
            self.keys, at = sort_with_positions(np.take(source.keys, frame_rows))
            self.order = np.take(frame_rows, at)
        self.q_keys = source.q_keys[queries]
        self.q_times = None if source.q_times is None else source.q_times[queries]
        self.n = self.q_keys.size
        self.hi = np.searchsorted(self.keys, self.q_keys, side="left")
        self._lo: dict[int | None, np.ndarray] = {}
        self.cache: dict[tuple, object] = {}  # per-column structures shared by windows and ops

    def lo(self, window: int | None) -> np.ndarray:
        """First sorted row of each query's window (>= t - w; lifetime: the entity's first row)."""
        if window not in self._lo:
            if window is None:
                self._lo[window] = self._entity_runs()[0]
            else:
                bound = self.ks.window_starts(self.q_keys, window, self.q_times)
                self._lo[window] = np.searchsorted(self.keys, bound, side="left")
        return self._lo[window]

    def session_starts(self, gap: int) -> np.ndarray:
        """Per sorted row, the first row of its session (docs/semantics.md, W3): an entity's rows
        split where consecutive rows are `gap` or more apart.  A running maximum of the
        positions that open a session."""
        def make():
            n = self.keys.size
            if not n:
                return np.zeros(0, dtype=np.int64)
            ids = self.keys >> self.ks.t_bits
            if self.ks.t_uniq is None:  # times on the grid: differences of offsets, in steps
                dt = self.ks.duration(np.diff(self.keys & self.ks.t_span))
            else:  # rank-coded: the raw times
                dt = np.diff(np.take(self.times, self.order))
            opens = np.empty(n, dtype=bool)
            opens[0] = True
            np.logical_or(ids[1:] != ids[:-1], dt >= gap, out=opens[1:])
            return np.maximum.accumulate(np.where(opens, np.arange(n), 0))
        return self.cached(("session", gap), make)

    def session_lo(self, gap: int) -> np.ndarray:
        """First sorted row of each query's session window: the session of the entity's latest
        row before t (an entity without such a row: hi, an empty window)."""
        start = self.session_starts(gap)
        if not start.size:
            return self.hi
        first = self._entity_runs()[0]
        return np.where(self.hi > first, start[np.maximum(self.hi - 1, 0)], self.hi)

    def _entity_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """Each query's entity's first sorted row and run number, found among the runs rather
        than the rows (a search in an array ~20x shorter); an entity without rows in the chunk
        gets its insertion point (hi) and any run."""
        def make():
            starts = self.run_starts()
            if not starts.size:
                return self.hi, np.zeros_like(self.hi)
            run_ids, q_ids = self.keys[starts] >> self.ks.t_bits, self.q_keys >> self.ks.t_bits
            run = np.minimum(np.searchsorted(run_ids, q_ids), starts.size - 1)
            return np.where(run_ids[run] == q_ids, starts[run], self.hi), run
        return self.cached(("entity runs",), make)

    def run_starts(self) -> np.ndarray:
        """The first sorted row of each entity of the chunk (its run of rows)."""
        def make():
            ids = self.keys >> self.ks.t_bits
            return np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]])) if ids.size else ids
        return self.cached(("runs",), make)

    def query_runs(self) -> np.ndarray:
        """Each query's run number: its entity's (any, for an entity without rows in the chunk)."""
        return self._entity_runs()[1]

    def window(self, window: int | None, gap: int | None = None) -> Window:
        """The window of every query: [t - window, t), lifetime (None) or, with `gap`, sessions."""
        return Window(self, window, gap)

    def forget(self, column: str | None) -> None:
        """Drop the cached structures of a column once nothing needs them."""
        for key in [k for k in self.cache if len(k) > 1 and k[1] == column]:
            del self.cache[key]

    def cached(self, key: tuple, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def prefetch(self, columns: list[str]) -> None:
        """Bring columns that kernels read over every row into sorted order once.  Numbers
        (and their non-null flags) go through NumPy's gather, several times faster than
        Polars' on nullable columns; other columns (strings) through one Polars gather."""
        others = []
        for c in columns:
            if numeric(self.dtype(c)):
                self.numbers(c)  # and their non-null flags
            else:
                others.append(c)
        if others:
            frame = self.frame.select(others)[pl.Series(self.order)]
            for c in others:
                self.cache[("series", c)] = frame[c]

    def dtype(self, column: str) -> pl.DataType:
        return self.source.schema[column]

    def series(self, column: str) -> pl.Series:
        """A source column in sorted row order."""
        return self.cached(("series", column), lambda: self.frame[column].gather(self.order))

    def codes(self, column: str) -> np.ndarray | None:
        """The source's `codes` of a column in sorted row order, or None when it has none."""
        def make():
            codes = self.source.codes(column)
            return None if codes is None else np.take(codes, self.order)
        return self.cached(("codes", column), make)

    def valid(self, column: str) -> np.ndarray | None:
        """Non-null flags in sorted order, or None when the column has no nulls."""
        def make():
            nulls = self.source.nulls(column)
            if nulls == "codes":
                return self.codes(column) != 0
            if nulls == "nan":
                return ~np.isnan(np.take(self.source.column(column), self.order))
            return None if nulls is None else np.take(self.source.validity(column), self.order)
        return self.cached(("valid", column), make)

    def numbers(self, column: str, fill=0, keep: bool = True) -> np.ndarray:
        """A numeric (or time) column as numpy in sorted order, nulls replaced by `fill`.
        With `keep=False` a fresh array the caller may overwrite."""
        key = ("numbers", column, fill)
        if not keep and key in self.cache:
            return self.cache[key].copy()  # sequential: far cheaper than another gather

        def make():
            x = np.take(self.source.column(column), self.order)
            if self.source.nulls(column) == "nan":  # the flags come with the values
                valid = self.cached(("valid", column), lambda: ~np.isnan(x))
            else:
                valid = self.valid(column)
            if valid is not None:
                x[~valid] = fill
            return x
        return self.cached(key, make) if keep else make()

    def nonnull_prefix(self, column: str | None) -> np.ndarray | None:
        """Prefix counts of non-null values (None: every row counts)."""
        if column is None or self.valid(column) is None:
            return None
        dtype = np.int32 if self.keys.size < 2**31 else np.int64  # half the memory for most sources
        return self.cached(("nn", column), lambda: ranges.prefix(self.valid(column), dtype))

    def frame_rows(self, rows: np.ndarray) -> np.ndarray:
        """Frame rows for sorted positions (-1 stays -1)."""
        if not self.order.size:
            return np.full_like(rows, -1)
        return np.where(rows >= 0, self.order[np.maximum(rows, 0)].astype(np.int64), -1)


class Window:
    """The rows [lo, hi) of one window for every query: the primitives aggregation kernels use."""

    def __init__(self, index: EventIndex, window: int | None, gap: int | None = None):
        self.index, self.width, self.gap = index, window, gap
        self.lo = index.lo(window) if gap is None else index.session_lo(gap)
        self.hi = index.hi

    @property
    def size(self) -> int:
        return self.index.n

    def rows(self) -> np.ndarray:
        return self.hi - self.lo

    def count(self, column: str | None) -> np.ndarray:
        """Non-null values (all rows for count(*)); computed once per window and column."""
        def make():
            p = self.index.nonnull_prefix(column)
            return self.rows() if p is None else p[self.hi] - p[self.lo]
        return self.index.cached(("count", column, self.width, self.gap), make)

    def sum(self, column: str) -> np.ndarray:
        """Sums of non-null values: exact for integers, compensated for floats; 0 when empty.
        Computed once per window and column (sum and mean share it)."""
        return self.index.cached(("sum", column, self.width, self.gap), lambda: self._sum(column))

    def _sum(self, column: str) -> np.ndarray:
        x = self.index.numbers(column)
        if x.dtype.kind in "iub":
            p = self.index.cached(("isum", column), lambda: ranges.prefix(x.astype(np.int64)))
            return p[self.hi] - p[self.lo]
        p = self.index.cached(("fsum", column),
                              lambda: ranges.RunPrefix(x.astype(np.float64, copy=False), self.index.run_starts()))
        runs = self.index.query_runs()
        out = p.sums(self.lo, self.hi, runs)
        for j in np.flatnonzero(p.suspect(out, self.lo, self.hi, runs)).tolist():
            out[j] = exact.exact_sum(self.values(column, j))  # rare: see `astra.ops.exact`
        return out

    def mean(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, count) of non-null values per window (garbage where the count is 0).  Finite
        floats whose sum overflows still get their finite mean, and integers whose int64 sum
        wraps around their exact one."""
        n, s = self.count(column), self.sum(column)
        out = s / np.maximum(n, 1)
        if s.dtype.kind == "f":
            for j in np.flatnonzero(np.isinf(s) & (n > 0)).tolist():
                out[j] = exact.exact_mean(self.values(column, j))
            return out, n
        # an int64 sum wraps around past 2^63: where it might have, the mean comes from Python ints
        x = self.index.numbers(column)
        top = self.index.cached(("largest", column), lambda: max(-int(x.min()), int(x.max())) if x.size else 0)
        if top and int(n.max(initial=0)) * top >= 2**62:
            for j in np.flatnonzero(n * float(top) >= 2.0**62).tolist():
                out[j] = float(Fraction(sum(self.values(column, j)), int(n[j])))
        return out, n

    def values(self, column: str, j: int) -> list:
        """The non-null values of query j's window, as Python numbers (for exact fallbacks)."""
        lo, hi = int(self.lo[j]), int(self.hi[j])
        x = self.index.numbers(column)[lo:hi]
        valid = self.index.valid(column)
        return (x if valid is None else x[valid[lo:hi]]).tolist()

    def variance(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(n, sample variance) per window (garbage where n < 2), from double-double sums of x
        and x^2: sum(x^2) - sum(x)^2 / n, each sum within its `RunPrefix.bound`.  Where the bound
        of the difference is not far below it (cancellation: values equal or nearly so, much
        larger values earlier in the entity, integers beyond 2^53), the window's values are
        taken exactly instead."""
        def make():
            raw = self.index.numbers(column)
            x = raw.astype(np.float64)
            sq_hi, sq_lo = ranges.two_prod(x, x)
            starts = self.index.run_starts()
            big = None
            if raw.dtype.kind in "iu" and x.size and np.abs(x).max() >= 2.0 ** 53:  # not exact as floats
                big = ranges.prefix(np.abs(x) >= 2.0 ** 53, np.int64)
            return ranges.RunPrefix(x, starts), ranges.RunPrefix(sq_hi, starts, sq_lo), big
        with np.errstate(invalid="ignore", over="ignore"):  # huge or infinite values: sent back below
            return self._variance(column, make)

    def _variance(self, column: str, make) -> tuple[np.ndarray, np.ndarray]:
        p1, p2, big = self.index.cached(("dd", column), make)
        n = self.count(column)
        runs = self.index.query_runs()
        s1h, s1l = p1.window(self.lo, self.hi, runs)
        s2h, s2l = p2.window(self.lo, self.hi, runs)
        qh, ql = ranges.dd_mul(s1h, s1l, s1h, s1l)
        nf = np.maximum(n, 1).astype(np.float64)
        qh, ql = ranges.dd_div_scalar(qh, ql, nf)
        dh, dl = two_sum(s2h, -qh)
        m2 = dh + (dl + (s2l - ql))
        # The error bound grows with the sums' bounds: with every window's at its largest (`most`)
        # it settles most windows at once; the rest get their own, for the same answer.
        e1, b2 = p1.most(), p2.most(steps=3)
        bad = exact.suspect(m2, b2 + (2 * np.abs(s1h) + e1) * e1 / nf + (np.abs(s2h) + np.abs(qh)) * 2.0 ** -100)
        bad &= n >= 2
        j = np.flatnonzero(bad)
        if j.size:
            lo, hi, r = self.lo[j], self.hi[j], runs[j]
            e1 = p1.bound(lo, hi, r)
            bound = p2.bound(lo, hi, r, steps=3) + (2 * np.abs(s1h[j]) + e1) * e1 / nf[j]
            bound += (np.abs(s2h[j]) + np.abs(qh[j])) * 2.0 ** -100
            bad[j] = exact.suspect(m2[j], bound)
        if big is not None:
            bad |= big[self.hi] > big[self.lo]
        var = m2 / np.maximum(n - 1, 1)
        for j in np.flatnonzero(bad).tolist():
            var[j] = exact.exact_variance(self.values(column, j))
        return n, var

    def extremes(self, windows: list[Window], column: str, largest: bool) -> list[pl.Series]:
        """max (or min) of the non-null values of each of `windows` (of this window's index), all
        at once: one sparse table serves them all (`kernels.extremes`)."""
        return kernels.extremes(windows, column, largest)

    def distinct(self, column: str) -> np.ndarray:
        """Distinct non-null values per window (`kernels.distinct_counts`)."""
        return kernels.distinct_counts(self, column)

    def nearest_valid(self, column: str | None, latest: bool) -> np.ndarray:
        """Sorted position of the latest (or earliest) non-null value in each window, or -1."""
        valid = self.index.valid(column) if column is not None else None
        if latest:
            pos = self.hi - 1
            if valid is not None:
                lv = self.index.cached(("last_valid", column), lambda: ranges.last_valid(valid))
                pos = np.where(pos >= 0, lv[np.maximum(pos, 0)], -1) if lv.size else np.full_like(pos, -1)
            return np.where(pos >= self.lo, pos, -1)
        pos = self.lo
        if valid is not None:
            nv = self.index.cached(("next_valid", column), lambda: ranges.next_valid(valid))
            pos = nv[pos]
        return np.where(pos < self.hi, pos, -1)

    def gather(self, column: str, positions: np.ndarray) -> pl.Series:
        """Values at sorted positions (-1: null), in sorted-query order."""
        return self.gather_frame([column], positions).to_series()

    def gather_frame(self, columns: list[str], positions: np.ndarray) -> pl.DataFrame:
        """Several columns at the same sorted positions (-1: null), in one parallel gather."""
        idx = pl.Series(self.index.frame_rows(positions))
        idx = pl.select(pl.when(idx >= 0).then(idx)).to_series()
        return self.index.frame.select(pl.col(list(dict.fromkeys(columns))).gather(idx))

    def last_k(self, column: str, k: int) -> pl.Series:
        """The k latest non-null values of each window, newest first (a list per query)."""
        valid = self.index.valid(column)
        if valid is None:  # every row holds a value: ranks are positions
            c_lo, c_hi, where = self.lo, self.hi, None
        else:  # ranks among non-null values, mapped back to positions
            p = self.index.nonnull_prefix(column)
            c_lo, c_hi = p[self.lo], p[self.hi]
            where = self.index.cached(("nonnull_pos", column), lambda: np.flatnonzero(valid))
        parts = []
        for j in range(k):
            r = c_hi - 1 - j
            pos = np.where(r >= c_lo, r, -1)
            if where is not None:
                pos = np.where(pos >= 0, where[np.maximum(pos, 0)], -1) if where.size else np.full_like(pos, -1)
            parts.append(self.gather(column, pos).alias(f"v{j}"))
        frame = pl.DataFrame(parts)
        return frame.select(pl.concat_list(frame.columns).list.drop_nulls()).to_series()

    def segments(self, column: str, times: bool = False) -> Segments:
        """Each query's non-null values of `column` in (time, source position) order, as CSR
        arrays (`astra.ops.segments`); with `times`, the rows' event times and the queries' times
        (µs).  One vectorised gather of the window rows, no Python loop over rows."""
        index = self.index
        rows = concatenated_ranges(self.lo, self.hi - self.lo)
        valid = index.valid(column)
        if valid is not None:
            rows = rows[valid[rows]]
        if numeric(index.dtype(column)):
            x = index.numbers(column)
        else:  # strings: Python objects, converted once per chunk
            x = index.cached(("objects", column), lambda: index.series(column).to_numpy())
        offsets = offsets_of(self.count(column))
        if not times:
            return Segments(values=x[rows], offsets=offsets)
        ks = index.ks
        if ks.t_uniq is None:  # on the time grid: a key's time offset gives its time exactly
            row_t = ks.t0 + (index.keys[rows] & ks.t_span) * ks.step
            q_t = ks.t0 + (index.q_keys & ks.t_span) * ks.step
        else:  # rank-coded times
            row_t, q_t = ks.t_uniq[index.keys[rows] & ks.t_span], index.q_times
        return Segments(values=x[rows], offsets=offsets, times=row_t.astype(np.int64),
                        query_times=np.asarray(q_t, np.int64))
