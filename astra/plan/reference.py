"""The reference interpreter: a tiny, obviously correct row-by-row evaluation of a plan.

It defines correctness for both engines' property tests, so it is written for clarity, not
speed: for each query row and each feature it scans the whole source table, using only the
operators' plain-Python `reference` functions.  Timestamps and durations are int µs.
"""

from __future__ import annotations

import math

import numpy as np

import astra.ops.functions
import astra.ops.scalars  # noqa: F401  (registers the operators)
from astra.lang.types import Type
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.registry import SCALARS
from astra.plan import ir
from astra.plan.fit import require_fitted

# The point-in-time rules this interpreter implements (`_Query`: rows with time < t, windows
# t - w <= time < t, ties resolved by the position in `tables`).
RULES = ir.PointInTime(window_closed="left", visibility="strictly_before", tie_break="source_position")


def evaluate(plan: ir.Plan, service: str, version: int, spine_rows: list[dict],
             tables: dict[str, list[dict]], time_column: str = "ts") -> list[dict]:
    """Each spine row (entity keys, `time_column`, request fields) extended with the service's
    outputs; `tables` holds each source's rows in file order."""
    plan.rules.require(RULES, "reference interpreter")
    svc = plan.service(service, version)
    require_fitted(plan, svc)  # fitted transforms are evaluated bound, like the engines do
    features = plan.closure(tuple(o.feature for o in svc.outputs))
    out = []
    for row in spine_rows:
        values: dict[str, object] = {}
        for f in features:
            entity = plan.entity(f.entity)
            keys = tuple(row[k] for k, _ in entity.keys)
            ctx = _Query(plan, tables, keys, row[time_column], row, values)
            v = coerce(ctx.eval(f.expr), f.type)
            values[f.id] = f.default if v is None and f.default is not None else v
        out.append({**row, **{o.name: values[o.feature] for o in svc.outputs}})
    return out


class _Query:
    def __init__(self, plan, tables, keys, t, row, features):
        self.plan, self.tables, self.keys, self.t, self.row, self.features = plan, tables, keys, t, row, features

    def visible(self, key: ir.SourceKey) -> list[dict]:
        """Rows of the key's entity with time < t, in (time, file position) order."""
        src = self.plan.source(key.source)
        rows = [r for r in self.tables[key.source]
                if r.get(src.time) is not None and r[src.time] < self.t
                and all(r.get(c) is not None for c in key.columns)
                and tuple(r[c] for c in key.columns) == self.keys]
        return sorted(rows, key=lambda r: r[src.time])  # stable: file order on ties

    def eval(self, e: ir.Expr, src_row: dict | None = None) -> object:
        if isinstance(e, ir.Const):
            return e.value
        if isinstance(e, ir.Now):
            return self.t
        if isinstance(e, ir.Column):
            return coerce(src_row[e.name], e.type)  # a float32 column holds float32 values
        if isinstance(e, ir.RequestInput | ir.EntityKey):  # both are columns of the spine row
            return coerce(self.row[e.field], e.type)
        if isinstance(e, ir.FeatureRef):
            return self.features[e.feature]
        if isinstance(e, ir.AsOf):
            rows = self.visible(e.key)
            return coerce(rows[-1][e.column], e.type) if rows else None
        if isinstance(e, ir.Aggregate):
            time = self.plan.source(e.key.source).time
            rows = [r for r in self.visible(e.key) if e.where is None or self.eval(e.where, r) is True]
            rows = window_rows(e, rows, time, self.t)
            values = [True] * len(rows) if e.column is None else [r[e.column] for r in rows]
            agg = AGGREGATIONS[e.op]
            if getattr(agg, "reads_times", False):  # exp_decay_sum weighs each value by its age
                at = self.t if e.hop is None else self.t // e.hop * e.hop  # hopping: ages from the boundary
                return coerce(agg.reference_at(values, [r[time] for r in rows], at, e.param), e.type)
            return coerce(agg.reference(values, e.param), e.type)
        if isinstance(e, ir.Apply):
            op = SCALARS[e.op]
            args = [self.eval(a, src_row) for a in e.args]
            if op.null_policy == "strict" and any(a is None for a in args):
                return None
            return coerce(op.reference(e.type, *args), e.type)
        raise TypeError(f"unknown node {type(e).__name__}")


def window_rows(e: ir.Aggregate, rows: list[dict], time: str, t: int) -> list[dict]:
    """The rows of `rows` (an entity's visible rows that pass the filter, in time order) inside
    the aggregate's window at query time t, by the rules of docs/semantics.md, "Window kinds"."""
    if e.gap is not None:  # session: back from the latest row while consecutive gaps are < gap
        start = len(rows)
        while start > 0 and (start == len(rows) or rows[start][time] - rows[start - 1][time] < e.gap):
            start -= 1
        return rows[start:]
    end = t if e.hop is None else (t // e.hop) * e.hop  # hopping and tumbling: the latest boundary <= t
    return [r for r in rows if r[time] < end and (e.window is None or r[time] >= end - e.window)]


def coerce(v: object, t: Type) -> object:
    """A Python value converted to type `t`'s representation (the engines' final cast)."""
    if v is None:
        return None
    if t.is_float:
        v = float(v)
        if t.name == "float32":
            with np.errstate(over="ignore"):  # past float32's range is inf, as in the engines
                return float(np.float32(v))
        return v
    if t.is_integer:
        if isinstance(v, float):
            if not math.isfinite(v):
                return None
            v = math.trunc(v)
        v = int(v)
        bits = 32 if t.name == "int32" else 64
        return v if -(1 << (bits - 1)) <= v < (1 << (bits - 1)) else None
    if t.name in ("list", "vector"):  # a vector's elements are float32
        return tuple(coerce(x, t.item) for x in v)
    return v
