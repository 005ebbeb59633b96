"""The vector indexes of the Redis store: a shared log of the indexed rows, an index per replica.

A nearest-neighbour index cannot be answered from a few Redis keys the way features are (a search
looks at every vector), so each replica keeps the declared indexes in process, exactly as the
embedded store keeps them (`astra.online.indexes`), and Redis keeps what they are built from:
per indexed source, a list of packed chunks of its rows (every column, in the Redis store's
record layout).  Every push and materialize through any replica appends its rows to that list
in the same pipeline as the rows themselves; each chunk carries its batch's id and its place in
the batch.  Before a search a replica reads the chunks it has not read yet and applies each
batch, as one embedded ingest, when its last chunk has arrived: in the list order of batches'
last chunks, the same for every replica (a big batch goes in several RPUSH commands, whose
chunks another server's push may come between).  Every replica therefore applies the same
changes, in the same batches and order, as an embedded store fed the same pushes: the same
versions, the same late rows left out, and for the hnsw kind the same faiss `add` calls.  A new
or restarted replica replays the whole log.

The log holds every column of the source, so an index version declared later over a source
already logged is built from the log like the others.  A source whose rows went into Redis before
any index read it has rows but no log: its indexes cannot be built, and a search says so
(`IndexLogMissing`) instead of answering from an empty index.
"""

from __future__ import annotations

import os
import struct
import threading

import numpy as np

from astra.online.errors import IndexNotBuilt
from astra.online.indexes import Indexes, key_columns
from astra.online.redis_layout import _Storage
from astra.ops.registry import Vec
from astra.plan import ir
from astra.vectors import Neighbors

CHUNK_ROWS = 20_000  # rows per list element: a materialize of millions stays in many modest values
PUSH_BYTES = 64 << 20  # chunks per RPUSH command up to about this size (Redis caps a client's query buffer)
_PART = struct.Struct(">8sII")  # a chunk's batch id and place in it: (id, index, count)


class IndexLogMissing(IndexNotBuilt):
    """The Redis namespace holds rows of an indexed source but no index log for it."""


class _Log:
    """One indexed source's list: its Redis key and the packed layout of its chunks."""

    def __init__(self, prefix: str, src: ir.Source):
        self.source = src.name
        self.storage = _Storage(prefix, src, (), ())  # every column: any index over the source reads it
        tag = self.storage.prefix.rstrip(":").rsplit(":", 1)[-1]  # the source schema's tag
        self.key = f"{prefix}:ix:{src.name}:{tag}:{{{prefix}}}".encode()  # the meta hash's slot


class RedisIndexes:
    """The declared indexes of a `RedisStore`'s plan, fed from the shared log (module doc)."""

    def __init__(self, store, kept: bool = True):
        """`kept` False (a store serving some services): no index here, but pushes through this
        store still go to the log, which the other servers' indexes read."""
        self.store, self.plan = store, store.plan
        self.local = Indexes(self.plan, kept)
        self.logs: dict[str, _Log] = {}
        for x in self.plan.indexes or ():
            if x.source not in self.logs:
                self.logs[x.source] = _Log(store.prefix, self.plan.source(x.source))
        self.applied = dict.fromkeys(self.logs, 0)  # chunks of each log read here
        self.pending: dict[str, dict[bytes, list[bytes]]] = {s: {} for s in self.logs}  # batches still arriving
        self._syncing = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.logs)

    @property
    def decls(self) -> dict[str, ir.VectorIndex]:
        return self.local.decls

    @property
    def late(self) -> dict[str, int]:
        return self.local.late

    def reads(self, source: str) -> bool:
        return source in self.logs

    def key_columns(self, source: str) -> set[str]:
        return self.local.key_columns(source)

    def append(self, src: ir.Source, times: np.ndarray, cols: dict[str, Vec], pipe) -> None:
        """Queue the rows on `pipe` (the push's own pipeline, before the watermark moves): chunks
        tagged with a fresh batch id and their place in the batch, in RPUSH commands of about
        `PUSH_BYTES` at most."""
        log = self.logs.get(src.name)
        if log is None or not len(times):
            return
        starts = range(0, len(times), CHUNK_ROWS)
        rows, batch = np.arange(len(times)), os.urandom(8)
        group: list[bytes] = []
        size = 0
        for j, lo in enumerate(starts):
            chunk = _PART.pack(batch, j, len(starts)) + log.storage.encode(times, cols, rows[lo:lo + CHUNK_ROWS])
            if group and size + len(chunk) > PUSH_BYTES:
                pipe.rpush(log.key, *group)
                group, size = [], 0
            group.append(chunk)
            size += len(chunk)
        pipe.rpush(log.key, *group)

    def sync(self) -> None:
        """Apply the batches any server appended since the last sync: one round trip (and the
        build of what they add)."""
        if not self.logs or not self.local.decls:
            return
        with self._syncing:
            while True:
                pipe = self.store.redis.pipeline(transaction=False)
                for source, log in self.logs.items():
                    pipe.llen(log.key)
                    pipe.lrange(log.key, self.applied[source], -1)
                pipe.hmget(self.store.meta_key, [f"wm:{s}" for s in self.logs])
                got = self.store._call(pipe.execute)
                stored = got.pop()
                bare = [s for j, (s, wm) in enumerate(zip(self.logs, stored)) if wm is not None and not got[2 * j]]
                if bare:
                    raise IndexLogMissing(
                        f"Redis namespace `{self.store.prefix}` holds rows of `{bare[0]}` stored before any vector "
                        f"index read it, so its indexes cannot be built; serve from an empty Redis database "
                        f"(another /db in --store) to materialize it again, or delete its keys (RedisStore.clear)")
                if all(got[2 * j] >= self.applied[s] for j, s in enumerate(self.logs)):
                    break
                # the namespace was cleared (and maybe materialized again): start over from its log
                self.local = Indexes(self.plan, bool(self.local.decls))
                self.applied = dict.fromkeys(self.logs, 0)
                self.pending = {s: {} for s in self.logs}
            for j, (source, log) in enumerate(self.logs.items()):
                pending = self.pending[source]
                for chunk in got[2 * j + 1]:
                    try:
                        batch, place, count = _PART.unpack_from(chunk)
                        parts = pending.setdefault(batch, [])
                        if not place < count or len(parts) != place:
                            raise ValueError(f"chunk {place} of {count} out of place")
                        parts.append(chunk)
                        if len(parts) == count:  # the batch is complete: one ingest, as the embedded store's
                            times, cols = log.storage.decode(pending.pop(batch), skip=_PART.size)
                            self.local.ingest(source, times, cols)
                    except (ValueError, TypeError, IndexError, struct.error) as exc:
                        raise IndexLogMissing(
                            f"Redis key {log.key.decode(errors='replace')} does not hold an index log this version "
                            f"wrote (element {self.applied[source]}: {exc}); delete it and materialize again "
                            f"into an empty database") from None
                    self.applied[source] += 1

    def search(self, xid: str, vector: np.ndarray, k: int, at: int | None, filter: dict | None,
               stored: bool = False) -> Neighbors:
        self.sync()
        return self.local.search(xid, vector, k, at, filter, stored)

    def vector_of(self, xid: str, key, at: int | None) -> np.ndarray | None:
        self.sync()
        return self.local.vector_of(xid, key, at)

    def nbytes(self) -> int:
        return self.local.nbytes()


__all__ = ["RedisIndexes", "key_columns"]
