"""Sorting one source's rows and queries by packed (entity, time) keys, and cutting them into
chunks of whole entities that `astra.offline.windows.EventIndex` answers one at a time."""

from __future__ import annotations

import threading

import numpy as np
import polars as pl

from astra.offline.execution import DEFAULT_SLICE_ROWS
from astra.offline.keys import KeySpace, Pieces, column_pieces, joined, sort_with_positions
from astra.offline.parallel import parallel_map, slices


def numeric(dtype: pl.DataType) -> bool:
    """Whether kernels read a column as NumPy numbers (times and booleans as int64)."""
    return dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean


def chunk_numbering(starts: np.ndarray):
    """A function from entity ids to chunk numbers, chunk i + 1 starting at entity starts[i]
    (sorted, non-empty).  It may overwrite its argument."""
    dtype = np.uint16 if starts.size < 2**16 else np.uint32
    top = int(starts[-1])
    if top < 1 << 22:  # a lookup table (<= 16 MB) is several times faster than a binary search
        table = np.searchsorted(starts, np.arange(top + 1), side="right").astype(dtype)
        return lambda ids: np.take(table, np.minimum(ids, top, out=ids))
    return lambda ids: np.searchsorted(starts, ids, side="right").astype(dtype)


class SortedSource:
    """One source (already filtered) and its queries, cut into chunks of whole entities.

    The rows are partitioned by chunk once, slice by slice on several threads: in each slice
    of ~1M rows, a stable counting sort on the chunk number (file order is kept inside each
    chunk); rows no query can see go to no chunk (`_visible_until`).  Each chunk is sorted by
    (entity, time, file position) only when it is answered, by its `EventIndex`: sorts of ~1M
    keys that stay in cache and run on several threads, instead of one sort of the whole
    source.  Queries are sorted by (entity, time) once;
    `q_order[j]` is the spine row of sorted query j, so that every binary search runs over
    sorted needles, and `spine_positions` restores spine order at the end.  Kernels never see
    the whole source: a chunk's arrays stay in cache and its temporaries reuse the previous
    chunk's memory instead of faulting in fresh pages (at 10M rows that was a third of the
    CPU time).

    `chunks` lists (chunk number, slice of sorted queries) for the chunks that have queries.
    """

    def __init__(self, frame: pl.DataFrame, ids: Pieces, times: Pieces, q_ids: np.ndarray,
                 q_times: np.ndarray, rows_per_chunk: int, widths=(), threads: int = 1,
                 slice_rows: int = DEFAULT_SLICE_ROWS):
        """`ids` (one per frame row) and `times` may come in pieces (a column's chunks, read
        without a copy).
        `widths` are the window lengths the chunks will be asked about (for the time grid);
        passes over every row run by slices of `slice_rows` on `threads` threads."""
        self.frame, self.threads = frame, threads
        self.schema = dict(frame.schema)  # also of columns converted to NumPy and dropped
        self.ks = ks = KeySpace([ids, q_ids], times, q_times, widths, threads, slice_rows)
        keys = ks.pack(ids, times)
        del ids
        self.times = joined(times) if ks.t_uniq is not None else None  # raw times: only the fallback needs them
        # queries with equal keys are interchangeable: any order of them will do
        self.q_keys, self.q_order = sort_with_positions(ks.pack(q_ids, q_times), stable=False)
        # raw query times in sorted order, only for rank-coded times (`KeySpace.window_starts`)
        self.q_times = q_times[self.q_order] if ks.t_uniq is not None else None

        starts = self._chunk_starts(keys, rows_per_chunk)
        self.keys = keys  # in file order
        self._parts: list[np.ndarray] | None = None  # per slice: its frame rows grouped by chunk
        until = self._visible_until()
        if keys.size and (starts.size or until is not None):
            number = chunk_numbering(starts) if starts.size else lambda ids: np.zeros(ids.size, np.uint8)
            hidden = starts.size + 1  # the chunk number of rows no query sees: never answered
            row_dtype = np.uint32 if keys.size < 2**32 else np.int64  # half the memory while chunks run

            def partition(part: slice) -> tuple[np.ndarray, np.ndarray]:
                ids = keys[part] >> ks.t_bits
                unseen = None if until is None else (keys[part] & ks.t_span) >= np.take(until, ids)
                chunk = number(ids)
                if unseen is not None:
                    chunk[unseen] = hidden
                rows = np.argsort(chunk, kind="stable").astype(row_dtype)  # 8/16 bits: a radix sort
                rows += part.start
                return rows, np.bincount(chunk, minlength=hidden + 1)

            done = parallel_map(partition, slices(keys.size, slice_rows), threads)
            self._parts = [rows for rows, _ in done]
            counts = np.stack([c for _, c in done])  # (slice, chunk)
            # chunk c's rows in slice i are _parts[i][_bounds[i, c]:_bounds[i, c + 1]]
            self._bounds = np.concatenate([np.zeros((len(done), 1), dtype=np.int64), np.cumsum(counts, axis=1)], axis=1)
            self.sizes = counts.sum(axis=0)[:hidden]
        else:  # one chunk: every row, in file order
            self.sizes = np.array([keys.size])
        q = np.concatenate([[0], np.searchsorted(self.q_keys, starts << ks.t_bits), [self.q_keys.size]])
        self.chunks = [(c, slice(q[c], q[c + 1])) for c in range(self.sizes.size) if q[c + 1] > q[c]]
        self._columns: dict[tuple, np.ndarray | None] = {}
        self._making: dict[tuple, threading.Lock] = {}
        self.lock = threading.Lock()  # chunks may be answered on several threads

    def _visible_until(self) -> np.ndarray | None:
        """Per entity id, the time offset of its last query: a row at or after it is seen by no
        query (visibility is strictly before t), nor is any row of an entity without queries
        (offset 0).  None when the ids are too sparse for a table (no row is then dropped).

        Dropping those rows changes no answer: counts, extremes, distinct counts and nearest
        rows only ever read rows before a query's time, and float sums restart at each entity
        (`ranges.RunPrefix`), so an entity's values do not depend on the other rows kept in its
        chunk either.  Rows before a window are kept: they may be an entity's lifetime or its
        latest value, and moving an entity's first row would move the start of its sums."""
        ks = self.ks
        if ks.id_max >= 1 << 22:  # a table of at most 32 MB
            return None
        until = np.zeros(ks.id_max + 1, dtype=np.uint32 if ks.t_bits <= 32 else np.int64)
        q_ids = self.q_keys >> ks.t_bits
        last = np.flatnonzero(np.append(q_ids[1:] != q_ids[:-1], True)) if q_ids.size else q_ids
        until[q_ids[last]] = self.q_keys[last] & ks.t_span
        return until

    def _chunk_starts(self, keys: np.ndarray, rows: int) -> np.ndarray:
        """Sorted packed entity ids at which chunks 1, 2, ... begin: about every `rows` rows (by
        a sample of the rows), never leaving a chunk without rows.

        The cuts depend on the source's rows alone, never on the queries.  (Answers would not
        change with them either: float sums restart at each entity, see `ranges.RunPrefix`.)"""
        shift = self.ks.t_bits
        stride = max(1, keys.size >> 16)
        sample = np.sort(keys[::stride] >> shift)
        cuts = np.unique(sample[max(1, rows // stride)::max(1, rows // stride)])
        if not cuts.size:
            return cuts
        # rows below each cut: a cut that leaves no rows before it (or after it), or no more
        # rows than the previous cut, would make an empty chunk
        below = np.searchsorted(sample, cuts) * stride  # exact enough: a sampled row lies between
        _, first = np.unique(below, return_index=True)
        keep = first[(below[first] > 0) & (below[first] < keys.size)]
        return cuts[keep]

    def convert(self, columns: list[str], coded: list[str], keep: set[str]) -> None:
        """Convert numeric columns that kernels read over every row to NumPy once (values and
        non-null flags), and `coded` columns to small codes where they can be, then drop those
        that no Polars gather needs from the frame, so that their Polars buffers are freed
        before the chunks start."""
        parallel_map(lambda c: (self.column(c), self.validity(c)), columns, self.threads)
        parallel_map(lambda c: (self.codes(c), self.validity(c)), coded, self.threads)
        self.frame = self.frame.drop([c for c in columns if c not in keep] +
                                     [c for c in coded if c not in keep and self.codes(c) is not None])

    def column(self, column: str) -> np.ndarray:
        """A numeric (or time, or boolean) column in file order as NumPy (read-only; converted
        once, gathered by each chunk).  Null slots hold arbitrary values (NaN for floats, which
        are converted as is: one copy); `EventIndex.numbers` fills them.  The column's chunks
        are copied on several threads."""
        def make():
            s = self.frame[column]
            if isinstance(s.dtype, pl.Datetime | pl.Duration) or s.dtype == pl.Boolean:
                s = s.cast(pl.Int64)
            if s.null_count() and not s.dtype.is_float():  # to_numpy would make them floats
                s = s.fill_null(0)
            pieces = s.get_chunks()
            if len(pieces) < 2:
                return s.to_numpy()
            out = np.empty(s.len(), dtype=s.head(0).to_numpy().dtype)
            starts = np.cumsum([0] + [p.len() for p in pieces]).tolist()
            parallel_map(lambda i: np.copyto(out[starts[i]:starts[i + 1]], pieces[i].to_numpy()), range(len(pieces)),
                         self.threads)
            return out
        return self._shared(("numbers", column), make)

    def codes(self, column: str) -> np.ndarray | None:
        """Codes of a column's values in file order, 16 bits each (0: null, equal values equal
        codes, order kept), or None unless the values are integers (or times, or booleans)
        spanning fewer than 2**16 codes.  A chunk gathers 2 bytes a row from a few megabytes
        instead of 8 from tens of them."""
        def make():
            s = self.frame[column]
            if not numeric(s.dtype) or s.dtype.is_float() or s.dtype.is_decimal():
                return None
            s = s.cast(pl.Int64)
            if s.null_count() == s.len():
                return np.zeros(s.len(), dtype=np.uint16)
            low, high = s.min(), s.max()
            if high - low + 1 >= 1 << 16:  # codes 1 .. high - low + 1
                return None
            nulls = s.is_null().to_numpy() if s.null_count() else None
            pieces = column_pieces(s.fill_null(low))  # straight from Polars' buffers, chunk by chunk
            starts = np.cumsum([0] + [p.size for p in pieces])
            codes = np.empty(s.len(), dtype=np.uint16)

            def code(i: int) -> None:  # x - low is below 2**16 - 1: exact in 16 bits
                part = codes[starts[i]:starts[i + 1]]
                np.subtract(pieces[i], low, out=part, casting="unsafe")
                part += 1

            parallel_map(code, range(len(pieces)), self.threads)
            if nulls is not None:
                codes[nulls] = 0
            return codes
        return self._shared(("codes", column), make)

    def nulls(self, column: str) -> str | None:
        """How chunks tell a column's nulls apart: None when it has none; "codes" (code 0) when
        its `codes` are made; "nan" for floats no value of which is NaN (their NumPy numbers
        hold NaN exactly at the nulls); else "flags" (`validity`).  All but "flags" spare each
        chunk a gather of flags from random rows of the source."""
        def make():
            s = self.frame[column]
            if not s.null_count():
                return None
            if self._columns.get(("codes", column)) is not None:
                return "codes"
            if s.dtype.is_float() and not s.is_nan().any():
                return "nan"
            return "flags"
        return self._shared(("nulls", column), make)

    def validity(self, column: str) -> np.ndarray | None:
        """Non-null flags in file order for a column whose nulls are told apart by "flags",
        else None."""
        def make():
            return self.frame[column].is_not_null().to_numpy() if self.nulls(column) == "flags" else None
        return self._shared(("valid", column), make)

    def _shared(self, key: tuple, make):
        """make(), once per key however many threads ask; different keys are made at once."""
        with self.lock:
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            if key not in self._columns:
                self._columns[key] = make()
            return self._columns[key]

    def chunk_rows(self, chunk: int) -> np.ndarray | None:
        """A chunk's frame rows, ascending (None: the only chunk, every row)."""
        if self._parts is None:
            return None
        return np.concatenate([rows[b[chunk]:b[chunk + 1]] for rows, b in zip(self._parts, self._bounds)])

    def spine_positions(self) -> pl.Series:
        """For each spine row, its sorted-query position: `values.gather(...)` of a Series in
        sorted-query order puts it in spine order.  32-bit while they fit: Polars' own row
        number type, which it would otherwise convert to at every gather."""
        n = self.q_order.size
        inv = np.empty(n, dtype=np.uint32 if n < 2**32 else np.int64)
        inv[self.q_order] = np.arange(n, dtype=inv.dtype)
        return pl.Series(inv)
