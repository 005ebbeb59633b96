"""The embedded online store: incrementally maintained tables plus compiled service plans.

    store = Store(plan, allowed_lateness=60_000_000, services=["fraud_model@v1"])  # None: all
    store.materialize("data")                       # bulk bootstrap from the offline sources
    store.push("transactions", [{"user_id": 1, ...}])
    store.get("fraud_model@v1", [{"user_id": 1}], at=t).rows()
    store.lookup(Lookup(service, ("user_id",), [(1,)], at=t))   # what a server sends: typed, checked

Rows older than a source's watermark minus the allowed lateness are rejected (never dropped
silently); with `max_future`, so are rows later than the store's clock plus it, so one bad time
cannot move the watermark past now.  Rows older than the watermark - lateness - `horizon_lag` -
the longest window are evicted; the horizon is the earliest query time the retained rows (plus
running state) answer exactly.  A store built for some services keeps only the tables and
structures those services read.

Queries may run in threads beside a pushing one: a query holds `Store.lock` while it reads, a
push holds it only while its rows go in and while a rebuilt table (an eviction step, a
compaction) is swapped in, never while it is built, so a query sees the store before or after
them (`astra.online.compaction`).  A server replaces the lock with one that parks its event loop
instead (`astra.serve.writer`).  Pushes and `materialize` run one at a time (`Store.writing`);
`save` expects no push to run meanwhile.
"""

from __future__ import annotations

import threading
import time as _time
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from astra.online import ingest
from astra.online.codegen import compile_service, compile_where
from astra.online.errors import FutureRowError, HorizonError, LateRowError, UnknownServiceError
from astra.online.indexes import Indexes
from astra.online.layout import TableSpec, plan_layout
from astra.online.lookup import Lookup, key_tuples
from astra.online.request_inputs import request_rows, request_vecs, with_entity_keys
from astra.online.result import Missing, Result
from astra.online.single import Single
from astra.online.table import Input, Table
from astra.online.view import Query
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.dtypes import numpy_dtype
from astra.ops.registry import Vec
from astra.plan import ir
from astra.row_counts import SourceRows
from astra.times import query_times

INT64_MAX = 2**63 - 1
SMALL = 8  # batches up to this size run the single-entity plan per entity
FEW = 8  # pushes up to this many rows try appending row by row before the vectorised insert


@attrs.frozen
class PushReport:
    """What a push stored: `accepted` rows; too-late rows in `rejected` and rows from the future
    (later than the clock plus `max_future`) in `future`, as (batch index, time, bound) tuples."""

    accepted: int
    rejected: list[tuple[int, int, int]]
    future: list[tuple[int, int, int]] = attrs.Factory(list)


def wall_clock() -> int:
    """Now, in µs since the epoch: the default clock of a store."""
    return _time.time_ns() // 1000


def iso(us: int) -> str:
    """µs since the epoch as an ISO 8601 time (naive, UTC), for messages."""
    import datetime as dt

    try:
        return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(us))).isoformat()
    except OverflowError:
        return f"{int(us)} µs"


def new_table(spec: TableSpec) -> Table:
    src = spec.source
    cols = {c: numpy_dtype(src.column_type(c)) for c in spec.columns}
    inputs = []
    for i in spec.inputs:
        t = src.column_type(i.column) if i.column is not None else None
        windows = tuple(sorted(i.windows, key=lambda w: (w is None, w or 0)))
        numeric = t is not None and (t.is_numeric or t.name in ("timestamp", "duration"))
        inputs.append(Input(i.column, compile_where(i.where, src.name) if i.where is not None else None,
                            set(i.needs), t is not None and t.is_integer, windows, numeric, i.lifetime, i.last_k))
    return Table(src.name, spec.key.columns, cols, inputs, spec.evict_window, spec.asof)


