"""The serving engine: checked requests in, store answers out; no HTTP here.

`Engine` owns the store, the push log, the cache and the metrics of one server process.  Reads
run on the event loop without awaiting in between.  A writing server runs pushes in a writer
thread (`astra.serve.writer`) that parks the loop while a push changes what reads see, so a push
is still atomic with respect to reads and to the cache.
"""

from __future__ import annotations

import sys
import time

import attrs
import numpy as np
import orjson

from astra.online import HorizonError, OnlineError, Store
from astra.online.lookup import Lookup
from astra.online.redis_store import StoreUnavailable
from astra.online.store import iso
from astra.plan import ir
from astra.serve.cache import FeatureCache
from astra.serve.config import ServeConfig
from astra.serve.json_floats import encode_floats, float_positions
from astra.serve.metrics import Metrics
from astra.serve.pushes import PushPath
from astra.serve.registry import registry
from astra.serve.validate import (
    ApiError,
    FeaturesQuery,
    ServiceInfo,
    features_query,
    service_info,
)
from astra.serve.wal import (
    BackgroundSnapshot,
    Behind,
    Follower,
    NoSnapshot,
    StateDir,
    WalError,
    recover,
    save_snapshot,
)
from astra.serve.writer import Writer


class SharedLog:
    """The push log of a server on a shared store: Redis holds every acknowledged row, so there is
    nothing to log, sync or snapshot here."""

    bytes = records = 0
    fsync = "shared"

    def append(self, source: str, rows: list) -> None:
        pass

    def close(self) -> None:
        if self.writer is not None:  # the pushes already queued finish first
            self.writer.stop()
        pass


READ_ONLY_START_WAIT = 600.0  # seconds a read-only server waits for its writer's first snapshot
RELOAD_GIVE_UP = 60.0  # seconds of failed reloads after which a read-only server stops answering


def now_us() -> int:
    """The wall clock in µs: every "now" of the engine and of its store (tests replace `time`)."""
    return time.time_ns() // 1000


@attrs.define
class Pending:
    """A `/v1/features` request between validation and its answer."""

    q: FeaturesQuery
    info: ServiceInfo
    at: int | list[int]
    out: list  # per entity: (values, indexes of the missing outputs), None until known
    miss: list[int]  # entities the cache did not answer
    keys: list[tuple] | None  # cache keys, when the cache is used
    epoch: int  # the engine's push count when the cache was read


