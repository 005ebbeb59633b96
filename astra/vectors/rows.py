"""The rows of a vector index: stored vectors, their keys, validity intervals and metadata codes.

A row is one version of a key's vector.  A version inserted at time `t0` is visible to queries at
times `t > t0` (strictly before, as every astra lookup) until the key's next change at `t1` (a new
version, or a delete): it is visible for `t0 < t <= t1`.  A later change at the same time wins, so a
version replaced at its own time is never visible.  Rows are never moved: row numbers are the ids
the HNSW graph knows, and superseded rows stay for point-in-time queries.

Arrays grow by 1.25x, which keeps the exact path's memory within 2x the raw vectors (see
`VectorIndex.memory_bytes`).  A key's changes must come in time order (a batch is sorted by time
first); an older change than the key's latest is refused, since it would rewrite visible history.
"""

from __future__ import annotations

import sys

import numpy as np

NEVER = np.iinfo(np.int64).max  # valid_to of a version no change has ended
_GROWTH = 1.25


def _grow(array: np.ndarray, capacity: int) -> np.ndarray:
    out = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out


class Rows:
    """Growable columns of rows and the key table (mutable; the index owns one)."""

    def __init__(self, dim: int, metadata: tuple[str, ...]):
        self.dim = dim
        self.n = 0
        self.vectors = np.empty((0, dim), dtype=np.float32)
        self.magnitudes = np.empty(0, dtype=np.float64)
        self.key_id = np.empty(0, dtype=np.int32)
        self.valid_from = np.empty(0, dtype=np.int64)
        self.valid_to = np.empty(0, dtype=np.int64)
        self.codes = {name: np.empty(0, dtype=np.int32) for name in metadata}
        self.values: dict[str, list] = {name: [] for name in metadata}  # code -> metadata value
        self.value_code: dict[str, dict] = {name: {} for name in metadata}
        self.keys: list = []  # key id -> key
        self.key_index: dict = {}  # key -> key id
        self.latest = np.empty(0, dtype=np.int64)  # key id -> its live row, -1 when deleted
        self.last_time = np.empty(0, dtype=np.int64)  # key id -> time of its latest change
        self.key_bytes = 0  # sizes of the key objects and their ids held by key_index
        self.live = 0
        self.magnitude_range = (0.0, np.inf)  # largest, smallest non-zero magnitude of any row (scan precision)
        self.changes = 0  # counts changes, so that the latest versions' mask can be cached between them
        self._live_mask: tuple[int, np.ndarray] | None = None

    # ---- sizes -------------------------------------------------------------------------------------

    def capacity_for(self, rows: int) -> int:
        cap = len(self.vectors)
        while cap < rows:
            cap = max(rows, int(cap * _GROWTH) + 16)
        return cap

    def row_bytes(self) -> int:
        """Bytes per row of the row columns (vector, magnitude, key id, validity, metadata codes)."""
        return self.dim * 4 + 8 + 4 + 8 + 8 + 4 * len(self.codes)

    def nbytes(self) -> int:
        """Bytes held: every array at its capacity, plus the key table (dict, list and key objects)."""
        arrays = [self.vectors, self.magnitudes, self.key_id, self.valid_from, self.valid_to, self.latest,
                  self.last_time, *self.codes.values()]
        table = sys.getsizeof(self.key_index) + sys.getsizeof(self.keys) + self.key_bytes
        return sum(a.nbytes for a in arrays) + table

    def projected_bytes(self, new_rows: int, new_keys: int) -> int:
        """`nbytes()` after adding rows and keys (an estimate of the dict's growth included)."""
        cap = self.capacity_for(self.n + new_rows)
        grow_rows = (cap - len(self.vectors)) * self.row_bytes()
        key_cap = self.capacity_for_keys(len(self.keys) + new_keys)
        grow_keys = (key_cap - len(self.latest)) * 16 + new_keys * (8 + 100 + 60)
        return self.nbytes() + grow_rows + grow_keys

    def capacity_for_keys(self, count: int) -> int:
        cap = len(self.latest)
        while cap < count:
            cap = max(count, int(cap * _GROWTH) + 16)
        return cap

    # ---- changes -----------------------------------------------------------------------------------

    def key_ids(self, keys: list) -> np.ndarray:
        """Ids of keys, adding unseen ones."""
        ids = np.empty(len(keys), dtype=np.int64)
        table = self.key_index
        for i, key in enumerate(keys):
            kid = table.get(key)
            if kid is None:
                kid = len(self.keys)
                table[key] = kid
                self.keys.append(key)
                self.key_bytes += sys.getsizeof(key) + sys.getsizeof(kid)
            ids[i] = kid
        cap = self.capacity_for_keys(len(self.keys))
        if cap > len(self.latest):
            old = len(self.latest)
            self.latest = _grow(self.latest, cap)
            self.last_time = _grow(self.last_time, cap)
            self.latest[old:] = -1
            self.last_time[old:] = np.iinfo(np.int64).min
        return ids

    def code(self, name: str, values: list) -> np.ndarray:
        """Metadata codes of values of column `name`, adding unseen values."""
        table, listing = self.value_code[name], self.values[name]
        out = np.empty(len(values), dtype=np.int32)
        for i, value in enumerate(values):
            tagged = _tag(value)
            c = table.get(tagged)
            if c is None:
                c = table[tagged] = len(listing)
                listing.append(value)
            out[i] = c
        return out

    def set_values(self, name: str, values: list) -> None:
        """A metadata column's values in code order (as loaded from a file)."""
        self.values[name] = list(values)
        self.value_code[name] = {_tag(v): i for i, v in enumerate(values)}

    def append(self, kids: np.ndarray, vectors: np.ndarray, magnitudes: np.ndarray, times: np.ndarray,
               codes: dict[str, np.ndarray]) -> np.ndarray:
        """Add rows (already in time order, already checked): each one ends its key's previous version.
        Returns their row numbers."""
        count = len(kids)
        start, stop = self.n, self.n + count
        cap = self.capacity_for(stop)
        if cap > len(self.vectors):
            self.vectors = _grow(self.vectors[: self.n], cap)
            self.magnitudes = _grow(self.magnitudes[: self.n], cap)
            self.key_id = _grow(self.key_id[: self.n], cap)
            self.valid_from = _grow(self.valid_from[: self.n], cap)
            self.valid_to = _grow(self.valid_to[: self.n], cap)
            for name in self.codes:
                self.codes[name] = _grow(self.codes[name][: self.n], cap)
        self.vectors[start:stop] = vectors
        self.magnitudes[start:stop] = magnitudes
        if count:
            nonzero = magnitudes[magnitudes > 0]
            top, low = self.magnitude_range
            self.magnitude_range = (max(top, float(magnitudes.max())),
                                    min(low, float(nonzero.min())) if len(nonzero) else low)
        self.key_id[start:stop] = kids
        self.valid_from[start:stop] = times
        self.valid_to[start:stop] = NEVER
        for name, c in codes.items():
            self.codes[name][start:stop] = c
        rows = np.arange(start, stop, dtype=np.int64)
        self.n = stop
        self.changes += 1
        self._supersede(kids, times, rows)
        return rows

    def end(self, kids: np.ndarray, times: np.ndarray) -> None:
        """Deletes: each key's live version ends at its time."""
        self.changes += 1
        self._supersede(kids, times, np.full(len(kids), -1, dtype=np.int64))

    def _supersede(self, kids: np.ndarray, times: np.ndarray, rows: np.ndarray) -> None:
        # in order, so that a key changed twice in one batch ends its own new row
        latest, valid_to, last_time = self.latest, self.valid_to, self.last_time
        for kid, t, row in zip(kids.tolist(), times.tolist(), rows.tolist()):
            prev = latest[kid]
            if prev >= 0:
                valid_to[prev] = t
                self.live -= 1
            latest[kid] = row
            last_time[kid] = t
            if row >= 0:
                self.live += 1

    # ---- visibility --------------------------------------------------------------------------------

    def visible(self, at: int | None) -> np.ndarray | None:
        """Rows a query at time `at` sees (None: every key's latest version, whatever its time), as a
        mask that must not be written to; None when every row is visible."""
        if at is None:
            if self.live == self.n:  # no version has ended
                return None
            if self._live_mask is None or self._live_mask[0] != self.changes:
                self._live_mask = (self.changes, self.valid_to[: self.n] == NEVER)
            return self._live_mask[1]
        return (self.valid_from[: self.n] < at) & (at <= self.valid_to[: self.n])

    def epochs(self, at: np.ndarray) -> np.ndarray:
        """Per time, how many distinct change times (a version's start or end) are before it:
        times with the same count see the same versions, since `visible` only compares them
        with change times."""
        n = self.n
        ends = self.valid_to[:n]
        changes = np.unique(np.concatenate([self.valid_from[:n], ends[ends != NEVER]]))
        return np.searchsorted(changes, at, side="left")

    def version_at(self, key_ids: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Per (key id, time), the row of the key's version visible at that time (valid from
        before it, not ended before it), or -1 (no such version, or a key id of -1)."""
        n = self.n
        if n == 0 or len(at) == 0:
            return np.full(len(at), -1, dtype=np.int64)
        start, kid = self.valid_from[:n], self.key_id[:n]
        # rank start times and query times together, so (key, time) pairs compare as one int64
        both = np.unique(np.concatenate([start, at]))
        width = np.int64(len(both) + 1)
        row_code = kid.astype(np.int64) * width + np.searchsorted(both, start)
        order = np.argsort(row_code, kind="stable")  # a key's versions by start, ties in change order
        q_code = key_ids.astype(np.int64) * width + np.searchsorted(both, at)
        # the key's last version starting strictly before the time: the one visible then, if any
        pos = np.searchsorted(row_code[order], q_code, side="left") - 1
        row = order[np.maximum(pos, 0)]
        ok = (pos >= 0) & (key_ids >= 0) & (kid[row] == key_ids) & (at <= self.valid_to[:n][row])
        return np.where(ok, row, -1)

    def matching(self, name: str, wanted: list) -> np.ndarray:
        """Rows whose metadata column `name` equals one of `wanted`."""
        table = self.value_code[name]
        tagged = [_tag(v) for v in wanted if _hashable(v)]
        codes = [table[t] for t in tagged if t in table]
        column = self.codes[name][: self.n]
        if not codes:
            return np.zeros(self.n, dtype=bool)
        if len(codes) == 1:
            return column == codes[0]
        return np.isin(column, np.asarray(codes, dtype=np.int32))


def _tag(value: object) -> tuple:
    # True == 1 in Python, but a metadata value true is not the number 1: the table keys carry bool-ness
    return (isinstance(value, bool), value)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
