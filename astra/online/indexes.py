"""The online store's vector indexes: one `astra.vectors.VectorIndex` per declared index version
(`name@vN`: versions of one index are kept side by side, each from the same source rows).

Each index holds, per key of its snapshot source, the versions of the key's vector: a row at time t
with a vector inserts a version valid from t (an update ends the key's previous version: a tombstone
then an insert); a row with a null vector ends the key's version at t (that is how a delete is
written: push the key with `embedding: null`).  The filter columns travel with each version.  The
index is fed by every ingest of its source (materialize, pushes, a log replayed at recovery) and
saved beside the store's tables, so a restart restores it as it was.

A key's changes must come in time order: a late row (allowed by the store's lateness) older than
the key's latest indexed change is left out of the index and counted in `late`; the tables still
store it.  Searches and changes take `lock`, since the index's arrays and faiss graph are not safe
to read while they grow.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import attrs
import numpy as np

from astra.online.errors import IndexNotBuilt
from astra.ops.registry import Vec
from astra.ops.vectors import unpack
from astra.plan import ir
from astra.plan.index_fit import needs_fit, unfitted_reason
from astra.vectors import HnswParams, Neighbors, VectorError, VectorIndex, VectorMemoryError, mahalanobis
from astra.vectors import load as load_index
from astra.vectors import save as save_index


class Indexes:
    """The declared indexes of a plan, built empty; `ingest` feeds them, `search` asks them."""

    def __init__(self, plan: ir.Plan, kept: bool = True, only: tuple[str, ...] | None = None):
        """`kept` False: none (a store built for some services keeps only what they read).
        `only`: these index versions (`name@vN`) alone."""
        self.plan = plan
        self.decls = {x.id: x for x in plan.indexes or () if only is None or x.id in only} if kept else {}
        self.late = {name: 0 for name in self.decls}
        self.built, broken = {}, {}
        for xid, x in self.decls.items():
            try:
                self.built[xid] = _empty(x)
            except VectorError as exc:  # a recorded covariance the metric cannot use (edited, or older)
                self.built[xid] = _empty(attrs.evolve(x, covariance=None))
                broken[xid] = f"index {xid}: its recorded fit cannot be used ({exc}); run astra fit again"
        # index versions that cannot answer, with why: restored from a state that could not give
        # all the rows they are built from (`astra.online.persist.rebuild`), or a mahalanobis index
        # without a fit (`astra.plan.index_fit`); they take no rows
        self.unbuilt: dict[str, str] = {xid: unfitted_reason(x) for xid, x in self.decls.items()
                                        if needs_fit(x) and x.covariance is None}
        self.unbuilt.update(broken)
        self.lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.decls)

    def columns(self, source: str) -> set[str]:
        """The columns of `source` the indexes read (its key, vector and filter columns)."""
        out: set[str] = set()
        for x in self.decls.values():
            if x.source == source:
                out |= {x.column, *x.filters, *key_columns(self.plan, x)}
        return out

    def key_columns(self, source: str) -> set[str]:
        return {c for x in self.decls.values() if x.source == source for c in key_columns(self.plan, x)}

    def ingest(self, source: str, times: np.ndarray, cols: dict[str, Vec], only: set[str] | None = None) -> None:
        """Apply stored rows of `source` (validated, in any order) to the indexes over it (`only`:
        to these index versions).  An index the rows would take past its memory limit is emptied
        and stops answering, saying why; the rows are stored for the features all the same."""
        for x in self.decls.values():
            if x.source == source and len(times) and x.id not in self.unbuilt and (only is None or x.id in only):
                self._apply(x, times, cols)

    def _apply(self, x: ir.VectorIndex, times: np.ndarray, cols: dict[str, Vec]) -> None:
        key_col, = key_columns(self.plan, x)
        keyv = cols[key_col]
        rows = np.flatnonzero(keyv.valid)  # a row without a key is no key's version
        rows = rows[np.argsort(times[rows], kind="stable")]
        index = self.built[x.id]
        keys = [_key(k) for k in keyv.values[rows].tolist()]
        when = times[rows].astype(np.int64)
        vec = cols[x.column]
        has = vec.valid[rows]
        with self.lock:
            last = {k: int(index.rows.last_time[kid]) for k in set(keys)
                    if (kid := index.rows.key_index.get(k)) is not None}
            keep = np.ones(len(rows), dtype=bool)
            for j, (k, t) in enumerate(zip(keys, when.tolist())):
                if t < last.get(k, t):
                    keep[j] = False
                else:
                    last[k] = t
            self.late[x.id] += int((~keep).sum())
            # one key may change several times in a batch: apply the changes in time order, runs of
            # inserts and of deletes alternating, so each key's versions end and begin in order
            order = np.flatnonzero(keep)
            start = 0
            try:
                while start < len(order):
                    end = start
                    while end < len(order) and has[order[end]] == has[order[start]]:
                        end += 1
                    run = order[start:end]
                    run_keys = [keys[j] for j in run.tolist()]
                    if has[order[start]]:
                        meta = {f: _values(cols[f], rows[run]) for f in x.filters}
                        index.insert(run_keys, unpack(vec.values[rows[run]]), when[run], metadata=meta)
                    else:
                        index.delete(run_keys, when[run])
                    start = end
            except VectorMemoryError as exc:  # under the lock: no search sees the batch half applied
                self.built[x.id] = _empty(x)  # give the memory back
                self.unbuilt[x.id] = (f"index {x.id} passed its memory limit and was emptied ({exc}); raise its "
                                      f"`memory_limit_mib` (a server restarted then rebuilds it from the source "
                                      f"files and the pushes its state keeps)")

    def search(self, xid: str, vector: np.ndarray, k: int, at: int | None, filter: dict | None,
               stored: bool = False) -> Neighbors:
        """`stored`: `vector` is in the index's stored form (from `vector_of`)."""
        with self.lock:  # a push emptying the index (its memory limit) cannot slip in between
            self._built(xid)
            return self.built[xid].search(vector, k, at=at, filter=filter, stored=stored)

    def vector_of(self, xid: str, key, at: int | None) -> np.ndarray | None:
        """The key's vector visible at `at` (None: its latest) in the stored form (search it with
        `stored=True`), or None when it has none then."""
        with self.lock:
            self._built(xid)
            found = vectors_at(self.built[xid], [key], None if at is None else np.array([at], np.int64))
        return found[0] if len(found) else None

    def _built(self, xid: str) -> None:
        if xid in self.unbuilt:
            raise IndexNotBuilt(self.unbuilt[xid])

    def nbytes(self) -> int:
        return sum(i.memory_bytes() for i in self.built.values())

    def save(self, directory: Path) -> list[str]:
        """Write each index into the store's (temporary) directory, with what was left out; the
        names of the files written."""
        if not self.decls:
            return []
        with self.lock:
            for xid, index in self.built.items():
                save_index(index, directory / index_file(xid))
            (directory / "indexes.json").write_text(json.dumps({"late": self.late, "unbuilt": self.unbuilt}))
        return [*(index_file(xid) for xid in self.built), "indexes.json"]

    def load(self, directory: Path, saved: ir.Plan | None = None) -> None:
        """Restore the indexes `save` wrote; the others stay empty (`astra.online.persist`
        rebuilds them).  With `saved`, the plan the state was saved for (a migration): only
        indexes declared the same way in both plans (same fingerprint) are restored."""
        same = None if saved is None else {x.id for x in saved.indexes or ()
                                           if x.id in self.decls and self.decls[x.id].fingerprint == x.fingerprint}
        meta = directory / "indexes.json"
        doc = json.loads(meta.read_text()) if meta.exists() else {}
        restored = [xid for xid in self.built
                    if (directory / index_file(xid)).exists() and (same is None or xid in same)]
        for xid in restored:
            self.built[xid] = load_index(directory / index_file(xid))
            if xid in doc.get("late", {}):
                self.late[xid] = doc["late"][xid]
            if xid in doc.get("unbuilt", {}):
                self.unbuilt[xid] = doc["unbuilt"][xid]


