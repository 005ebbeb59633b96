"""`VectorIndex`: nearest neighbours over (key, vector, valid-from time, metadata) rows.

Two kinds answer the same queries.  `exact` scans every candidate (scan.py) and returns the true k
nearest, ties broken by the smaller key.  `hnsw` asks a faiss HNSW graph (hnsw.py) and re-ranks what
it found exactly; when the rows a query may see (its `at` time and filter) number at most
`exact_below`, it scans those exactly instead, since a graph search that must skip most nodes loses
recall.  Both report exact float64 distances of the stored vectors (metrics.py).

Changes: `insert` adds a version of each key (an update when the key exists: its previous version
ends, a tombstone, and the new one begins), `delete` ends a key's version.  Rows and their visibility
rules are in rows.py.  Queries: `search(vectors, k, at=, filter=)`, `at` None meaning every key's
latest version.
"""

from __future__ import annotations

import heapq

import attrs
import numpy as np

from astra import times as astra_times
from astra.vectors import hnsw, scan
from astra.vectors.errors import VectorError, VectorMemoryError
from astra.vectors.hnsw import HnswParams
from astra.vectors.metrics import Metric, fit_mahalanobis, metric, resolve
from astra.vectors.rows import Rows

KINDS = ("exact", "hnsw")
EXACT_BELOW = 20_000  # candidates at or under which an hnsw index scans exactly
MAX_K = 10_000  # answers per query: the result is a q x k matrix, so k is bounded
WINDOWED_ABOVE = 8  # epochs in one search past which the exact kind masks pairs by time in one pass
_PREPARE_CHUNK = 1 << 16  # rows prepared at once (bounds the float64 temporary)


@attrs.frozen
class Neighbors:
    """Answers of a search: per query, the keys nearest first, and their distances (q x k, float64;
    `inf` pads a query that found fewer than k)."""

    keys: tuple[tuple, ...]
    distances: np.ndarray = attrs.field(eq=False)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


