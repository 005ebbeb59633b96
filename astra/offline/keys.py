"""Entity ids and packed (entity, time) keys: what every sorted structure of the offline engine
is built on.

1. Entity keys (one or more columns) become one non-negative int64 id per row (`entity_ids`).
2. `KeySpace` packs (id, time) into one int64 that sorts like the pair, times counted in
   steps of their common grid.  When the time range is still too wide to sit next to the
   ids, times are replaced by their rank among the row and query times (an order-preserving
   compression), and if needed ids likewise.
3. `sort_with_positions` sorts keys and says where each came from, in one plain sort when the
   positions fit below the keys.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import polars as pl

from astra.offline.execution import DEFAULT_SLICE_ROWS
from astra.offline.parallel import parallel_map, slices

_BITS = 63  # packed keys stay non-negative int64


def _bits(n: int) -> int:
    return max(int(n), 0).bit_length()


Pieces = np.ndarray | list[np.ndarray]  # one array, or consecutive pieces of one (a column's chunks)


def _as_pieces(x: Pieces) -> list[np.ndarray]:
    return x if isinstance(x, list) else [x]


def joined(x: Pieces) -> np.ndarray:
    """The pieces as one array."""
    pieces = _as_pieces(x)
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _rows(pieces: list[np.ndarray], rows: slice) -> np.ndarray:
    """Rows of the pieces' concatenation that lie inside one piece, as a view of it."""
    start = 0
    for p in pieces:
        if rows.start < start + p.size:
            return p[rows.start - start:rows.stop - start]
        start += p.size
    return pieces[-1][:0]


def column_pieces(s: pl.Series) -> list[np.ndarray]:
    """A Polars column without nulls as NumPy views of its chunks (no copy)."""
    return [c.to_numpy() for c in s.get_chunks()] or [s.to_numpy()]


def entity_ids(frames: list[pl.DataFrame]) -> list[Pieces]:
    """One int64 id per row for frames with the same key columns; equal keys get equal ids.

    A single integer key is used as is (offset to its minimum when that makes the ids
    narrower or they are negative; no sort needed), as NumPy views of the column's chunks (no
    copy: `KeySpace.pack` reads them piece by piece); other keys are dense-ranked, and
    composite keys combine their columns' ranks.
    """
    cols = frames[0].columns
    if len(cols) == 1 and all(f.schema[cols[0]].is_integer() for f in frames):
        values = [column_pieces(f[cols[0]].cast(pl.Int64)) for f in frames]
        flat = [v for pieces in values for v in pieces if v.size]
        low = min((int(v.min()) for v in flat), default=0)
        high = max((int(v.max()) for v in flat), default=0)
        if low >= 0 and high < 1 << _BITS and _bits(high) == _bits(high - low):  # an offset saves no bit: no pass
            return values
        if high - low < 1 << _BITS:  # else ranks below (the offsets would overflow)
            return [[v - low for v in pieces] for pieces in values]
    lengths = [f.height for f in frames]
    both = pl.concat([f.select(cols) for f in frames], how="vertical_relaxed")
    code = None
    for c in cols:
        r = both[c].rank("dense").cast(pl.Int64).to_numpy()
        if code is None:
            code = r
            continue
        width = int(r.max(initial=0)) + 1
        if _bits(int(code.max(initial=0))) + _bits(width) > _BITS:
            code = pl.Series(code).rank("dense").cast(pl.Int64).to_numpy()
        code = code * width + r
    return list(np.split(code, np.cumsum(lengths)[:-1]))


def time_grid(times: list[np.ndarray], t0: int, threads: int = 1, widths=(),
              slice_rows: int = DEFAULT_SLICE_ROWS) -> int:
    """The greatest common divisor of every time's offset from t0 and of the window `widths`
    (1 when they are all 0), by slices on `threads` threads: no temporary the size of a source."""
    parts = [(t, part) for t in times for part in slices(t.size, slice_rows)]
    grids = parallel_map(lambda tp: int(np.gcd.reduce(tp[0][tp[1]] - t0)), parts, threads)
    return int(np.gcd.reduce(np.array([0, *widths, *grids], dtype=np.int64))) or 1


