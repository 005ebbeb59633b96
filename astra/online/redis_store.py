"""The online store on a shared Redis: rows written once, visible to every replica.

    store = RedisStore(plan, "redis://127.0.0.1:6379/0", allowed_lateness=60_000_000)
    store.materialize("data")           # once per namespace: the sources' offline files
    store.push("transactions", rows)    # any replica; every other one sees it at once
    store.get("fraud_model@v1", [{"user_id": 1}], at=t).rows()

Redis holds, per (source, entity key), the entity's raw rows: each push batch appends one packed
columnar chunk per entity (one command per entity, pipelined), in a sorted set scored by the
chunk's newest event time so that rows no window can reach are trimmed on the next write.  The
watermark, the eviction cutoffs (hence the horizon) and a push sequence live in one meta hash.
A `get` fetches the requested entities' chunks and the meta hash in one pipelined round trip,
loads them into fresh tables of the embedded store's layout and answers with the embedded store's
compiled plans: there is one implementation of every aggregation, and the same rows give the
same bits.  Tables with lifetime aggregations also keep per entity the running state of the rows
below a cutoff (`astra.online.redis_state`), so a read fetches that state and the rows since,
not the entity's whole history.  Design and limits: docs/online.md ("Redis store").
"""

from __future__ import annotations

import contextlib
import os
import struct
import time as _time
from pathlib import Path

import numpy as np
import polars as pl

from astra.online import ingest, redis_state
from astra.online.arrays import count_before
from astra.online.errors import FutureRowError, LateRowError, OnlineError
from astra.online.layout import plan_layout
from astra.online.lookup import Lookup, key_tuples
from astra.online.redis_cache import EntityTables
from astra.online.redis_indexes import RedisIndexes
from astra.online.redis_layout import (  # parse_url: the CLI imports it from here
    _ADVANCE,
    _APPEND,
    _FETCH,
    _HEAD,
    _REGISTER,
    _Storage,
    canonical_key,
    parse_url,
)
from astra.online.result import Result
from astra.online.store import INT64_MAX, PushReport, Store, drop_future, iso, new_table
from astra.ops.registry import Vec
from astra.plan import ir
from astra.row_counts import SourceRows
from astra.times import query_times

VERSION = b":v"  # after an entity's row key: the key of its version (`_APPEND`)
WRITE_BACK_ROWS = 32  # a read writes an entity's state back once it spares later reads this many rows
RECENT = 0.05  # s: `watermark` reuses the meta hash read this recently (by the same request)
EXACT = 2**53  # times and their arithmetic are exact in Redis's Lua numbers (doubles) within this
class StoreUnavailable(OnlineError):
    """The shared store cannot be reached (down, unreachable, or timed out)."""


class _Snapshot(Store):
    """The embedded store's query path over tables loaded for one request."""

    horizon = None  # set per request from the shared cutoffs