class VectorIndex:
    """A nearest-neighbour index of `dim`-dimensional float32 vectors.

    `metric`: "euclidean", "manhattan", "inner_product", "cosine", "mahalanobis" (fitted from the first
    insert and frozen; or pass `fit_mahalanobis(...)`), or a `Metric` (`custom(fn)` for the exact kind).
    `kind`: "exact" or "hnsw".  `metadata`: names of columns a filter can test.  `memory_limit`: bytes
    (None: no limit); a change that would pass it raises `VectorMemoryError` and changes nothing.
    """

    def __init__(self, dim: int, metric: str | Metric = "euclidean", kind: str = "exact", *,
                 hnsw_params: HnswParams | None = None, metadata: tuple[str, ...] | list[str] = (),
                 memory_limit: int | None = None, exact_below: int = EXACT_BELOW):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise VectorError(f"dim must be a positive integer, got {dim!r}")
        if kind not in KINDS:
            raise VectorError(f"unknown index kind `{kind}`: use exact or hnsw")
        self.pending_fit = metric == "mahalanobis"
        self.metric = Metric(name="mahalanobis", kind="l2") if self.pending_fit else resolve(metric)
        if self.metric.is_custom and kind != "exact":
            raise VectorError(f"a custom distance function works with the exact kind only, not `{kind}`")
        if self.metric.whitening is not None and self.metric.whitening.shape != (dim, dim):
            raise VectorError(f"the mahalanobis whitening is {self.metric.whitening.shape}, the index has {dim} "
                              f"dimensions")
        names = tuple(metadata)
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise VectorError(f"metadata columns must be distinct non-empty names, got {list(names)}")
        if memory_limit is not None and (not isinstance(memory_limit, int) or memory_limit <= 0):
            raise VectorError(f"memory_limit must be a positive number of bytes, got {memory_limit!r}")
        self.dim, self.kind, self.memory_limit, self.exact_below = dim, kind, memory_limit, exact_below
        self.params = hnsw_params or HnswParams()
        self.rows = Rows(dim, names)
        self.key_type: type | None = None
        self.graph = None
        self._bitmap: tuple[int, np.ndarray] | None = None
        if kind == "hnsw" and not self.pending_fit:
            self.graph = hnsw.create(dim, self.params, self.metric.kind)

    # ---- sizes -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Keys with a live version (what a search with `at=None` can return)."""
        return self.rows.live

    def raw_bytes(self) -> int:
        """The raw float32 vectors held: every stored version, 4 bytes per component."""
        return self.rows.n * self.dim * 4

    def memory_bytes(self) -> int:
        """Bytes held: the row arrays at their capacity, the key table, and faiss's graph and copy."""
        return self.rows.nbytes() + (hnsw.nbytes(self.graph) if self.graph is not None else 0)

    # ---- changes -----------------------------------------------------------------------------------

    def insert(self, keys, vectors, times, metadata: dict | None = None) -> None:
        """Add a version of each key's vector, valid from its time (an update if the key exists)."""
        keys = self._keys(keys)
        count = len(keys)
        vecs = self._vectors(vectors, count, "vectors")
        when = self._times(times, count)
        meta = self._metadata(metadata, count)
        order = np.argsort(when, kind="stable")  # a batch is applied in time order, ties in given order
        if count and not np.all(order == np.arange(count)):
            keys = [keys[i] for i in order.tolist()]
            vecs, when = vecs[order], when[order]
            meta = {name: [values[i] for i in order.tolist()] for name, values in meta.items()}
        self._check_order(keys, when)
        new_keys = len({k for k in keys if k not in self.rows.key_index})
        extra = 0
        if self.kind == "hnsw":  # faiss's bytes now and an estimate of what the new rows add to them
            extra = count * hnsw.per_row_bytes(self.dim, self.params)
            extra += hnsw.nbytes(self.graph) if self.graph is not None else 0
        self._check_memory(self.rows.projected_bytes(count, new_keys) + extra, f"inserting {count:,} vectors")
        if self.pending_fit:
            self._fit(vecs)
        stored = np.empty((count, self.dim), dtype=np.float32)
        for s in range(0, count, _PREPARE_CHUNK):
            stored[s:s + _PREPARE_CHUNK] = self._prepare(vecs[s:s + _PREPARE_CHUNK])
        magnitudes = self.metric.magnitude(stored) if count else np.empty(0)
        codes = {name: self.rows.code(name, values) for name, values in meta.items()}
        if self.key_type is None and count:
            self.key_type = type(keys[0])
        self.rows.append(self.rows.key_ids(keys), stored, magnitudes, when, codes)
        if self.graph is not None:
            hnsw.add(self.graph, stored)

    def delete(self, keys, times) -> None:
        """End each key's live version at its time (a key without one is left as it is)."""
        keys = self._keys(keys)
        when = self._times(times, len(keys))
        order = np.argsort(when, kind="stable")
        keys, when = [keys[i] for i in order.tolist()], when[order]
        self._check_order(keys, when)
        known = [i for i, k in enumerate(keys) if k in self.rows.key_index]
        if known:
            kids = np.array([self.rows.key_index[keys[i]] for i in known], dtype=np.int64)
            self.rows.end(kids, when[known])

    def _fit(self, vecs: np.ndarray) -> None:
        if len(vecs) < 2:
            raise VectorError("a mahalanobis index is fitted from its first insert, which needs at least 2 vectors")
        self.metric = fit_mahalanobis(vecs)
        self.pending_fit = False
        if self.kind == "hnsw":
            self.graph = hnsw.create(self.dim, self.params, self.metric.kind)

    def _prepare(self, vecs: np.ndarray) -> np.ndarray:
        if self.metric.is_custom:
            return np.asarray(vecs, dtype=np.float32)
        return self.metric.prepare(vecs)

    def _check_memory(self, projected: int, what: str) -> None:
        if self.memory_limit is not None and projected > self.memory_limit:
            raise VectorMemoryError(f"{what} would take the vector index to {_mib(projected)}, over its memory "
                                    f"limit of {_mib(self.memory_limit)} (now {_mib(self.memory_bytes())} for "
                                    f"{self.rows.n:,} vectors of {self.dim} float32); raise memory_limit")

    def _check_order(self, keys: list, when: np.ndarray) -> None:
        table, last = self.rows.key_index, self.rows.last_time
        seen = set()
        for key, t in zip(keys, when.tolist()):
            if key in seen:
                continue
            seen.add(key)
            kid = table.get(key)
            if kid is not None and t < last[kid]:
                raise VectorError(f"key {key!r}: a change at {t} is older than its latest change at {int(last[kid])}; "
                                  f"a key's changes must come in time order")

    # ---- input checks ------------------------------------------------------------------------------

    def _keys(self, keys) -> list:
        if isinstance(keys, str | bytes) or not hasattr(keys, "__len__"):
            raise VectorError("keys must be a sequence of keys (a list), not a single value")
        out = keys.tolist() if isinstance(keys, np.ndarray) else list(keys)
        if any(isinstance(k, np.generic) for k in out):  # numpy scalars from a list: their Python values
            out = [k.item() if isinstance(k, np.integer | np.str_) else k for k in out]
        kinds = {type(k) for k in out}
        if not kinds <= {int, str}:
            bad = next(k for k in out if type(k) not in (int, str))
            raise VectorError(f"a key must be an int or a str, got {type(bad).__name__} {bad!r}")
        expected = {self.key_type} if self.key_type is not None else set()
        if len(kinds | expected) > 1:
            names = ", ".join(sorted(t.__name__ for t in kinds | expected))
            raise VectorError(f"keys of one index have one type: got {names}")
        return out

    def _vectors(self, vectors, count: int | None, what: str) -> np.ndarray:
        try:
            arr = np.asarray(vectors, dtype=np.float32 if not isinstance(vectors, np.ndarray) else None)
        except (TypeError, ValueError) as exc:
            raise VectorError(f"{what} must be numbers in a {self.dim}-column matrix ({exc})") from None
        if count == 0 and arr.size == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        if arr.dtype.kind not in "fiu":
            raise VectorError(f"{what} must be numbers, got dtype {arr.dtype}")
        if arr.ndim != 2 or arr.shape[1] != self.dim or (count is not None and arr.shape[0] != count):
            want = f"({count}, {self.dim})" if count is not None else f"(n, {self.dim})"
            raise VectorError(f"{what} must have shape {want}, got {arr.shape}")
        arr = arr.astype(np.float32, copy=False)
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            raise VectorError(f"{what}: row {int(np.argmin(finite))} has a NaN or infinite value")
        return arr

    def _times(self, times, count: int) -> np.ndarray:
        if isinstance(times, np.ndarray) and times.dtype.kind == "M":
            out = times.astype("datetime64[us]").astype(np.int64)
        elif isinstance(times, np.ndarray) and times.dtype.kind in "iu":
            out = times.astype(np.int64)
        else:
            if isinstance(times, str | bytes) or not hasattr(times, "__len__"):
                raise VectorError("times must be a sequence with one time per key")
            try:
                out = np.array([astra_times.micros(t, "time") for t in times], dtype=np.int64)
            except (TypeError, ValueError, OverflowError) as exc:
                raise VectorError(str(exc)) from None
        if out.shape != (count,):
            raise VectorError(f"times must have one time per key: {count} keys, {out.shape[0]} times")
        return out

    def _metadata(self, metadata: dict | None, count: int) -> dict[str, list]:
        metadata = metadata or {}
        unknown = set(metadata) - set(self.rows.codes)
        if unknown:
            raise VectorError(f"unknown metadata column `{sorted(unknown)[0]}`; this index has "
                              f"{', '.join(self.rows.codes) or 'none'}")
        out = {}
        for name in self.rows.codes:
            values = list(metadata.get(name, [None] * count))
            if len(values) != count:
                raise VectorError(f"metadata column `{name}` has {len(values)} values for {count} keys")
            for v in values:
                if not (v is None or isinstance(v, int | str | float)) or (isinstance(v, float) and v != v):
                    raise VectorError(f"metadata column `{name}`: a value must be a str, number, bool or None, "
                                      f"got {v!r}")
            out[name] = values
        return out

    # ---- queries -----------------------------------------------------------------------------------

    def search(self, queries, k: int = 10, at=None, filter: dict | None = None, *, stored: bool = False) -> Neighbors:
        """The k nearest keys to each query vector (one vector, or a q x dim matrix), among the versions
        visible at `at` (one time, or one per query; None: the latest versions) that pass `filter`
        ({column: value} or {column: [values]}, all columns must match).  `stored`: the queries are
        already in the stored form (rows of `rows.vectors`: unit under cosine, whitened under
        mahalanobis), as a query by a key's own vector is, so they are not prepared again."""
        rows, dist = self.search_rows(queries, k, at, filter, stored=stored)
        key_id, keys = self.rows.key_id, self.rows.keys
        found = tuple(tuple(keys[key_id[r]] for r in row if r >= 0) for row in rows.tolist())
        return Neighbors(keys=found, distances=dist)

    def search_rows(self, queries, k: int = 10, at=None, filter: dict | None = None, *,
                    stored: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """As `search`, as row numbers (q x k, -1 pads; `rows.key_id` maps them to key ids) and
        distances: the form that batch callers (a backfill) keep in arrays."""
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise VectorError(f"k must be an integer from 1 to {MAX_K:,}, got {k!r}")
        k = int(k)
        try:
            arr = np.asarray(queries) if not isinstance(queries, np.ndarray) else queries
        except (TypeError, ValueError) as exc:
            raise VectorError(f"queries must be one vector or a matrix of numbers ({exc})") from None
        q = self._vectors(arr[None, :] if arr.ndim == 1 else arr, None, "queries")
        chosen = self._filter(filter)
        groups = self._at_groups(at, len(q))
        rows = np.full((len(q), k), -1, dtype=np.int64)
        dist = np.full((len(q), k), np.inf)
        prepared = q if stored or self.pending_fit else self._prepare(q)
        if len(groups) > WINDOWED_ABOVE and self.graph is None and not self.metric.is_custom:
            groups = self._exact_windowed(prepared, k, self._times(at, len(q)), chosen, rows, dist)
        for when, members in groups:
            r, d = self._search_group(prepared[members], k, when, chosen)
            rows[members], dist[members] = r, d
        return rows, dist

    def _exact_windowed(self, q, k, times, chosen, rows, dist) -> list[tuple[int | None, np.ndarray]]:
        """Queries of many different epochs, exactly, in one pass over the rows: each (query, row)
        pair is masked by the row's validity at the query's time.  Fills `rows` and `dist` for the
        queries it answers; returns the groups left (a cosine zero query: see `_search_group`)."""
        n = self.rows.n
        qmag = self.metric.magnitude(q)
        normal = qmag > 0 if self.metric.kind == "cos" else np.ones(len(q), dtype=bool)
        sub = np.flatnonzero(normal)
        if n and len(sub):
            window = (self.rows.valid_from[:n], self.rows.valid_to[:n], times[sub])
            rows[sub], dist[sub] = scan.search(self.rows.vectors[:n], self.rows.magnitudes[:n], q[sub], qmag[sub], k,
                                               self.metric, self._rank, mask=chosen, window=window,
                                               magnitude_range=self.rows.magnitude_range)
        rest = np.flatnonzero(~normal)
        return [(int(times[j]), np.array([j])) for j in rest.tolist()] if n else []

    def _at_groups(self, at, count: int) -> list[tuple[int | None, np.ndarray]]:
        if at is None or isinstance(at, str) or not hasattr(at, "__len__"):
            when = None if at is None else self._times([at], 1)[0]
            return [(when, np.arange(count))]
        values = self._times(at, count)
        # queries between the same two consecutive change times see the same versions: one pass
        # over the rows per such epoch, not per distinct time (a spine has many distinct times)
        epoch = self.rows.epochs(values)
        order = np.argsort(epoch, kind="stable")
        cuts = np.flatnonzero(np.diff(epoch[order])) + 1
        return [(int(values[g[0]]), g) for g in np.split(order, cuts)] if count else []

    def _filter(self, filter: dict | None) -> np.ndarray | None:
        if not filter:
            return None
        if not isinstance(filter, dict):
            raise VectorError("a filter is a mapping {column: value or [values]}")
        mask = None
        for name, wanted in filter.items():
            if name not in self.rows.codes:
                raise VectorError(f"unknown filter column `{name}`; this index has "
                                  f"{', '.join(self.rows.codes) or 'no metadata columns'}")
            values = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
            match = self.rows.matching(name, values)
            mask = match if mask is None else mask & match
        return mask

    def _search_group(self, q: np.ndarray, k: int, at: int | None, chosen: np.ndarray | None):
        n = self.rows.n
        empty = (np.full((len(q), k), -1, dtype=np.int64), np.full((len(q), k), np.inf))
        if n == 0:
            return empty
        mask = self.rows.visible(at)
        if chosen is not None:
            mask = chosen if mask is None else mask & chosen
        count = n if mask is None else int(np.count_nonzero(mask))
        if count == 0:
            return empty
        rows, dist = empty
        qmag = self.metric.magnitude(q) if not self.metric.is_custom else np.zeros(len(q))
        normal = np.ones(len(q), dtype=bool)
        if self.metric.kind == "cos":  # a zero query is at distance 1 from every row: the smallest keys win
            normal = qmag > 0
            if not normal.all():  # the same answer for every zero query of the group
                best = self._smallest_keys(np.arange(n) if mask is None else np.flatnonzero(mask), k)
                zero = np.flatnonzero(~normal)
                rows[zero[:, None], np.arange(len(best))[None, :]] = best
                dist[zero[:, None], np.arange(len(best))[None, :]] = 1.0
        if normal.any():
            sub = np.flatnonzero(normal)
            if self.graph is not None and count > self.exact_below:
                r, d = self._hnsw(q[sub], k, mask if count < n else None, count, at is None and chosen is None)
            else:
                r, d = self._exact(q[sub], qmag[sub], k, mask if count < n else None, count)
            rows[sub], dist[sub] = r, d
        return rows, dist

    def _exact(self, q, qmag, k, mask, count):
        n = self.rows.n
        subset = None
        if mask is not None and count * 2 < n:
            subset, mask = np.flatnonzero(mask), None  # few candidates: gather them instead of masking all
        return scan.search(self.rows.vectors[:n], self.rows.magnitudes[:n], q, qmag, k, self.metric,
                           self._rank, subset=subset, mask=mask, magnitude_range=self.rows.magnitude_range)

    def _hnsw(self, q, k, mask, count, latest: bool):
        packed = None
        if mask is not None and latest:  # the latest versions' bitmap is kept until the next change
            if self._bitmap is None or self._bitmap[0] != self.rows.changes:
                self._bitmap = (self.rows.changes, hnsw.pack(mask))
            packed = self._bitmap[1]
        # twice k candidates, re-ranked exactly: better recall at the k-th place, and ties there go by key
        ids = hnsw.search(self.graph, q, min(2 * k, count), self.params, mask, count, packed)
        pq, slot = np.nonzero(ids >= 0)
        pr = ids[pq, slot].astype(np.int64)
        return scan.finish(q, pq.astype(np.int64), pr, k, self.metric, self.rows.vectors, self._rank)

    def _rank(self, rows: np.ndarray) -> np.ndarray:
        """Rows' positions in the order of their keys (equal keys, equal ranks)."""
        kids = self.rows.key_id[rows]
        uniq, inverse = np.unique(kids, return_inverse=True)
        keys = self.rows.keys
        order = sorted(range(len(uniq)), key=lambda i: keys[uniq[i]])
        rank_of = np.empty(len(uniq), dtype=np.int64)
        rank_of[np.asarray(order, dtype=np.int64)] = np.arange(len(uniq))
        return rank_of[inverse]

    def _smallest_keys(self, candidates: np.ndarray, k: int) -> np.ndarray:
        keys, key_id = self.rows.keys, self.rows.key_id
        return np.asarray(heapq.nsmallest(k, candidates.tolist(), key=lambda r: keys[key_id[r]]), dtype=np.int64)


__all__ = ["EXACT_BELOW", "MAX_K", "HnswParams", "Neighbors", "VectorIndex", "metric"]