class KeySpace:
    """Packs (id, time) pairs into int64 keys ordered like the pairs.

    Times are counted from the earliest row or query time t0 in steps of the greatest common
    divisor of every row and query offset and window width (whole seconds in most data): all
    of them are exact multiples, so every comparison of a row time with a query time or a
    window start is unchanged, and the keys are ~20 bits narrower, which usually leaves room
    to pack a row's position below them (see `sort_with_positions`).  A window start below t0 is
    raised to t0 (no row lies lower).  When ids and times still do not fit side by side in
    63 bits, times are replaced by their rank among the row and query times (and then, if
    needed, ids by theirs): the same comparisons hold.
    """

    def __init__(self, ids: list[Pieces], rows: Pieces, queries: np.ndarray, widths=(),
                 threads: int = 1, slice_rows: int = DEFAULT_SLICE_ROWS):
        """`ids` are the row ids and query ids, `rows` the row times, each one array or
        consecutive pieces (a column's chunks)."""
        ids = [i for pieces in ids for i in _as_pieces(pieces) if i.size] or [np.zeros(1, np.int64)]
        self.id_max = max(int(i.max()) for i in ids)
        times = [t for t in (*_as_pieces(rows), queries) if t.size] or [np.zeros(1, np.int64)]
        self.t0 = min(int(t.min()) for t in times)
        self.threads, self.slice_rows = threads, slice_rows
        self.step = time_grid(times, self.t0, threads, widths, slice_rows)
        self.t_bits = _bits((max(int(t.max()) for t in times) - self.t0) // self.step + 1)
        self.t_uniq: np.ndarray | None = None
        self.id_uniq: np.ndarray | None = None
        if _bits(self.id_max) + self.t_bits > _BITS:
            self.t_uniq = np.unique(np.concatenate(times))
            self.t_bits = _bits(self.t_uniq.size)
        if _bits(self.id_max) + self.t_bits > _BITS:
            self.id_uniq = np.unique(np.concatenate(ids))
            self.id_max = self.id_uniq.size
        if _bits(self.id_max) + self.t_bits > _BITS:
            raise OverflowError("too many distinct entities and times to pack into 63 bits")
        self.t_span = (1 << self.t_bits) - 1

    def offset(self, t: np.ndarray) -> np.ndarray:
        """Order-preserving small non-negative integer for row and query times."""
        if self.t_uniq is not None:
            return np.searchsorted(self.t_uniq, t)
        return (t - self.t0) // self.step if self.step > 1 else t - self.t0

    def start_offset(self, t: np.ndarray) -> np.ndarray:
        """Offset of a window start: a row time r >= t exactly when offset(r) >= start_offset(t)."""
        if self.t_uniq is not None:
            return np.searchsorted(self.t_uniq, t, side="left")
        return -(np.minimum(self.t0 - t, 0) // self.step)  # ceil: t need not lie on the grid

    def window_starts(self, keys: np.ndarray, window: int | None, times: np.ndarray | None = None) -> np.ndarray:
        """For query keys, the smallest key of a row of the same entity inside the window
        [t - window, t) (lifetime, `window` None: the entity's smallest key).

        On the time grid a query's time is t0 + offset * step exactly, so the bound comes from
        the key alone: no ids or raw times are gathered.  Only rank-coded times (`t_uniq`)
        need the queries' raw `times`."""
        entity = keys & ~self.t_span  # the entity's smallest key
        if window is None:
            return entity
        if self.t_uniq is None:
            offsets = keys & self.t_span
            if window % self.step == 0:  # always, for the windows the key space was built for
                return keys - np.minimum(offsets, window // self.step)
            times = self.t0 + offsets * self.step
        elif times is None:
            raise ValueError("rank-coded times need the queries' raw times")
        return entity | self.start_offset(times - window)

    def duration(self, offsets: np.ndarray) -> np.ndarray:
        """Time between two rows (µs) from the difference of their offsets (direct mode)."""
        return offsets * self.step if self.step > 1 else offsets

    def pack(self, ids: Pieces, t: Pieces) -> np.ndarray:
        """Keys for (ids, row or query times t); each may come as consecutive pieces (a
        column's chunks), with pieces of their own lengths."""
        if self.id_uniq is not None or self.t_uniq is not None:
            ids = joined(ids)
            if self.id_uniq is not None:
                ids = np.searchsorted(self.id_uniq, ids)
            k = ids << self.t_bits
            k |= self.offset(joined(t))
            return k
        ids, t = _as_pieces(ids), _as_pieces(t)
        n = sum(p.size for p in ids)
        k = np.empty(n, dtype=np.int64)
        # rows where neither input changes piece, cut again into slices: views, no temporary
        cuts = np.unique(np.concatenate([[0, n], np.cumsum([p.size for p in ids]), np.cumsum([p.size for p in t])]))
        spans = [slice(a + part.start, a + part.stop) for a, b in pairwise(cuts.tolist())
                 for part in slices(b - a, self.slice_rows)]

        def part(rows: slice) -> None:
            np.left_shift(_rows(ids, rows), self.t_bits, out=k[rows])
            offsets = _rows(t, rows) - self.t0
            if self.step > 1:
                offsets //= self.step
            k[rows] += offsets

        parallel_map(part, spans, self.threads)
        return k


def gather(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x[idx] through Polars' gather: at 10M random positions about twice as fast as NumPy's
    (which first converts unsigned row numbers to intp).  May be read-only."""
    return pl.Series(x).gather(pl.Series(idx)).to_numpy()


def sort_with_positions(keys: np.ndarray, stable: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(sorted keys, their input positions); equal keys keep input order when `stable`.

    With the position packed below the key (offset to its minimum) every value is distinct,
    so a plain sort of values gives both, in place: NumPy's vectorised quicksort (AVX2 /
    AVX-512 on x86, Highway on ARM), single-threaded, is 2-3x faster than Polars' sort on two
    threads and several times faster than a stable arg-sort.  When the keys are too wide for
    that, an arg-sort and a gather."""
    n = keys.size
    if n == 0:
        return keys, np.zeros(0, dtype=np.int64)
    low = int(keys.min())
    pos_bits = _bits(n)
    if _bits(int(keys.max()) - low) + pos_bits <= _BITS:
        packed = np.subtract(keys, low)
        packed <<= pos_bits
        positions = np.arange(n, dtype=np.int64)
        packed |= positions
        packed.sort()  # in place
        # the results reuse the two buffers, already faulted in, instead of two fresh arrays
        at = np.bitwise_and(packed, (1 << pos_bits) - 1, out=positions)
        out = np.right_shift(packed, pos_bits, out=packed)
        out += low
        return out, at
    order = stable_argsort(keys) if stable else pl.Series(keys).arg_sort().to_numpy()
    return np.take(keys, order), order


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """Stable argsort (Polars' parallel sort; equal keys keep their order)."""
    s = pl.DataFrame({"k": keys}).select(pl.arg_sort_by("k", maintain_order=True)).to_series()
    return s.to_numpy()  # unsigned row numbers; numpy indexes with them directly