class RedisStore:
    """The embedded store's answers over rows kept in a shared Redis (see the module doc)."""

    def __init__(self, plan: ir.Plan, url: str, allowed_lateness: int = 0, services: list[str] | None = None, *,
                 max_future: int | None = None, horizon_lag: int = 0, clock=None, prefix: str = "astra",
                 timeout: float = 2.0, ttl_grace: int | None = None, client=None):
        """`url`: redis://host:port/db.  `prefix`: the namespace of this project's keys.  `timeout`
        (s) bounds every socket operation, so a lost Redis fails a call instead of hanging it.
        `ttl_grace` (µs): an entity's rows also expire (Redis TTL) once the wall clock is this much
        past its newest row plus the retention (None: the retention again); rows whose expiry
        would already be past get no TTL (historical data is trimmed by event time only)."""
        import redis

        if not prefix or any(ch in prefix for ch in "{}: "):
            raise ValueError(f"store prefix {prefix!r}: use letters, digits, '-', '_' or '.'")
        self.local = Store(plan, allowed_lateness, services, max_future=max_future, horizon_lag=horizon_lag,
                           clock=clock)
        self.plan, self.services, self.prefix, self.ttl_grace = plan, self.local.services, prefix, ttl_grace
        self.meta_key = f"{prefix}:meta:{{{prefix}}}".encode()
        self.seq_key = f"{prefix}:seq:{{{prefix}}}".encode()
        full: dict[tuple, list] = {}
        for s in plan_layout(plan, None).tables:
            full.setdefault((s.source.name, s.key.columns), []).append(s)
        self.storage = {k: _Storage(prefix, plan.source(k[0]), k[1], v) for k, v in full.items()}
        self._suffixes: dict[tuple[int, str], bytes] = {}
        self._registered: tuple = ()  # the cutoff fields this process registered (see _REGISTRY)
        self.states_written = 0  # states this process wrote back (folded further than Redis had them)
        self.last_fetch_bytes = 0  # bytes of states and rows the latest get fetched (for measurements)
        if client is None:
            parse_url(url)
            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                          retry_on_timeout=False)
        self.redis, self.url = client, url
        self._seen: tuple[float, dict] = (-RECENT, {})
        try:
            self.redis.ping()
            self._append = self.redis.register_script(_APPEND)
            self._advance = self.redis.register_script(_ADVANCE)
            self._register = self.redis.register_script(_REGISTER)
            self._fetch = self.redis.register_script(_FETCH)
            self._set_newer = self.redis.register_script(redis_state.SET_NEWER)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis at {url} is unavailable: {exc}") from None
        self.indexes = RedisIndexes(self, kept=self.services is None)  # vector indexes, fed from a shared log
        self.entity_tables = EntityTables()  # single-entity reads: tables kept between reads, by version

    # ------------------------------------------------------------------ configuration, as Store has it
    @property
    def allowed_lateness(self) -> int:
        return self.local.allowed_lateness

    @property
    def max_future(self) -> int | None:
        return self.local.max_future

    @max_future.setter
    def max_future(self, v: int | None) -> None:
        self.local.max_future = v

    @property
    def horizon_lag(self) -> int:
        return self.local.horizon_lag

    @horizon_lag.setter
    def horizon_lag(self, v: int) -> None:
        self.local.horizon_lag = int(v)

    @property
    def clock(self):
        return self.local.clock

    @clock.setter
    def clock(self, f) -> None:
        self.local.clock = f

    @property
    def specs(self):
        return self.local.specs

    @property
    def _compiled(self):
        return self.local._compiled

    def _call(self, f):
        import redis

        try:
            return f()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis at {self.url} is unavailable: {exc}") from None

    # ------------------------------------------------------------------ shared state
    def _meta(self) -> dict[str, int]:
        meta = _parse_meta(self._call(lambda: self.redis.hgetall(self.meta_key)).items())
        self._seen = (_time.monotonic(), meta)
        return meta

    def _recent_meta(self) -> dict[str, int]:
        """The meta hash as the latest read saw it when that was under `RECENT` s ago (an answer
        reports the watermark its own read saw, without a second round trip), else read again."""
        at, meta = self._seen
        return meta if _time.monotonic() - at < RECENT else self._meta()

    def _cut_field(self, spec) -> tuple[str, int, int]:
        """A table's cutoff field in the meta hash, its K (watermark - K is the cutoff) and step."""
        k = spec.evict_window + self.allowed_lateness + self.horizon_lag
        return f"cut:{spec.source.name}:{','.join(spec.key.columns)}:{k}", k, max(k // 8, 1)

    def _cuts(self, source: str) -> list:
        """This store's (field, K, step) of the evicting tables of `source`, flattened."""
        return [x for spec in self.local.specs if spec.source.name == source and spec.evict_window is not None
                for x in self._cut_field(spec)]

    def _register_cuts(self) -> None:
        """Register this store's cutoffs in the namespace (once, and again after the horizon lag
        renamed them), so that pushes through replicas serving other services move them too."""
        fields = tuple(self._cut_field(s)[0] for s in self.local.specs if s.evict_window is not None)
        if fields == self._registered:
            return
        pipe = self.redis.pipeline(transaction=False)
        for source in dict.fromkeys(s.source.name for s in self.local.specs):
            cuts = self._cuts(source)
            if cuts:
                self._register(keys=[self.meta_key], args=[source, *cuts], client=pipe)
        self._call(pipe.execute)
        self._registered = fields

    def _state_suffix(self, ti: int) -> bytes | None:
        """The suffix of table ti's state keys (None: the table keeps no lifetime state); named by
        its cutoff field, which a changed horizon lag renames."""
        spec = self.local.specs[ti]
        if not redis_state.stateful(spec):
            return None
        field = self._cut_field(spec)[0]
        got = self._suffixes.get((ti, field))
        if got is None:
            got = self._suffixes[(ti, field)] = redis_state.suffix(spec, field)
        return got

    def _horizon(self, meta: dict[str, int]) -> int | None:
        hs = []
        for spec in self.local.specs:
            if spec.evict_window is None:
                continue
            f, _, _ = self._cut_field(spec)
            if f in meta:
                hs.append(meta[f] + spec.evict_window)
        return max(hs) if hs else None

    @property
    def horizon(self) -> int | None:
        """The earliest query time answered exactly, from the cutoffs shared in Redis."""
        return self._horizon(self._meta())

    @property
    def watermark(self) -> dict[str, int]:
        """Per source, the latest event time any replica stored."""
        return {k[3:]: v for k, v in self._recent_meta().items() if k.startswith("wm:")}

    def is_empty(self) -> bool:
        """No source was materialized or pushed into this namespace yet."""
        # a watermark, not the meta hash: a reader registers its cutoffs there before any row
        return not any(k.startswith(b"wm:") for k in self._call(lambda: self.redis.hkeys(self.meta_key)))

    # ------------------------------------------------------------------ ingestion
    def push(self, source: str, rows: list[dict] | pl.DataFrame, on_late: str = "raise",
             admitted=None) -> PushReport:
        """As `Store.push`: too-late rows (against the shared watermark) and rows from the future
        raise, or with on_late="report" are left out and reported; the rest is stored once.
        `admitted(report)` is called, as by `Store.push`, once the rows to store are known."""
        src = self.local._source(source)
        times, cols = ingest.from_frame(src, rows) if isinstance(rows, pl.DataFrame) else ingest.from_dicts(src, rows)
        _exact(src, times)
        rejected: list[tuple[int, int, int]] = []
        times, cols, future, index = drop_future(src, times, cols, self.max_future, self.clock, on_late)
        wm = self._call(lambda: self.redis.hget(self.meta_key, f"wm:{source}")) if len(times) else None
        if wm is not None:
            bound = int(wm) - self.allowed_lateness
            late = np.flatnonzero(times < bound)
            if len(late):
                rejected = [(int(j if index is None else index[j]), int(times[j]), bound) for j in late]
                if on_late != "report":
                    raise LateRowError(source, rejected)
                keep = times >= bound
                times, cols = times[keep], {c: Vec(v.values[keep], v.valid[keep]) for c, v in cols.items()}
        report = PushReport(len(times), rejected, future)
        if admitted is not None:
            admitted(report)
        if len(times):
            self._store(src, times, cols, None if wm is None else int(wm))
        return report

    def _store(self, src: ir.Source, times: np.ndarray, cols: dict[str, Vec], wm: int | None,
               batch: int = 2000) -> None:
        """Append the rows to every entity they belong to and advance the shared watermark and
        cutoffs; trims with the watermark before this batch (keeping more is always safe)."""
        n = len(times)
        seq = self._call(lambda: self.redis.incrby(self.seq_key, n)) - n
        now_ms = _time.time_ns() // 1_000_000
        pipe = self.redis.pipeline(transaction=False)
        queued = 0
        for (name, key), st in self.storage.items():
            if name != src.name:
                continue
            ok = np.ones(n, bool)
            for c in key:
                ok &= cols[c].valid
            idx = np.flatnonzero(ok)
            if not len(idx):
                continue
            groups: dict = {}
            if len(key) == 1:
                for j, k in zip(idx.tolist(), cols[key[0]].values[idx].tolist()):
                    groups.setdefault(k, []).append(j)
            else:
                for j, k in zip(idx.tolist(), zip(*(cols[c].values[idx].tolist() for c in key))):
                    groups.setdefault(k, []).append(j)
            retention = st.window + self.allowed_lateness + self.horizon_lag
            trim = "" if st.keep_all or wm is None else str(wm - retention - max(retention // 8, 1))
            grace = retention if self.ttl_grace is None else self.ttl_grace
            for k, rows in groups.items():
                ix = np.asarray(rows, np.int64)
                newest = int(times[ix].max())
                expire = 0
                if not st.keep_all:
                    at_ms = (newest + retention + max(retention // 8, 1) + grace) // 1000
                    expire = at_ms if at_ms > now_ms else 0
                member = struct.pack(">Q", seq + rows[0]) + st.encode(times, cols, ix)
                name = st.name(k)
                self._append(keys=[name, name + VERSION], args=[newest, member, trim, int(st.keep_last), expire,
                                                                seq + rows[0]], client=pipe)
                queued += 1
                if queued >= batch:
                    self._call(pipe.execute)
                    queued = 0
        self.indexes.append(src, times, cols, pipe)
        # the namespace's identity: a new one after a clear or a flush, whose versions start over
        pipe.hsetnx(self.meta_key, "ns", os.urandom(8).hex())
        self._advance(keys=[self.meta_key], args=[src.name, int(times.max()), *self._cuts(src.name)], client=pipe)
        self._call(pipe.execute)

    def materialize(self, data_root: str | Path, until: int | None = None) -> dict[str, SourceRows]:
        """Load every source's offline file into Redis (rows with time < `until`); refuses a
        namespace that already holds rows (they would be stored twice)."""
        if not self.is_empty():
            raise OnlineError(f"Redis namespace `{self.prefix}` at {self.url} already holds rows; serve it as it "
                              f"is, or delete its keys (`{self.prefix}:*`, e.g. RedisStore.clear) before "
                              f"materializing again")
        claim = f"{self.prefix}:materializing:{{{self.prefix}}}"
        if not self._call(lambda: self.redis.set(claim, 1, nx=True, ex=3600)):
            raise OnlineError(f"another process is materializing Redis namespace `{self.prefix}` at {self.url}")
        try:
            return self._materialize(data_root, until)
        finally:
            self._call(lambda: self.redis.delete(claim))

    def _materialize(self, data_root: str | Path, until: int | None) -> dict[str, SourceRows]:
        counts = {}
        for src in self.plan.sources:
            keys = [k for (name, k) in self.storage if name == src.name]
            if not keys and not self.indexes.reads(src.name):
                continue
            times, cols, counts[src.name] = ingest.read_source(src, data_root, {c for c, _ in src.columns},
                                                               {c for k in keys for c in k}
                                                               | self.indexes.key_columns(src.name))
            if self.max_future is not None and len(times):
                limit = min(self.clock() + self.max_future, INT64_MAX)
                ahead = np.flatnonzero(times > limit)
                if len(ahead):
                    raise FutureRowError(src.name, [(int(j), int(times[j]), limit) for j in ahead], (
                        f"source `{src.name}` under {data_root}: {len(ahead)} row(s) are later than the clock plus "
                        f"max_future ({iso(limit)}), the first at {iso(int(times[ahead].min()))}"))
            if until is not None:
                keep = times < until
                times, cols = times[keep], {c: Vec(v.values[keep], v.valid[keep]) for c, v in cols.items()}
            if len(times):
                _exact(src, times)
                self._store(src, times, cols, None)
        return counts

    def clear(self) -> int:
        """Delete every key of this namespace (SCAN, so Redis keeps serving); returns how many."""
        gone = 0
        for pattern in (f"{self.prefix}:r:*", f"{self.prefix}:ix:*", f"{self.prefix}:meta:*", f"{self.prefix}:seq:*",
                        f"{self.prefix}:materializing:*"):
            batch = []
            for k in self._call(lambda p=pattern: list(self.redis.scan_iter(match=p, count=1000))):
                batch.append(k)
                if len(batch) >= 1000:
                    gone += self._call(lambda b=batch: self.redis.delete(*b))
                    batch = []
            if batch:
                gone += self._call(lambda b=batch: self.redis.delete(*b))
        return gone

    # ------------------------------------------------------------------ queries
    def get(self, service: str, entities: list[dict], at=None, request=None, validity: bool = False):
        """As `Store.get`: the `Lookup` built from a service name and entity dicts, answered."""
        local = self.local
        compiled = local._compiled.get(service) or local._compile(service)
        names = local._key_names[compiled.service.id]
        return self.lookup(Lookup(compiled.service, names, key_tuples(entities, names, service), query_times(at),
                                  request, validity))

    def lookup(self, q: Lookup) -> Result:
        """As `Store.lookup`, over the requested entities' rows (and lifetime states) read from
        Redis in one round trip."""
        local = self.local
        compiled = local._compiled.get(q.service.id) or local._compile(q.service.id)
        self._register_cuts()
        reads = []  # (table index, storage, canonical keys, row keys, state suffix)
        names: dict[bytes, int] = {}
        states: dict[bytes, bytes] = {}  # row key -> its state key (stateful tables)
        for ti in compiled.tables:
            spec = local.specs[ti]
            st = self.storage[(spec.source.name, spec.key.columns)]
            enames = [k for k, _ in spec.entity.keys]
            try:
                pos = [q.key_names.index(k) for k in enames]
            except ValueError:
                raise KeyError(f"entity `{spec.entity.name}` needs keys {enames}; the query's keys are "
                               f"{list(q.key_names)}") from None
            keys = [canonical_key([k[p] for p in pos]) for k in q.keys]
            knames = [None if k is None else st.name(k) for k in keys]
            sfx = self._state_suffix(ti)
            for kn in knames:
                if kn is not None:
                    names.setdefault(kn, len(names))
                    if sfx is not None:
                        states[kn] = kn + sfx
            reads.append((ti, st, keys, knames, sfx))
        # one entity (the hot path): per row key, the tables an earlier read loaded, used while the
        # key's version (checked in the same round trip) and the cutoffs they were evicted to hold
        single = len(q.keys) == 1
        held = {kn: h for kn in names if (h := self.entity_tables.get(kn)) is not None} if single else {}
        rows, meta = self._fetch_rows(names, states, {kn: h[0] for kn, h in held.items()})
        kept = self._held_tables(reads, rows, held, meta) if held else {}
        unsent = [ti for ti, _, _, knames, _ in reads
                  if ti not in kept and knames[0] is not None and rows[knames[0]][1] is None]
        if unsent:  # a current key whose held tables do not fit (a cutoff moved since): fetch its rows again
            rows, meta = self._fetch_rows(names, states, {})
            kept = {}
        snap = _Snapshot.__new__(_Snapshot)
        snap.__dict__.update(local.__dict__)
        snap.tables = list(local.tables)  # empty tables: those this service does not read stay so
        snap.horizon = self._horizon(meta)
        write_back = []
        for ti, st, keys, knames, sfx in reads:
            if ti in kept:
                snap.tables[ti] = kept[ti]
                continue
            tb = snap.tables[ti] = new_table(local.specs[ti])
            write_back += self._load(tb, local.specs[ti], st, keys, knames, sfx, rows, meta)
            if single and knames[0] is not None:
                self.entity_tables.put(knames[0], rows[knames[0]][0], ti, (self._cut_tag(ti, meta), tb))
        answer = snap.lookup(q)
        if write_back:  # states folded further than Redis holds them: every later read starts there
            import redis

            pipe = self.redis.pipeline(transaction=False)
            for key, cut, blob in write_back:
                self._set_newer(keys=[key], args=[cut, blob], client=pipe)
            with contextlib.suppress(redis.RedisError):  # best effort (a read-only replica...): a later read writes it
                self.states_written += sum(pipe.execute())
        return answer

    def _fetch_rows(self, names: dict[bytes, int], states: dict[bytes, bytes], held: dict[bytes, bytes]
                    ) -> tuple[dict[bytes, tuple], dict]:
        """One round trip: the meta hash and, per row key, (version, state blob, chunks), or
        (version, None, None) when `held[key]` (the version this replica holds) is current."""
        if not names:
            meta = _parse_meta(self._call(lambda: self.redis.hgetall(self.meta_key)).items())
            self._seen = (_time.monotonic(), meta)
            return {}, meta
        keys: list[bytes] = [self.meta_key]
        args: list = []
        for kn in names:
            keys += [kn, kn + VERSION]
            if kn in states:
                keys.append(states[kn])
            args += [1 if kn in states else 0, held.get(kn, b"")]
        got = self._call(lambda: self._fetch(keys=keys, args=args))
        meta = _parse_meta(_pairs(got[0]))
        self._seen = (_time.monotonic(), meta)
        out, at, fetched = {}, 1, 0
        for kn in names:
            version = got[at]
            if got[at + 1] == 0:
                out[kn], at = (version, None, None), at + 2
            else:
                out[kn], at = (version, got[at + 1], got[at + 2]), at + 3
                fetched += len(got[at - 2]) + sum(map(len, got[at - 1]))
        self.last_fetch_bytes = fetched
        return out, meta

    def _cut_tag(self, ti: int, meta: dict) -> tuple | None:
        """What of the meta hash a loaded table depends on: the namespace's identity (versions are
        unique within one), its cutoff and their history."""
        spec = self.local.specs[ti]
        if spec.evict_window is None:
            return meta.get("ns"), None, None
        field = self._cut_field(spec)[0]
        return meta.get("ns"), meta.get(field), meta.get("h" + field)

    def _held_tables(self, reads: list, rows: dict, held: dict, meta: dict) -> dict:
        """Per table of a single-entity read, the table held for its key when the key's version
        is current and the table was evicted to the cutoffs `meta` has now."""
        out = {}
        for ti, _, _, knames, _ in reads:
            kn = knames[0]
            if kn is None or kn not in held or rows[kn][1] is not None:
                continue
            entry = held[kn][1].get(ti)
            if entry is not None and entry[0] == self._cut_tag(ti, meta):
                out[ti] = entry[1]
        return out

    def _load(self, tb, spec, st: _Storage, keys: list, knames: list, sfx: bytes | None,
              rows: dict[bytes, tuple], meta: dict) -> list[tuple[bytes, int, bytes]]:
        """Load one table of a read: each entity's state and rows, evicted to the shared cutoff
        as the embedded store evicted (so lifetime aggregations fold the same rows into the same
        running state); returns the states to write back (key, cutoff, value)."""
        members, owners, counts, froms = [], [], [], []
        parsed = []  # (key, row key, (cutoff, slot values))
        seen = set()
        for k, kn in zip(keys, knames):
            if kn is None or kn in seen:
                continue
            seen.add(kn)
            _, blob, chunks = rows[kn]
            try:
                state = redis_state.parse(blob) if blob else None
            except (ValueError, KeyError, TypeError):
                raise OnlineError(f"Redis key {(kn + sfx).decode(errors='replace')} does not hold a state this "
                                  f"version wrote; delete it (the rows are kept, a read writes it again)") from None
            if state is not None:
                parsed.append((k, kn, state))
            if chunks:
                chunks = sorted(chunks)  # push order: the big-endian sequence prefix
                members += chunks
                owners.append(k)
                counts.append(sum(_HEAD.unpack_from(m, 8)[0] for m in chunks))
                froms.append(state[0] if state is not None else -INT64_MAX - 1)
        if not members and not parsed:
            return []
        if members:
            all_t, vecs = st.decode(members, skip=8)
            slots = np.repeat(tb.assign(owners), counts)
            if parsed:  # rows below an entity's state cutoff are in its state already
                keep = all_t >= np.repeat(np.asarray(froms, np.int64), counts)
                all_t, slots = all_t[keep], slots[keep]
                vecs = {c: Vec(v.values[keep], v.valid[keep]) for c, v in vecs.items()}
            vecs = {c: vecs[c] for c in tb.columns}
        else:
            all_t = np.zeros(0, np.int64)
        state_slots = tb.assign([k for k, _, _ in parsed]) if parsed else np.zeros(0, np.int64)
        if len(all_t):  # else every entity is known by its state alone: empty segments
            tb.bulk_load(slots, tb.raw_rows(all_t, vecs))
        for slot, (_, _, (_, values)) in zip(state_slots.tolist(), parsed):
            redis_state.apply(tb, slot, values)
        if spec.evict_window is None:
            return []
        field = self._cut_field(spec)[0]
        if sfx is None:  # no lifetime state: one eviction to the shared cutoff gives the same rows
            cut = meta.get(field)
            if cut is not None:
                tb.evict(cut)
            return []
        steps = redis_state.history(meta, field)
        if not steps:
            return []
        since = min((c for _, _, (c, _) in parsed), default=None) if len(parsed) == len(seen) else None
        if since is not None:  # every entity has a state: the older steps are behind all of them
            tb.cutoff = since
        last = steps[-1]
        # per slot, the rows a state at `last` lets later reads skip: below it, a write pays off
        S = tb.slot
        below = count_before(tb.pos["time"], S["start"][:tb.n_slots].astype(np.int64),
                             S["len"][:tb.n_slots].astype(np.int64), np.full(tb.n_slots, last, np.int64))
        redis_state.replay(tb, steps)
        done = {kn: c for _, kn, (c, _) in parsed}
        loaded = set(owners) | {k for k, _, _ in parsed}
        out = []
        for k, kn in zip(keys, knames):
            if kn is None or k not in loaded or done.get(kn, -INT64_MAX - 1) >= last:
                continue
            done[kn] = last
            slot = int(tb.lookup([k])[0])
            if below[slot] >= WRITE_BACK_ROWS:
                out.append((kn + sfx, last, redis_state.encode(tb, slot, last)))
        return out

    def nbytes(self) -> int:
        """Bytes Redis reports in use (the whole database: other namespaces included)."""
        return int(self._call(lambda: self.redis.info("memory"))["used_memory"])

    def close(self) -> None:
        self.redis.close()


def _pairs(flat: list) -> list:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _parse_meta(pairs) -> dict:
    """The meta hash: watermarks and cutoffs as numbers; the rest (cutoff histories, the cutoff
    registry) as text."""
    out = {}
    for k, v in pairs:
        k = k.decode()
        out[k] = int(v) if k.startswith(("wm:", "cut:")) else v.decode()
    return out


def _exact(src: ir.Source, times: np.ndarray) -> None:
    """Times must be exact in Redis's Lua numbers (|t| < 2**53 µs: years 1685 to 2255)."""
    if len(times) and (int(times.max()) >= EXACT or int(times.min()) <= -EXACT):
        raise OnlineError(f"source `{src.name}`: a time is outside the years 1685..2255 the Redis store keeps exactly")