def vectors_at(index: VectorIndex, keys: list, at: np.ndarray | None) -> list[np.ndarray | None]:
    """Per key, its vector visible at its time (`at`: one time per key; None: the latest
    versions), or None when it has none then.  Vectors come in their stored form (unit length
    under cosine), which ranks like the vector pushed."""
    rows = index.rows
    kid = np.array([rows.key_index.get(k, -1) for k in keys], dtype=np.int64)
    if at is None:
        found = np.where(kid >= 0, rows.latest[np.maximum(kid, 0)], -1) if len(rows.latest) else np.full(len(kid), -1)
    else:
        found = rows.version_at(kid, at)
    return [np.array(rows.vectors[r], dtype=np.float32) if r >= 0 else None for r in found.tolist()]


def key_columns(plan: ir.Plan, x: ir.VectorIndex) -> tuple[str, ...]:
    """The source column holding the index's key (the checker allows one entity with one key)."""
    return plan.source(x.source).keys[0].columns


def index_file(xid: str) -> str:
    name, _, version = xid.partition("@")
    return f"index_{name}_{version}.npz"


def _empty(x: ir.VectorIndex) -> VectorIndex:
    params = HnswParams(**dict(x.hnsw)) if x.hnsw else None
    metric = x.metric
    if x.covariance is not None:  # the fit frozen into the plan, never refitted from the rows pushed
        metric = mahalanobis(np.array(x.covariance, dtype=np.float64).reshape(x.dim, x.dim))
    elif needs_fit(x):  # unfitted: never searched (`Indexes.unbuilt`); an exact index holds the place
        metric = "euclidean"
    return VectorIndex(x.dim, metric, x.kind, metadata=x.filters, hnsw_params=params, memory_limit=x.memory_limit)


def _key(k):
    return k.item() if isinstance(k, np.generic) else k


def _values(v: Vec, rows: np.ndarray) -> list:
    vals = v.values[rows].tolist()
    return [_key(a) if ok else None for a, ok in zip(vals, v.valid[rows].tolist())]


__all__ = ["Indexes", "VectorError", "key_columns"]