class Engine(PushPath):
    """One process's view of the store, behind `features`, `push` and `registry`."""

    def __init__(self, plan: ir.Plan, config: ServeConfig, log=print):
        self.plan, self.config = plan, config
        self.by_key: dict[tuple[str, int], ServiceInfo] = {(s.name, s.version): service_info(plan, s)
                                                          for s in plan.services}
        self.by_id = {info.id: info for info in self.by_key.values()}
        self.sources = {s.name: s for s in plan.sources}
        # a pushed row of source s changes these entity keys (entity, the row's key columns)
        self.affects = {s.name: tuple(zip(s.entities, (k.columns for k in s.keys))) for s in plan.sources}
        self.max_staleness = {s.name: s.max_staleness for s in plan.sources if s.max_staleness is not None}
        self.stale_sources = {sid: sorted({s for ss in i.sources for s in ss if s in self.max_staleness})
                              for sid, i in self.by_id.items()}
        self._stale_memo: dict = {}
        self._missing_memo: dict = {}  # (service, missing output indexes, selection) -> names
        self.floats = {sid: float_positions(plan, i.service) for sid, i in self.by_id.items()}
        # "now" queries go as far back as the cache's rounding, rows as far ahead as --max-future: the
        # store keeps that much more, so a query for now is never before its horizon
        self.horizon_lag = config.max_future + round(config.cache_ttl * 1e6)
        self.features_meta = {sid: [{"name": n, "type": t} for n, t in zip(i.names, i.types)]
                              for sid, i in self.by_id.items()}
        # per service, the answer's constant fields, encoded once: spliced in front of the rest
        self.heads = {sid: orjson.dumps({"service": i.service.name, "version": i.service.version,
                                         "fingerprint": i.service.fingerprint, "features": self.features_meta[sid],
                                         **({"deprecated": i.deprecated} if i.deprecated else {})})[1:-1] + b","
                      for sid, i in self.by_id.items()}
        # with a shared store another server's push changes answers: no cache of them here
        self.cache = FeatureCache(0 if config.store else config.cache_size, int(config.cache_ttl * 1e6))
        self.metrics = Metrics(self)
        self.registry_body = orjson.dumps(registry(plan))
        self.failed: str | None = None
        self.last_snapshot = time.monotonic()
        self.background: BackgroundSnapshot | None = None
        self._reload_failing = 0.0
        self.pushes = 0
        self.writer: Writer | None = None  # pushes run on the event loop until `attach`
        self._dirty: tuple[str, list] | None = None  # the push whose rows are going in
        if config.store is not None:
            from astra.online.redis_store import RedisStore

            self.state, self._lock_fd, self.follower, self.recovery = None, None, None, None
            self.store = RedisStore(plan, config.store, config.allowed_lateness, max_future=config.max_future,
                                    horizon_lag=self.horizon_lag, clock=now_us)
            self.log = SharedLog()
            self.horizon = self.store.horizon
            log(f"astra serve: rows in the shared store at {config.store}")
            return
        self.state = StateDir(config.state)
        self.state.root.mkdir(parents=True, exist_ok=True)
        # a writer owns the directory; read-only servers take no lock and follow its log
        self._lock_fd = None if config.read_only else self.state.lock(exclusive=True)
        self.store, self.log, self.recovery = self._recover(wait=READ_ONLY_START_WAIT)
        self._clock_rules(self.store)
        self.follower = Follower(self.state, *self.recovery["position"]) if config.read_only else None
        log(f"astra serve: restored {self.state.root} (snapshot {self.recovery['snapshot']}, replayed "
            f"{self.recovery['records']} records / {self.recovery['rows']} rows"
            f"{', dropped a torn last record' if self.recovery['torn_bytes'] else ''}) in "
            f"{self.recovery['seconds']:.2f} s")
        if self.recovery["migration"] is not None:
            log(f"astra serve: migrated snapshot {self.recovery['snapshot']} to this project's plan: "
                f"{self.recovery['migration'].describe()}; replayed {self.recovery['rows']} logged rows into it"
                + ("" if config.read_only else f" (the state it came from is kept in {self.state.root}/pre-migration-"
                   f"{self.recovery['snapshot']:012d})"))
        self.metrics = Metrics(self)
        self.registry_body = orjson.dumps(registry(plan))
        self.failed: str | None = None
        self.horizon = self.store.horizon  # changes only when a push evicts rows
        self.last_snapshot = time.monotonic()
        self.background: BackgroundSnapshot | None = None  # a snapshot being written by a child
        self._reload_failing = 0.0  # since when a read-only server's reloads fail (0: they do not)
        self.pushes = 0  # changes of the store queries could see (see `refresh`)
        if self.log is not None and self.store.horizon_lag < self.horizon_lag:
            # a store saved before the margin existed, or under smaller limits: widen it, and snapshot
            # at once, so a replay after a crash evicts exactly as this process will
            log(f"astra serve: the store now keeps {self.horizon_lag / 1e6:g} s more than its windows and allowed "
                f"lateness (--max-future + --cache-ttl), so queries for now are never before its horizon")
            self.store.horizon_lag = self.horizon_lag
            self.snapshot(background=False)

    def _clock_rules(self, store: Store) -> None:
        """The engine's clock for `store`, and for a writer the --max-future rule (a follower applies
        what its writer accepted, whatever its own clock says; so does the replay of the log)."""
        store.clock = now_us
        if not self.config.read_only:
            store.max_future = self.config.max_future

    def _recover(self, wait: float = 0.0):
        """Snapshot + log replay.  A read-only server retries when a live writer's snapshot
        replaced the one it was reading, and waits up to `wait` seconds for a first snapshot."""
        cfg = self.config
        deadline, attempts, said = time.monotonic() + wait, 0, False
        while True:
            try:
                return recover(self.state, self.plan, self._bootstrap, read_only=cfg.read_only, fsync=cfg.fsync,
                               interval=cfg.fsync_interval, data_root=cfg.data_root)
            except NoSnapshot as exc:
                if time.monotonic() > deadline:
                    raise
                if not said:
                    print(f"astra serve: {exc}; waiting for it", file=sys.stderr, flush=True)
                    said = True
                time.sleep(0.5)
            except (WalError, OSError):
                attempts += 1
                if not cfg.read_only or attempts >= 5:
                    raise
                time.sleep(0.2)

    def _bootstrap(self) -> Store:
        store = Store(self.plan, self.config.allowed_lateness, max_future=self.config.max_future,
                      horizon_lag=self.horizon_lag, clock=now_us)
        if self.config.data_root is not None:
            store.materialize(self.config.data_root)  # refuses a file holding rows from the future
        store.max_future = None  # set again after the log is replayed (`_clock_rules`)
        return store

    def not_ready(self) -> str | None:
        """Why the server should not take traffic, or None: a storage failure, or a store that
        cannot answer a query for now (its horizon is after now, or a source's watermark is
        beyond the clock plus --max-future: rows from the future stored before the limit, or a
        clock that went back)."""
        if self.failed:
            return self.failed
        try:
            return self._not_ready()
        except StoreUnavailable as exc:
            return str(exc)

    def _not_ready(self) -> str | None:
        now = now_us()
        at = self.cache.bucket(now) if self.cache.enabled else now
        why = []
        h = self.store.horizon
        if h is not None and h > at:
            why.append(f"its horizon {iso(h)} is after now ({iso(at)}), so every query without `at` is refused")
        ahead = {s: w for s, w in self.store.watermark.items() if w > now + self.config.max_future}
        if ahead:
            why.append("the watermark of " + ", ".join(f"`{s}` is {iso(w)}" for s, w in sorted(ahead.items()))
                       + f", beyond the clock plus --max-future ({iso(now + self.config.max_future)})")
        if not why:
            return None
        return ("the store cannot answer queries for now: " + "; ".join(why) + " (rows from the future stored "
                "before --max-future refused them, or the clock went back); serve a --state rebuilt from the "
                "source files, or query with an explicit `at`")

    def _check_ok(self) -> None:
        if self.failed:
            raise ApiError(503, "store_failed", self.failed)

    # ------------------------------------------------------------------ /v1/features
    def features(self, doc: object) -> tuple[bytes, ServiceInfo]:
        """The answer to a parsed `/v1/features` body, evaluated at once (no coalescing)."""
        p = self.begin(doc)
        if p.miss:
            ents, at, req = self.miss_args(p)
            self.complete(p, self.evaluate(p.info, ents, at, req))
        return self.answer(p), p.info

    def begin(self, doc: object) -> Pending:
        """Validate, fix the query time, answer what the cache holds; the rest is `miss`."""
        self._check_ok()
        q = features_query(doc, self.by_key, self.config.max_batch)
        info, n = q.info, len(q.keys)
        cache = self.cache
        at = q.at
        use_cache = at is None and cache.enabled
        if at is None:
            now = now_us()
            at = cache.bucket(now) if use_cache else now
        h = self.horizon
        if h is not None and (min(at) if isinstance(at, list) else at) < h:
            t = min(at) if isinstance(at, list) else at
            where = "at"
            if isinstance(at, list):  # an entity's own time, or the top-level one it took
                j = at.index(t)
                where = f"entities[{j}].at" if "at" in doc["entities"][j] else "at"
            raise ApiError(409, "before_horizon", f"query time {t} is before the store's horizon {h}: rows needed "
                           f"for that time were evicted (the store keeps the longest window + --allowed-lateness + "
                           f"--max-future + --cache-ttl)", where, horizon=h)
        out: list = [None] * n
        keys = None
        if use_cache:
            rk = q.request_keys
            keys = [(info.id, q.keys[j], rk[j] if rk else None) for j in range(n)]
            miss = []
            for j in range(n):
                v = cache.get(keys[j], at)
                if v is None:
                    miss.append(j)
                else:
                    out[j] = v
        else:
            miss = list(range(n))
        return Pending(q, info, at, out, miss, keys, self.pushes)

    def refresh(self, p: Pending) -> None:
        """After a push since `begin`, evaluate every entity again, so one answer never mixes
        cached values from before the push with values computed after it."""
        if p.epoch != self.pushes:
            p.miss = list(range(len(p.out)))
            p.epoch = self.pushes

    def miss_args(self, p: Pending) -> tuple[list[tuple], object, object]:
        """The key tuples, times and request inputs of the cache misses, as a `Lookup` holds them."""
        q, miss = p.q, p.miss
        if len(miss) == len(q.keys):
            return q.keys, p.at, q.request
        req = q.request
        if isinstance(req, list):
            req = [req[j] for j in miss]
        at = [p.at[j] for j in miss] if isinstance(p.at, list) else p.at
        return [q.keys[j] for j in miss], at, req

    def evaluate(self, info: ServiceInfo, keys: list[tuple], at, req) -> list[tuple]:
        """`OnlineStore.lookup` -> per entity ((values tuple, indexes of its missing outputs), the
        last time that answer holds or None); store errors become 422s."""
        t0 = time.perf_counter()
        validity = self.cache.enabled
        try:
            res = self.store.lookup(Lookup(info.service, info.key_names, keys, at, req, validity))
        except HorizonError as exc:
            raise ApiError(409, "before_horizon", str(exc), "at", horizon=exc.horizon) from None
        except StoreUnavailable as exc:
            raise ApiError(503, "store_unavailable", str(exc)) from None
        except (OnlineError, KeyError, ValueError) as exc:
            raise ApiError(422, "invalid_query", str(exc).strip("'\"")) from None
        self.metrics.plan_eval.labels(info.id).observe(time.perf_counter() - t0)
        tuples = res.tuples()
        scalars, lists = self.floats[info.id]
        if scalars or lists:
            tuples = encode_floats(res, tuples, scalars, lists)
        answers = zip(tuples, res.missing_outputs())
        return list(zip(answers, res.valid_until)) if validity else [(a, None) for a in answers]

    def complete(self, p: Pending, values: list[tuple]) -> None:
        """Fill in the misses and cache them.  Must run in the same event-loop step as `evaluate`,
        so no push can fall between computing an answer and caching it."""
        info, q, cache = p.info, p.q, self.cache
        for j, (v, until) in zip(p.miss, values):
            p.out[j] = v
            if p.keys is not None:
                kv = q.keys[j]
                cache.put(p.keys[j], p.at, v, tuple((en, tuple(kv[i] for i in pos)) for en, pos in info.entity_pos),
                          until)

    def answer(self, p: Pending) -> bytes:
        """The encoded `/v1/features` answer of a completed request."""
        return self._answer(p.q, p.info, p.at, p.out)

    def _answer(self, q, info: ServiceInfo, at, out: list) -> bytes:
        sid = info.id
        sel = q.select
        results = []
        counts = self.metrics.missing[sid]  # missing output indexes -> entities answered so
        memo = self._missing_memo
        per_entity_at = isinstance(at, list)
        if not per_entity_at and sel is None:  # the common case: one time, every output
            stale, stale_mask = self._stale(info, at)
            stale_list = list(stale)
            for values, miss in out:
                if miss:
                    counts[miss] = counts.get(miss, 0) + 1
                    names = memo.get((sid, miss, None))
                    if names is None:
                        names = memo[sid, miss, None] = [info.names[i] for i in miss]
                else:
                    names = []
                results.append({"values": values, "missing": names, "stale": stale_list})
            if stale:
                self.metrics.stale[sid] += stale_mask * len(out)
        else:
            for j, (values, miss) in enumerate(out):
                stale, stale_mask = self._stale(info, at[j] if per_entity_at else at)
                if stale:
                    self.metrics.stale[sid] += stale_mask
                names = []
                if miss:
                    counts[miss] = counts.get(miss, 0) + 1
                    names = memo.get((sid, miss, sel))
                    if names is None:
                        keep = miss if sel is None else [i for i in miss if i in sel]
                        names = memo[sid, miss, sel] = [info.names[i] for i in keep]
                if sel is not None:
                    values = [values[i] for i in sel]
                    stale = [nm for nm in stale if nm in {info.names[i] for i in sel}]
                results.append({"values": values, "missing": names, "stale": list(stale)})
        wm = self.store.watermark
        if sel is None:  # the constant fields come pre-encoded
            return b"{" + self.heads[sid] + orjson.dumps({"at": at, "watermark": wm, "results": results})[1:]
        meta = self.features_meta[sid]
        body = {"service": info.service.name, "version": info.service.version,
                "fingerprint": info.service.fingerprint, "at": at, "watermark": wm,
                "features": [meta[i] for i in sel], "results": results}
        if info.deprecated:
            body["deprecated"] = info.deprecated
        return orjson.dumps(body)

    def _stale(self, info: ServiceInfo, t: int) -> tuple[tuple[str, ...], np.ndarray | None]:
        """The outputs of `info` that are stale at query time `t`, and their 0/1 mask.

        A source with `max_staleness` S is stale at t when the store has no row of it, or its
        watermark (latest event time stored) is before t - S; an output is stale when a source it
        reads (transitively) is."""
        wm = self.store.watermark
        bad = frozenset(s for s in self.stale_sources[info.id]
                        if s not in wm or wm[s] < t - self.max_staleness[s])
        if not bad:
            return (), None
        key = (info.id, bad)
        hit = self._stale_memo.get(key)
        if hit is None:
            names = tuple(nm for nm, ss in zip(info.names, info.sources) if bad.intersection(ss))
            hit = self._stale_memo[key] = (names, np.array([nm in names for nm in info.names], np.int64))
        return hit

    # ------------------------------------------------------------------ read-only servers: follow the writer
    def follow(self) -> int:
        """Apply what the writer logged since the last call; returns the records applied."""
        if self.follower is None or self.failed:
            return 0
        try:
            records = self.follower.poll()
        except Behind:  # a snapshot of the writer deleted the segment this server needed next
            self._reload()
            return 0
        for rec in records:
            src = rec["source"]
            try:
                self.store.push(src, rec["rows"], on_late="report")
            except Exception as exc:
                self.failed = (f"applying the writer's log to the store failed ({type(exc).__name__}); this "
                               f"read-only server stopped answering: restart it")
                print(f"astra serve: {self.failed}: {exc!r}", file=sys.stderr)
                return 0
            self._track_horizon()
            self.pushes += 1
            self._invalidate(src, rec["rows"])
        self.metrics.followed.inc(len(records))
        return len(records)

    def _reload(self) -> None:
        """Start over from the writer's newest snapshot (blocks requests while it loads).  One
        attempt per tick; after RELOAD_GIVE_UP seconds of failures the server stops answering
        rather than serve an ever older state."""
        try:
            store, _, stats = recover(self.state, self.plan, self._bootstrap, read_only=True,
                                      data_root=self.config.data_root)
        except (WalError, OSError) as exc:
            now = time.monotonic()
            self._reload_failing = self._reload_failing or now
            if now - self._reload_failing > RELOAD_GIVE_UP:
                self.failed = (f"this read-only server fell behind its writer and could not reload for "
                               f"{RELOAD_GIVE_UP:.0f} s ({exc}); restart it")
                print(f"astra serve: {self.failed}", file=sys.stderr)
            return
        self._reload_failing = 0.0
        self._clock_rules(store)
        self.store, self.horizon = store, store.horizon
        self.cache.clear()
        self.pushes += 1
        self.follower.close()
        self.follower = Follower(self.state, *stats["position"])
        self.metrics.reloads.inc()

    # ------------------------------------------------------------------ lifecycle
    def snapshot(self, background: bool = True) -> None:
        """Start a new log segment and save the store: in a forked child when `background` (one
        at a time; requests go on), else here, blocking (at shutdown, or where fork fails)."""
        if self.log is None or self.failed:
            return
        if self.background is not None:  # one in flight: wait for it rather than start another
            if not background:
                self._snapshot_done(self.background.poll(block=True))
            else:
                return
        t0 = time.perf_counter()
        try:
            n = self.log.rotate()
        except OSError as exc:
            self.failed = (f"starting a new push log segment failed ({exc.strerror}); the server stopped "
                           f"answering: restart it")
            print(f"astra serve: {self.failed}", file=sys.stderr)
            return
        self.last_snapshot = time.monotonic()
        if background:
            try:
                # forked with the event loop parked (in the writer thread): no query is halfway
                # through and holding a lock (a vector index's) that the child's save would wait on
                with self.store.lock:
                    self.background = BackgroundSnapshot(self.store, self.state, n)
                return
            except OSError as exc:  # no fork here (or no memory for one): block instead
                print(f"astra serve: background snapshot unavailable ({exc}); writing it in place", file=sys.stderr)
        save_snapshot(self.store, self.state, n)
        self.metrics.snapshots.observe(time.perf_counter() - t0)

    def _snapshot_done(self, ok: bool | None) -> None:
        if ok is None:
            return
        bg, self.background = self.background, None
        if ok:
            self.metrics.snapshots.observe(bg.seconds)
        else:  # nothing is lost: the previous snapshot and every segment after it are still there
            print(f"astra serve: the background snapshot snap-{bg.n} failed; the next one will retry",
                  file=sys.stderr)

    def attach(self, loop) -> None:
        """Serving on `loop`: a writing server on the embedded store runs pushes and periodic work
        in a writer thread from now on (`astra.serve.writer`); read-only servers and servers on a
        shared store keep them on the loop."""
        if self.log is None or self.config.store is not None or self.writer is not None:
            return
        self.writer = Writer(loop, self._published)
        self.store.lock = self.writer.pause

    async def tick_async(self) -> None:
        if self.writer is None:
            self.tick()
        else:
            await self.writer.run(self.tick)

    def tick(self) -> None:
        """Periodic work: fsync an "interval" log, snapshot when due; read-only: follow the log."""
        if self.follower is not None:
            self.follow()
            return
        if self.background is not None:  # reaped even after a failure
            self._snapshot_done(self.background.poll())
        if self.log is None or self.failed:
            return
        if self.log.fsync == "interval":
            self.log.sync()
        every = self.config.snapshot_interval
        if every > 0 and self.log.records and time.monotonic() - self.last_snapshot >= every:
            self.snapshot()

    def close(self) -> None:
        if self.writer is not None:  # the pushes already queued finish first
            self.writer.stop()
        if self.follower is not None:
            self.follower.close()
        if self.background is not None:
            self._snapshot_done(self.background.poll(block=True))
        if self.log is not None and not self.failed:
            if self.log.records:
                self.snapshot(background=False)
            self.log.close()