# The point-in-time rules this engine implements: a window's rows are those of the entity's
# segment (kept in (time, arrival) order, so the later row of a tie comes last) from the first
# with time >= t - w up to, not including, the first with time >= t (`searchsorted(side="left")`
# in astra.online.view and astra.online.single).  A plan stating other rules is refused.
RULES = ir.PointInTime(window_closed="left", visibility="strictly_before", tie_break="source_position")


def parse_service(plan: ir.Plan, service: str) -> tuple[str, int]:
    """`name@vN` -> (name, version) of a service the plan defines."""
    try:
        svc = plan.find_service(service)
    except ir.ServiceNotFound as err:
        raise UnknownServiceError(str(err)) from None
    return svc.name, svc.version


class Store:
    """Per source and entity, the retained rows and running state a plan needs to answer exactly."""

    def __init__(self, plan: ir.Plan, allowed_lateness: int = 0, services: list[str] | None = None, *,
                 max_future: int | None = None, horizon_lag: int = 0, clock=None):
        """`services` ("name@vN"): keep only what these services read (None: every feature).

        `max_future` (µs; None: no limit): refuse pushed rows, and source files holding rows,
        later than `clock()` plus this.  It is a rule about the clock at push time, so it is not
        saved with the store.  `horizon_lag` (µs, saved): keep this much more than the longest
        window plus the allowed lateness, so the horizon trails the watermark minus the allowed
        lateness by at least this (a server sets `max_future` plus its "now" rounding, so a query
        for now is never before the horizon).  `clock`: a callable giving now in µs (default:
        the wall clock), used by `max_future` and by `get` without `at`."""
        plan.rules.require(RULES, "online engine")
        self.plan, self.allowed_lateness = plan, int(allowed_lateness)
        self.max_future = None if max_future is None else int(max_future)
        self.horizon_lag = int(horizon_lag)
        self.clock = clock or wall_clock
        self.services = None if services is None else tuple(services)
        if self.services is not None:
            for sid in self.services:
                compile_service(plan, *parse_service(plan, sid))  # unknown services fail here
        self.specs = plan_layout(plan, self.services).tables
        self.tables = [new_table(s) for s in self.specs]
        # the declared vector indexes, fed by every ingest of their sources (a store for all services only)
        self.indexes = Indexes(plan, kept=self.services is None)
        self._compiled: dict[str, object] = {}  # service as asked ("name@vN", or its id) -> compiled plan
        # service -> ((entity, key names, ((table, its bit in the found mask), ...)), ...)
        self._readers: dict[str, tuple] = {}
        # (service, a query's key names) -> (`_readers` with each entity's key positions in them,
        # the query's key columns (name, type), the `key:` request inputs the service reads)
        self._positions: dict[tuple, tuple] = {}
        self._reads: dict[str, Missing] = {}  # service -> per output, the found-mask bits it reads
        self._reads_now: dict[str, bool] = {}  # service -> an expression reads the query time
        self._key_columns: dict[str, tuple] = {}  # service -> its entities' key columns (name, type)
        self._key_names: dict[str, tuple] = {}  # service -> the names of those columns
        self.watermark: dict[str, int] = {}
        self.next_seq: dict[str, int] = {}
        # rows this process stored, per source and per table (evicted ones included): their
        # difference is the rows a table left out for a null key (`source_rows`)
        self.ingested: dict[str, int] = {}
        self.stored = [0] * len(self.tables)
        # `lock`: held by a query while it reads, and by a push while it changes what queries read
        # (new rows in place; a rebuilt table swapped in), never while it rebuilds (eviction,
        # compaction: `astra.online.compaction`); `writing`: one push or materialize at a time
        self.lock, self.writing = threading.Lock(), threading.Lock()

    # ------------------------------------------------------------------ ingestion
    def push(self, source: str, rows: list[dict] | pl.DataFrame, on_late: str = "raise",
             admitted=None) -> PushReport:
        """Store rows of a source.  Too-late rows raise `LateRowError` and, with `max_future`, rows
        later than the clock plus it raise `FutureRowError` (nothing stored); with on_late="report"
        both are left out and listed in the returned report (`rejected`, `future`).

        `admitted(report)`, when given, is called once the rows to store are known and before any
        goes in: a server writes them to its log there, so a row is durable before a query can
        see it, and a failed write stores nothing."""
        src = self._source(source)
        times, cols = ingest.from_frame(src, rows) if isinstance(rows, pl.DataFrame) else ingest.from_dicts(src, rows)
        with self.writing:
            return self._push(src, times, cols, on_late, admitted)

    def _push(self, src: ir.Source, times: np.ndarray, cols: dict[str, Vec], on_late: str,
              admitted=None) -> PushReport:
        source = src.name
        rejected: list[tuple[int, int, int]] = []
        times, cols, future, index = drop_future(src, times, cols, self.max_future, self.clock, on_late)
        if source in self.watermark and len(times):
            bound = self.watermark[source] - self.allowed_lateness
            late = np.flatnonzero(times < bound) if len(times) > 1 or int(times[0]) < bound else ()
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
            self._ingest(src, times, cols, bulk=False)
        return report

    def _ingest(self, src: ir.Source, times: np.ndarray, cols: dict[str, Vec], bulk: bool) -> None:
        """Store validated rows (each with a time and at least one entity's key) in every table of
        the source whose key they hold: a row with a null key is invisible to that entity alone.

        Queries wait only while the rows go in (their cost) and while rebuilt tables are swapped
        in; growing the arena, compaction and eviction are built beside the tables they replace."""
        self.next_seq[src.name] = self.next_seq.get(src.name, 0) + len(times)
        self.ingested[src.name] = self.ingested.get(src.name, 0) + len(times)
        mine = [(ti, tb) for ti, (spec, tb) in enumerate(zip(self.specs, self.tables)) if spec.source.name == src.name]
        rows = [_with_key(times, cols, self.specs[ti].key.columns) for ti, _ in mine]
        for (_, tb), (t_rows, t_cols) in zip(mine, rows):
            if len(t_rows) and not (bulk and tb.used == 0):
                tb.reserve(_keys(t_cols, tb.key_columns), self.lock)
        t_max = int(times.max()) if len(times) > 1 else int(times[0])
        with self.lock:  # the rows and the watermark they move change together, for a query
            for (ti, tb), (t_rows, t_cols) in zip(mine, rows):
                self.stored[ti] += len(t_rows)
                if len(t_rows):
                    self._ingest_table(tb, t_rows, t_cols, bulk)
            self.watermark[src.name] = max(self.watermark.get(src.name, t_max), t_max)
        if self.indexes:
            self.indexes.ingest(src.name, times, cols)
        for _, tb in mine:
            tb.compact(self.lock)
        self._evict(src.name)
        if bulk:
            for _, tb in mine:
                tb.shrink(self.lock)

    def _ingest_table(self, tb: Table, times: np.ndarray, cols: dict[str, Vec], bulk: bool) -> None:
        slots = tb.assign(_keys(cols, tb.key_columns))
        raw = tb.raw_rows(times, cols)
        if bulk and tb.used == 0:
            tb.bulk_load(slots, raw)
            return
        done = 0
        if len(times) <= FEW:  # in-order rows of a few entities: appended one by one
            for j, s in enumerate(slots.tolist()):
                if not tb.append(s, raw, j):
                    break
                done += 1
        if done < len(times):
            tb.insert(slots[done:], {k: v[done:] for k, v in raw.items()} if done else raw)

    def _evict(self, source: str) -> None:
        """Advance eviction in steps of 1/8 of the retention, so its cost is amortised."""
        w = self.watermark[source]
        for spec, tb in zip(self.specs, self.tables):
            if spec.source.name != source or tb.evict_window is None:
                continue
            cutoff = w - self.allowed_lateness - self.horizon_lag - tb.evict_window
            step = max((tb.evict_window + self.allowed_lateness + self.horizon_lag) // 8, 1)
            if tb.cutoff is None or cutoff - tb.cutoff >= step:
                tb.evict(cutoff, self.lock)

    def materialize(self, data_root: str | Path, until: int | None = None) -> dict[str, SourceRows]:
        """Bootstrap every source from its offline file (rows with time < `until`, all if None).

        Files are read and validated as the offline engine reads them (a bad file raises
        `BackfillError`); returns, per source read, the rows read and those left out (`SourceRows`)."""
        counts = {}
        for src in self.plan.sources:
            if not any(s.source.name == src.name for s in self.specs) and not self.indexes.columns(src.name):
                continue
            times, cols, counts[src.name] = self.read_source(src, data_root)
            if until is not None:
                keep = times < until
                times, cols = times[keep], {c: Vec(v.values[keep], v.valid[keep]) for c, v in cols.items()}
            if len(times):
                with self.writing:
                    self._ingest(src, times, cols, bulk=True)
        return counts

    def read_source(self, src: ir.Source, data_root: str | Path) -> tuple[np.ndarray, dict[str, Vec], SourceRows]:
        """The rows of a source's file this store keeps (`ingest.read_source`): the columns and
        entity keys its tables read; an empty read for a source no table reads.  With
        `max_future`, a file holding a row later than the clock plus it raises `FutureRowError`."""
        specs = [s for s in self.specs if s.source.name == src.name]
        if not specs and not self.indexes.columns(src.name):
            return np.zeros(0, np.int64), {}, SourceRows(src.name)
        columns = {c for s in specs for c in s.columns} | self.indexes.columns(src.name)
        keys = {c for s in specs for c in s.key.columns} | self.indexes.key_columns(src.name)
        times, cols, read = ingest.read_source(src, data_root, columns, keys)
        if self.max_future is not None and len(times):
            limit = min(self.clock() + self.max_future, INT64_MAX)
            ahead = np.flatnonzero(times > limit)
            if len(ahead):  # refused whole, like a file with a null where none may be
                first = int(times[ahead].min())
                raise FutureRowError(src.name, [(int(j), int(times[j]), limit) for j in ahead], (
                    f"source `{src.name}` under {data_root}: {len(ahead)} row(s) are later than the clock plus "
                    f"max_future ({iso(limit)}; `astra serve --max-future`), the first at {iso(first)}; rows from "
                    f"the future would move the watermark past now and evict what queries for now need: fix "
                    f"their times (a time zone?), or raise the allowance"))
        return times, cols, read

    def source_rows(self, read: SourceRows) -> SourceRows:
        """What this store did with the rows of a file, once every row `read_source` kept has
        been ingested: `read`'s file counts, and per entity the rows its table did not store
        (their key for it is null)."""
        with_time = read.rows - read.null_time
        null_key = {spec.entity.name: with_time - self.stored[ti]
                    for ti, spec in enumerate(self.specs) if spec.source.name == read.source}
        return SourceRows(read.source, read.rows, read.null_time, null_key,
                          read.rows - self.ingested.get(read.source, 0))

    # ------------------------------------------------------------------ queries
    @property
    def horizon(self) -> int | None:
        """The earliest query time answered exactly (None: nothing evicted yet)."""
        hs = [tb.cutoff + tb.evict_window for tb in self.tables if tb.cutoff is not None]
        return max(hs) if hs else None

    def get(self, service: str, entities: list[dict], at=None, request=None, validity: bool = False) -> Result:
        """Feature values for each entity at time `at` (one, or one per entity; None: now): int µs
        since the epoch, `datetime` or `date` (naive means UTC), numpy `datetime64` or ISO string.

        `service` is "name@vN"; each entity a dict holding every key column of the service's
        entities (`compiled_keys`).  Answered as the `Lookup` a server sends (`query`) is."""
        svc, names, keys = self._keyed(service, entities)
        with self.lock:
            return self._answer(svc, names, keys, query_times(at), request, validity)

    def query(self, service: str, entities: list[dict], at=None, request=None, validity: bool = False) -> Lookup:
        """The `Lookup` of a service name and entity dicts (as `get` takes them)."""
        return Lookup(*self._keyed(service, entities), query_times(at), request, validity)

    def _keyed(self, service: str, entities: list[dict]) -> tuple[ir.Service, tuple[str, ...], list[tuple]]:
        """A service name and entity dicts as a `Lookup` holds them: the service, its key column
        names, one key tuple per entity."""
        compiled = self._compiled.get(service)
        if compiled is None:
            compiled = self._compile(service)
        names = self._key_names[compiled.service.id]
        return compiled.service, names, key_tuples(entities, names, service)

    def lookup(self, q: Lookup) -> Result:
        """Feature values of `q.service` for each of `q.keys` at `q.at`.

        Up to `SMALL` entities run the service's single-entity plan once each (Python scalars,
        no per-window arrays); larger batches run the vectorised plan.  Both give the same values.
        With `q.validity`, `Result.valid_until` holds, per entity, the latest query time whose answer
        is the same as long as no row is pushed for the entity (`astra.online.view.valid_until`)."""
        with self.lock:  # a push's rebuilds are swapped in between queries, not during one
            return self._answer(q.service, q.key_names, q.keys, q.at, q.request, q.validity)

    def _lookup(self, q: Lookup, single: bool | None = None) -> Result:
        """`lookup` without the lock; `single` forces one plan (None: by the batch size), so
        tests can compare the single-entity and vectorised plans on the same query."""
        return self._answer(q.service, q.key_names, q.keys, q.at, q.request, q.validity, single)

    def _answer(self, service: ir.Service, key_names: tuple, keys: list, at, request, validity: bool,
                single: bool | None = None) -> Result:
        """A `Lookup`'s fields, answered (`get` calls it without building one)."""
        sid = service.id
        compiled = self._compiled.get(sid)
        if compiled is None or (compiled.service is not service and compiled.service != service):
            compiled = self._compile(sid)
            if compiled.service != service:
                raise UnknownServiceError(f"service `{sid}` of the query is not the one this store's plan defines "
                                          f"(a plan changed under the server?)")
        if at is None:  # one "now" for the whole batch (and its validity)
            at = self.clock()
        readers, key_columns, keyed = self._positions.get((sid, key_names)) or self._reader_positions(sid, key_names)
        if keyed:  # `assignment(experiment)` reads the queried keys as inputs
            request = with_entity_keys(request, key_names, keys, keyed)
        n = len(keys)
        if single is None:
            single = compiled.evaluate_one is not None and 0 < n <= SMALL
        plan = self._get_small if single else self._get_batch
        res = plan(compiled, readers, keys, at, request, validity)
        if validity and self._reads_now[sid]:  # `now` in an expression: every µs differs
            res.valid_until = self._query_times(at, n)
        res.keys, res.key_columns = keys, key_columns
        return res

    def _reader_positions(self, sid: str, key_names: tuple[str, ...]) -> tuple:
        """For queries of service `sid` with these key names: `_readers` with, per entity, where its
        keys sit in the key tuples (an int for a one-column key, a tuple otherwise); the key columns
        (name, type); the `key:` request inputs the service reads."""
        types = dict(self._key_columns[sid])
        unknown = [k for k in key_names if k not in types]
        if unknown:
            raise KeyError(f"service `{sid}` has no key column {unknown[0]!r}; its keys are {list(types)}")
        out = []
        for ent, names, tis in self._readers[sid]:
            try:
                pos = tuple(key_names.index(k) for k in names)
            except ValueError:
                raise KeyError(f"entity `{ent.name}` needs keys {list(names)}; the query's keys are "
                               f"{list(key_names)}") from None
            out.append((ent, pos[0] if len(pos) == 1 else pos, tis))
        keyed = [name for name, _ in self._compiled[sid].requests if name.startswith("key:")]
        got = self._positions[sid, key_names] = (tuple(out), tuple((k, types[k]) for k in key_names), keyed)
        return got

    def _query_times(self, at, n: int) -> list[int]:
        if isinstance(at, int | np.integer):
            return [int(at)] * n
        return np.broadcast_to(np.asarray(at, dtype=np.int64), (n,)).tolist()

    def _compile(self, service: str):
        name, version = parse_service(self.plan, service)
        sid = f"{name}@v{version}"
        compiled = self._compiled.get(sid)
        if compiled is not None:  # asked by another name
            self._compiled[service] = compiled
            return compiled
        compiled = self._compiled[service] = self._compiled[sid] = compile_service(self.plan, name, version,
                                                                                 self.services)
        ents = {}
        bit = {ti: 1 << b for b, ti in enumerate(compiled.tables)}  # found masks: a bit per table read
        for ti in compiled.tables:  # per table: the entity's key names, read once per query
            ent = self.specs[ti].entity
            ents.setdefault(ent.name, (ent, []))[1].append((ti, bit[ti]))
        self._readers[sid] = tuple((ent, tuple(k for k, _ in ent.keys), tuple(tis)) for ent, tis in ents.values())
        self._key_columns[sid] = compiled_keys(self.plan, compiled.service)
        self._key_names[sid] = tuple(k for k, _ in self._key_columns[sid])
        self._reads[sid] = Missing(tuple(sum(bit[ti] for ti in tis) for tis in compiled.output_tables))
        closure = self.plan.closure(tuple(o.feature for o in compiled.service.outputs))
        # `now()`, or an aggregation weighing rows by their age (exp_decay_sum): answers change every µs
        self._reads_now[compiled.service.id] = any(
            isinstance(n, ir.Now) or (isinstance(n, ir.Aggregate) and getattr(AGGREGATIONS[n.op], "reads_times", False))
            for f in closure for n in ir.walk(f.expr))
        return compiled

    def _get_small(self, compiled, readers: tuple, keys: list[tuple], at, request, validity: bool = False) -> Result:
        """`lookup` through the single-entity plan, one entity at a time."""
        n = len(keys)
        if at is None:
            at = self.clock()
        ts = self._query_times(at, n)
        h = self.horizon
        if h is not None and min(ts) < h:
            raise HorizonError(min(ts), h)
        reqs = request_rows(compiled.requests, request, n) if compiled.requests else [None] * n
        sid = compiled.service.id
        tables = self.tables
        rows, missing, founds, until = [], [], [], []
        for k, t, req in zip(keys, ts, reqs):
            slots: list = [None] * len(tables)
            found = 0
            for _, pos, tis in readers:
                key = k[pos] if type(pos) is int else tuple(k[p] for p in pos)
                for ti, b in tis:
                    s = slots[ti] = tables[ti].keys.get(key, 0)
                    if s:
                        found |= b
            one = Single(tables, slots, t)
            rows.append(compiled.evaluate_one(one, req))
            missing.append(not found and bool(readers))
            founds.append(found)
            if validity:
                until.append(one.valid_until())
        res = Result.from_rows(compiled.output_types, rows, missing, founds, self._reads[sid])
        res.valid_until = until if validity else None
        return res

    def _get_batch(self, compiled, readers: tuple, keys: list[tuple], at, request, validity: bool = False) -> Result:
        """`lookup` through the vectorised plan."""
        n = len(keys)
        if at is None:
            at = self.clock()
        if isinstance(at, int):
            t = np.full(n, at, np.int64)
            t_min = at
        else:
            t = np.broadcast_to(np.asarray(at, dtype=np.int64), (n,)).copy()
            t_min = int(t.min()) if n else 0
        h = self.horizon
        if h is not None and n and t_min < h:
            raise HorizonError(t_min, h)
        slots: list = [None] * len(self.tables)
        # per entity, a bit per table that knows it (object ints past 62 tables)
        found = np.zeros(n, np.int64 if len(compiled.tables) < 63 else object)
        for _, pos, tis in readers:
            ents = [k[pos] for k in keys] if type(pos) is int else [tuple(k[p] for p in pos) for k in keys]
            for ti, bit in tis:
                s = slots[ti] = self.tables[ti].lookup(ents)
                found |= (s != 0).astype(found.dtype) * bit
        missing = found == 0 if compiled.tables else np.zeros(n, bool)
        q = Query(self.tables, slots, t)
        values = compiled.evaluate(q, request_vecs(compiled.requests, request, n))
        res = Result(compiled.output_types, values, missing, found=found, reads=self._reads[compiled.service.id])
        res.valid_until = q.valid_until().tolist() if validity else None
        return res

    def _source(self, name: str) -> ir.Source:
        try:
            return self.plan.source(name)
        except KeyError:
            raise KeyError(f"no source `{name}`; sources: {', '.join(s.name for s in self.plan.sources)}") from None

    def nbytes(self) -> int:
        """The bytes held by the store's tables (rows, running state, indexes)."""
        return sum(tb.nbytes() for tb in self.tables) + self.indexes.nbytes()

    def close(self) -> None:
        """Nothing to release (`astra.online.protocol.OnlineStore.close`; the Redis store closes connections)."""

    def save(self, path: str | Path) -> None:
        """Write the store to a directory (atomically: a temp dir renamed into place)."""
        from astra.online.persist import save

        save(self, Path(path))

    @classmethod
    def load(cls, path: str | Path, plan: ir.Plan) -> Store:
        """Read a store written by `save`; `plan` must be the plan it was built for."""
        from astra.online.persist import load

        return load(cls, Path(path), plan)


def drop_future(src: ir.Source, times: np.ndarray, cols: dict[str, Vec], max_future: int | None, clock,
                on_late: str) -> tuple[np.ndarray, dict[str, Vec], list[tuple[int, int, int]], np.ndarray | None]:
    """The rows of a push not later than the clock plus `max_future`, the rows left out as
    (batch index, time, limit), and the batch index of each kept row (None when all are kept).
    Raises `FutureRowError` for any row left out unless on_late="report"."""
    if max_future is None or not len(times):
        return times, cols, [], None
    limit = min(clock() + max_future, INT64_MAX)
    ahead = np.flatnonzero(times > limit)
    if not len(ahead):
        return times, cols, [], None
    future = [(int(j), int(times[j]), limit) for j in ahead]
    if on_late != "report":
        raise FutureRowError(src.name, future, _future_message(src, future))
    keep = times <= limit
    return times[keep], {c: Vec(v.values[keep], v.valid[keep]) for c, v in cols.items()}, future, np.flatnonzero(keep)


def _future_message(src: ir.Source, future: list[tuple[int, int, int]]) -> str:
    j, t, limit = future[0]
    return (f"{len(future)} row(s) pushed to `{src.name}` are later than the clock plus max_future (first: row {j}, "
            f"`{src.time}` = {iso(t)} > {iso(limit)}); nothing from this batch was stored. A row from the future "
            f"would move the watermark past now and evict what queries for now need: fix its time, push with "
            f"on_late='report' to store the rest, or raise max_future.")


def _with_key(times: np.ndarray, cols: dict[str, Vec], columns: tuple[str, ...]
              ) -> tuple[np.ndarray, dict[str, Vec]]:
    """The rows whose key `columns` are all non-null (all of them, uncopied, when none is null)."""
    ok = None
    for c in columns:
        if not cols[c].valid.all():
            ok = cols[c].valid if ok is None else ok & cols[c].valid
    if ok is None:
        return times, cols
    return times[ok], {c: Vec(v.values[ok], v.valid[ok]) for c, v in cols.items()}


def compiled_keys(plan: ir.Plan, service: ir.Service) -> tuple[tuple[str, object], ...]:
    """The key columns of a service's entities (name, declared type), each once, in entity order."""
    out: dict[str, object] = {}
    for name in service.entities:
        for k, t in plan.entity(name).keys:
            out.setdefault(k, t.non_null())
    return tuple(out.items())


def _keys(cols: dict[str, Vec], columns: tuple[str, ...]) -> list:
    if len(columns) == 1:
        return cols[columns[0]].values.tolist()
    return list(zip(*(cols[c].values.tolist() for c in columns)))
