"""Walking the plan: which sources, windows and columns a service needs, computing every
aggregate and as-of node once per source, then every feature as a Polars expression.

Nodes are deduplicated structurally (IR nodes hash by value), aggregates of one source, key
and filter share one `SortedSource` (sorted once, answered chunk by chunk), and aggregates
that differ only in their window are handed to their kernel together so they can share a
sparse table or a prefix sum.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from astra import io
from astra.offline import asof
from astra.offline.errors import BackfillError
from astra.offline.execution import ExecutionConfig
from astra.offline.expressions import NOW, finish, lower
from astra.offline.keys import Pieces, column_pieces, entity_ids, joined
from astra.offline.sorted_source import SortedSource, numeric
from astra.offline.windows import EventIndex
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.dtypes import polars_dtype
from astra.plan import ir


@attrs.frozen
class Group:
    """Leaves answered by one sorted index: one source, one entity key, one filter, and for
    hopping windows one hop (their queries are asked at the hop boundary, docs/semantics.md W1)."""

    source: str
    key: ir.SourceKey
    where: ir.Expr | None
    hop: int | None = None


def leaves(features: tuple[ir.Feature, ...]) -> dict[Group, list[ir.Aggregate | ir.AsOf]]:
    """Distinct aggregate / as-of nodes of the features, grouped by the index that answers them."""
    groups: dict[Group, list] = defaultdict(list)
    seen = set()
    for f in features:
        for n in ir.walk(f.expr):
            if isinstance(n, ir.Aggregate | ir.AsOf) and n not in seen:
                seen.add(n)
                where = n.where if isinstance(n, ir.Aggregate) else None
                hop = n.hop if isinstance(n, ir.Aggregate) else None
                groups[Group(n.key.source, n.key, where, hop)].append(n)
    return groups


def _columns(nodes, where) -> set[str]:
    cols = {n.column for n in nodes if n.column is not None}
    if where is not None:
        cols |= {c.name for c in ir.walk(where) if isinstance(c, ir.Column)}
    return cols


def entity_of(plan: ir.Plan, key: ir.SourceKey) -> ir.Entity:
    src = plan.source(key.source)
    return plan.entity(src.entities[src.keys.index(key)])


# The point-in-time rules this engine implements: windows [t - w, t) and visibility strictly before
# t by `searchsorted(..., side="left")` on the packed (key, time) of rows and queries
# (astra.offline.windows, astra.offline.asof); ties by a stable sort, so the later row of the source
# comes last.  A plan stating other rules is refused, not run under these.
RULES = ir.PointInTime(window_closed="left", visibility="strictly_before", tie_break="source_position")


def compute(plan: ir.Plan, service: ir.Service, spine: pl.DataFrame, q_times: np.ndarray,
            data_root: str | Path | None, tick: Callable[[], None] = lambda: None,
            config: ExecutionConfig | None = None) -> pl.DataFrame:
    """The service's outputs (one column per `Output`) for each spine row, in spine order,
    evaluated as `config` says (default: `ExecutionConfig()`)."""
    features = plan.closure(tuple(o.feature for o in service.outputs))
    values = leaf_values(plan, leaves(features), spine, q_times, data_root, tick, config=config)
    return derive(service, features, values, spine, q_times, tick)


def leaf_values(plan: ir.Plan, groups: dict[Group, list], spine: pl.DataFrame, q_times: np.ndarray,
                data_root: str | Path | None, tick: Callable[[], None] = lambda: None, *,
                where: dict[str, pl.Expr] | None = None,
                config: ExecutionConfig | None = None) -> dict[object, pl.Series]:
    """Every aggregate / as-of node of `groups` for each spine row, in spine order (plan order).

    `where` keeps only the source rows it selects, per source name (the distributed backfill
    reads one partition of the entities this way); `config` sets chunk sizes and threads
    (default: `ExecutionConfig()`)."""
    plan.rules.require(RULES, "offline engine")
    config = config or ExecutionConfig()
    where = where or {}

    # read each source once, with every column any of its groups needs
    need: dict[str, set[str]] = defaultdict(set)
    keys: dict[str, set[str]] = defaultdict(set)
    for g, nodes in groups.items():
        need[g.source] |= _columns(nodes, g.where)
        keys[g.source] |= set(g.key.columns)
    # rows with a null key are dropped at load only when every group of the source uses the
    # same key columns (else a null in one entity's key would hide the row from another)
    key_sets = defaultdict(set)
    for g in groups:
        key_sets[g.source].add(g.key.columns)
    frames = {s: io.load_source(plan.source(s), data_root, need[s], keys[s], drop_null_keys=len(key_sets[s]) == 1,
                                where=where.get(s))
              for s in need}
    tick()

    # per group: the rows with a non-null key that pass the filter, and their entity ids
    rows: dict[Group, pl.DataFrame] = {}
    for g in groups:
        frame = frames[g.source]
        if len(key_sets[g.source]) > 1:  # this key's nulls were not dropped at load
            frame = frame.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in g.key.columns))
        if g.where is not None:
            mask = frame.select(lower(g.where, _no_leaf).fill_null(False).cast(pl.Boolean)).to_series()
            frame = frame.filter(mask)
        rows[g] = frame
    frame = None  # groups hold their rows; nothing else may, or dropped columns stay alive
    by_entity: dict[str, list[Group]] = defaultdict(list)
    for g in groups:
        by_entity[entity_of(plan, g.key).name].append(g)
    ids: dict[Group, Pieces] = {}
    q_ids: dict[str, np.ndarray] = {}
    for name, gs in by_entity.items():
        entity = plan.entity(name)
        names = [k for k, _ in entity.keys]
        parts = [io.spine_keys(spine, entity)] + [
            rows[g].select(pl.col(c).alias(k) for c, k in zip(g.key.columns, names)) for g in gs]
        q, *rest = entity_ids(parts)
        q_ids[name] = joined(q)
        ids.update(zip(gs, rest))
        for g in gs:  # key columns are not needed any more (unless aggregated or filtered on)
            used = _columns(groups[g], None)
            rows[g] = rows[g].drop([c for c in g.key.columns if c not in used])

    del frames  # each group holds what it needs; dropped columns free memory
    values: dict[object, pl.Series] = {}

    def answer(g: Group) -> dict[object, pl.Series]:
        # a hopping window at t is the sliding window at the hop boundary h <= t (rule W1)
        at = q_times if g.hop is None else q_times // g.hop * g.hop
        return _answer(g, groups[g], rows.pop(g), ids.pop(g), q_ids[entity_of(plan, g.key).name], at, config)

    # Groups are independent: with group_threads > 1 several at a time, the largest first.
    order = sorted(groups, key=lambda g: -rows[g].height)
    if config.group_threads == 1 or len(order) == 1:
        for g in order:
            values.update(answer(g))
            tick()
    else:
        with ThreadPoolExecutor(config.group_threads) as pool:
            for done in pool.map(answer, order):
                values.update(done)
                tick()
    return {n: values[n] for g in groups for n in groups[g] if n in values}  # plan order


def derive(service: ir.Service, features: tuple[ir.Feature, ...], values: dict[object, pl.Series],
           spine: pl.DataFrame, q_times: np.ndarray, tick: Callable[[], None] = lambda: None) -> pl.DataFrame:
    """The service's outputs from the leaves' `values` (spine order): every feature of the
    closure `features`, dependencies first, as Polars expressions over one frame."""
    # derived features, dependencies first, all as Polars expressions over one frame
    names = {n: f"__n{i}" for i, n in enumerate(values)}
    frame = pl.DataFrame(pl.Series(NOW, q_times).cast(pl.Datetime("us")))
    frame = frame.with_columns(s.alias(names[n]) for n, s in values.items())
    requests = {n for f in features for n in ir.walk(f.expr) if isinstance(n, ir.RequestInput)}
    for r in requests:
        frame = frame.with_columns(io.request_column(spine, r.field, r.type).alias(f"__req_{r.field}"))
    keys = {n for f in features for n in ir.walk(f.expr) if isinstance(n, ir.EntityKey)}
    for k in keys:  # the spine's entity key columns were checked when the spine was read
        frame = frame.with_columns(spine[k.field].cast(polars_dtype(k.type)).alias(f"__key_{k.field}"))
    fcols = {f.id: f"__f{i}" for i, f in enumerate(features)}

    def leaf(e: ir.Expr) -> pl.Expr:
        if isinstance(e, ir.Aggregate | ir.AsOf):
            return pl.col(names[e])
        if isinstance(e, ir.FeatureRef):
            return pl.col(fcols[e.feature])
        if isinstance(e, ir.RequestInput):
            return pl.col(f"__req_{e.field}")
        if isinstance(e, ir.EntityKey):
            return pl.col(f"__key_{e.field}")
        raise TypeError(f"unexpected node {type(e).__name__}")

    for f in features:
        frame = frame.with_columns(finish(lower(f.expr, leaf), f).alias(fcols[f.id]))
    tick()
    return frame.select(pl.col(fcols[o.feature]).alias(o.name) for o in service.outputs)


def _no_leaf(e: ir.Expr) -> pl.Expr:
    raise BackfillError(f"a filter may only use source columns and literals, found {type(e).__name__}")


def _answer(g: Group, nodes: list, frame: pl.DataFrame, ids: Pieces, q_ids: np.ndarray,
            q_times: np.ndarray, config: ExecutionConfig) -> dict[object, pl.Series]:
    """Every aggregate / as-of node of one group, as Series in spine order."""
    threads = config.threads
    aggs = [n for n in nodes if isinstance(n, ir.Aggregate)]
    if not aggs:  # as-of lookups only: one sort of the snapshot keys, no event index
        got = asof.lookup(frame.drop(io.TIME), joined(ids), frame[io.TIME].to_numpy(), q_ids, q_times,
                          [n.column for n in nodes], threads)
        return {n: got[n.column].cast(polars_dtype(n.type)) for n in nodes}
    widths = {n.window for n in aggs if n.window is not None}
    # the time column's chunks as they are: a contiguous copy would cost a pass and 8 bytes a row
    source = SortedSource(frame.drop(io.TIME), ids, column_pieces(frame[io.TIME]), q_ids, q_times,
                          config.chunk_rows, widths, threads, config.slice_rows)
    del frame, ids  # the source holds what it needs
    work = _ChunkWork.of(nodes)
    # Numbers that kernels read over every row are converted to NumPy once (to 16-bit codes
    # when only told apart); their Polars columns go unless a Polars gather (a row per query:
    # as-of, first, last) still reads them.
    # (Those columns stay in the file's row-group chunks: making them contiguous made gathers
    # faster but cost more memory than it saved time.)
    gathered = {n.column for n in nodes if isinstance(n, ir.AsOf) or not AGGREGATIONS[n.op].offline_reads_rows}
    source.convert([c for c in work.whole if numeric(source.schema[c])], work.coded, keep=gathered)
    parts = _answer_chunks(source, work, threads)
    inv = source.spine_positions()
    del source, work  # keys, frame rows and converted columns are not needed any more
    return _in_spine_order(parts, nodes, inv)


def _answer_chunks(source: SortedSource, work: _ChunkWork, threads: int) -> list[dict[object, pl.Series]]:
    """Every chunk's answers, in chunk order.  Chunks are independent: several run at once
    (NumPy and Polars release the GIL on arrays this size), sharing the source's keys and
    converted columns.  The largest go first, so that smaller ones fit in the memory they
    freed instead of growing the heap."""
    chunks = source.chunks
    order = sorted(range(len(chunks)), key=lambda i: -source.sizes[chunks[i][0]])

    def answer(i: int) -> dict[object, pl.Series]:
        return work.answer(EventIndex(source, *chunks[i]))  # the index is freed on return

    if threads == 1:
        done = [answer(i) for i in order]
    else:
        with ThreadPoolExecutor(threads) as pool:
            done = list(pool.map(answer, order))
    parts: list[dict[object, pl.Series]] = [{}] * len(chunks)
    for i, part in zip(order, done):
        parts[i] = part
    return parts


@attrs.frozen
class _ChunkWork:
    """What every chunk of a group computes."""

    lookups: list[ir.AsOf]
    whole: list[str]  # columns whose values kernels read over every row, gathered into sorted order together
    coded: list[str]  # columns read over every row only to tell values apart (codes do)
    by_column: dict[str, dict[tuple, list[ir.Aggregate]]]  # aggregates by column, then by (op, param)

    @staticmethod
    def of(nodes: list) -> _ChunkWork:
        aggs = [n for n in nodes if isinstance(n, ir.Aggregate)]
        by_column: dict[str, dict[tuple, list[ir.Aggregate]]] = defaultdict(lambda: defaultdict(list))
        for n in aggs:
            by_column[n.column or ""][(n.op, n.param)].append(n)  # a param may be 0.0 (percentile)
        rows = [n for n in aggs if n.column is not None and AGGREGATIONS[n.op].offline_reads_rows]
        values = {n.column for n in rows if not AGGREGATIONS[n.op].offline_reads_codes}
        coded = {n.column for n in rows} - values
        return _ChunkWork([n for n in nodes if isinstance(n, ir.AsOf)], sorted(values), sorted(coded), by_column)

    def answer(self, index: EventIndex) -> dict[object, pl.Series]:
        """Every node for the chunk's queries, in sorted-query order.  Aggregates that differ
        only in their window are computed together; each column's structures (sorted copies,
        prefix sums) are freed as soon as its last batch is done."""
        out: dict[object, pl.Series] = {}
        if self.lookups:  # the latest row before t, its value null or not: one gather for all columns
            w = index.window(None)
            got = w.gather_frame([n.column for n in self.lookups], np.where(w.hi > w.lo, w.hi - 1, -1))
            out.update((n, got[n.column]) for n in self.lookups)
        index.prefetch(self.whole)
        for column, batches in self.by_column.items():
            for (op, param), batch in sorted(batches.items()):
                windows = [index.window(n.window, n.gap) for n in batch]
                out.update(zip(batch, AGGREGATIONS[op].offline(windows, column or None, param)))
            index.forget(column or None)
        return out


def _in_spine_order(parts: list[dict], nodes: list, inv: pl.Series) -> dict[object, pl.Series]:
    """Chunks' answers (consecutive runs of sorted queries) as one Series per node in spine
    order: a few nodes at a time, their pieces concatenated (and freed), then one parallel gather."""
    out: dict[object, pl.Series] = {}
    for i in range(0, len(nodes), 4):
        batch = nodes[i:i + 4]
        frame = pl.DataFrame([_joined([p.pop(n) for p in parts], n).alias(f"c{j}") for j, n in enumerate(batch)])
        frame = frame[inv]
        out.update((n, frame[f"c{j}"]) for j, n in enumerate(batch))
    return out


def _joined(pieces: list[pl.Series], node: ir.Aggregate | ir.AsOf) -> pl.Series:
    dtype = polars_dtype(node.type)
    return pl.concat(pieces, rechunk=True).cast(dtype) if pieces else pl.Series([], dtype=dtype)
