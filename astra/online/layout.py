"""What the store must keep for a plan: one table per (source, key columns), and per table the
columns, the aggregation inputs (column + `where` filter) with the structures their kernels need,
how far back rows must be retained, and whether as-of lookups read it.

Both the store and the generated query code index tables and inputs by the numbers assigned here;
columns and inputs are numbered in a canonical order (by name, then filter), not in the order
features declare them, so a plan whose declarations were only reordered stores the same arrays.
"""

from __future__ import annotations

import functools

import attrs

from astra.ops.aggregations import AGGREGATIONS
from astra.plan import ir


@attrs.define
class InputSpec:
    column: str | None
    where: ir.Expr | None
    needs: set[str] = attrs.field(factory=set)
    windows: set = attrs.field(factory=set)  # count_distinct windows (None: lifetime)
    lifetime: bool = False  # some lifetime aggregation reads it
    last_k: int = 0  # the largest k of a lifetime last_k reading it (its evicted values to keep)


@attrs.define
class TableSpec:
    """The layout of one table; `entity` is the entity the key columns identify."""

    source: ir.Source
    key: ir.SourceKey
    entity: ir.Entity
    columns: list[str] = attrs.field(factory=list)
    inputs: list[InputSpec] = attrs.field(factory=list)
    max_window: int = 0
    mergeable: bool = True  # every lifetime aggregation can fold evicted rows into running state
    asof: bool = False

    @property
    def evict_window(self) -> int | None:
        return self.max_window if self.mergeable else None

    def column(self, name: str) -> None:
        if name not in self.columns:
            self.columns.append(name)

    def input(self, column: str | None, where: ir.Expr | None) -> int:
        for i, inp in enumerate(self.inputs):
            if inp.column == column and inp.where == where:
                return i
        self.inputs.append(InputSpec(column, where))
        if column is not None:
            self.column(column)
        for n in ir.walk(where) if where is not None else ():
            if isinstance(n, ir.Column):
                self.column(n.name)
            elif isinstance(n, ir.Now | ir.RequestInput | ir.AsOf | ir.Aggregate | ir.FeatureRef):
                raise NotImplementedError("online: a `where` filter may only read the source row's columns")
        return len(self.inputs) - 1


@attrs.define
class Layout:
    tables: list[TableSpec]
    index: dict[ir.SourceKey, int]


def entity_of(plan: ir.Plan, key: ir.SourceKey) -> ir.Entity:
    """The entity a source key identifies (the source lists its keys aligned with its entities)."""
    src = plan.source(key.source)
    for k, ent in zip(src.keys, src.entities):
        if k.columns == key.columns:
            return plan.entity(ent)
    raise KeyError(f"source `{key.source}` has no key {key.columns}")


def service_features(plan: ir.Plan, services: tuple[str, ...] | None) -> tuple[ir.Feature, ...]:
    """The features a set of services ("name@vN") reads, dependencies included (None: all)."""
    if services is None:
        return plan.features
    outs = []
    for sid in services:
        name, _, ver = sid.partition("@v")
        outs += [o.feature for o in plan.service(name, int(ver)).outputs]
    return plan.closure(tuple(dict.fromkeys(outs)))


@functools.lru_cache(maxsize=64)
def plan_layout(plan: ir.Plan, services: tuple[str, ...] | None = None, canonical: bool = True) -> Layout:
    """Tables and inputs for every Aggregate and AsOf the services read (None: every feature of
    the plan); all services of a store share its tables.  Not `canonical`: columns and inputs in
    the order the plan reads them, as stores saved by earlier versions numbered them."""
    tables: list[TableSpec] = []
    index: dict[ir.SourceKey, int] = {}

    def table(key: ir.SourceKey) -> TableSpec:
        if key not in index:
            index[key] = len(tables)
            tables.append(TableSpec(plan.source(key.source), key, entity_of(plan, key)))
        return tables[index[key]]

    for f in service_features(plan, services):
        for n in ir.walk(f.expr):
            if isinstance(n, ir.AsOf):
                tb = table(n.key)
                tb.asof = True
                tb.column(n.column)
            elif isinstance(n, ir.Aggregate):
                tb, agg = table(n.key), AGGREGATIONS[n.op]
                i = tb.input(n.column, n.where)
                needs_for = getattr(agg, "online_needs_for", None)  # per column type (a vector's mean)
                tb.inputs[i].needs |= agg.online_needs if needs_for is None else needs_for(
                    tb.source.column_type(n.column) if n.column is not None else None)
                if n.gap is not None:  # sessions reach back without bound: the table is never evicted (W5)
                    tb.mergeable = False
                    tb.input(None, n.where)  # the rows that form sessions: the filter's, nulls included (W4)
                    continue
                if "distinct" in agg.online_needs:
                    tb.inputs[i].windows.add(n.window)
                if n.window is None:
                    column = tb.source.column_type(n.column) if n.column is not None else None
                    tb.mergeable &= agg.online_mergeable_for(column)
                    tb.inputs[i].lifetime = True
                    tb.inputs[i].last_k = max(tb.inputs[i].last_k, agg.online_evicted_kept(n.param))
                else:  # a hopping window starts up to its hop earlier than t - window (W5)
                    tb.max_window = max(tb.max_window, ir.reach(n))
    for tb in tables if canonical else ():  # renaming or reordering features keeps a saved store's tables
        tb.columns.sort()
        tb.inputs.sort(key=input_order)
    return Layout(tables, index)


def input_id(inp: InputSpec) -> list:
    """What identifies an aggregation input across plans (JSON-able)."""
    return [inp.column, None if inp.where is None else repr(inp.where)]


def input_order(inp: InputSpec) -> tuple:
    """Aggregation inputs by column (count(*) last), then filter."""
    return (inp.column is None, inp.column or "", "" if inp.where is None else repr(inp.where))
