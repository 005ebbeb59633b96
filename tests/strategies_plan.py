"""Hypothesis strategies for random small plans and the data to run them on.

Shared by the offline and online engines' property tests: each draws a `Case` (a plan with
one service `svc@v1`, source tables as lists of row dicts in file order, and spine rows)
and compares the engine with `astra.plan.reference.evaluate`.

Data is drawn from tiny domains on purpose: few keys, few distinct times (ties), nulls in
every column (keys and times included), query times that coincide with event times and
window edges.  Times are int µs; windows are a few µs.
"""

from __future__ import annotations

import attrs
from hypothesis import strategies as st

from astra.lang.types import BOOL, FLOAT64, INT64, STRING, TIMESTAMP, Type
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.registry import SCALARS, TypeRuleError
from astra.plan import ir

GROUP, VERSION = "g", 1
WINDOWS = (None, 1, 3, 5, 10)
EVENT_COLUMNS = {"x": FLOAT64.nullable(), "n": INT64.nullable(), "s": STRING.nullable(), "flag": BOOL.nullable()}
SNAP_COLUMNS = {"v": FLOAT64.nullable(), "c": STRING.nullable(), "k": INT64.nullable()}
REQUEST_FIELDS = {"amount": FLOAT64.nullable()}

# numbers where exact and floating-point arithmetic differ (0.1) and where variance cancels (1e6)
FLOATS = st.sampled_from([0.0, 0.1, 0.25, -1.5, 2.0, 3.3, 7.0, -8.75, 1e6, 1e6 + 0.5, 123.456])
INTS = st.integers(-3, 3)
STRINGS = st.sampled_from(["p", "q", "r", "pq"])


def nullable(s, p: float = 0.2):
    return st.one_of(st.none(), s) if p else s


@attrs.define
class Case:
    plan: ir.Plan
    tables: dict[str, list[dict]]
    spine: list[dict]
    composite: bool

    @property
    def key_names(self) -> list[str]:
        return ["uid", "region"] if self.composite else ["uid"]


def _apply(op: str, *args: tuple[ir.Expr, Type]) -> tuple[ir.Expr, Type] | None:
    """Apply a registered op if its type rule accepts the arguments (else None)."""
    try:
        t = SCALARS[op].infer(tuple(a[1] for a in args))
    except TypeRuleError:
        return None
    return ir.Apply(op=op, args=tuple(a[0] for a in args), type=t), t


@st.composite
def cases(draw, max_features: int = 6) -> Case:
    composite = draw(st.booleans())
    key_types = (("uid", INT64), ("region", STRING)) if composite else (("uid", INT64),)
    entity = ir.Entity(name="user", keys=key_types)
    kcols = tuple(k for k, _ in key_types)
    ev_key = ir.SourceKey(source="ev", columns=kcols)
    snap_key = ir.SourceKey(source="snap", columns=kcols)
    ev = ir.Source(name="ev", kind="events", path="ev.parquet", time="ts",
                   columns=(*((k, t.nullable()) for k, t in key_types), ("ts", TIMESTAMP.nullable()),
                            *EVENT_COLUMNS.items()), keys=(ev_key,), entities=("user",))
    snap = ir.Source(name="snap", kind="snapshot", path="snap.parquet", time="at",
                     columns=(*((k, t.nullable()) for k, t in key_types), ("at", TIMESTAMP.nullable()),
                              *SNAP_COLUMNS.items()), keys=(snap_key,), entities=("user",))
    request = ir.Request(name="req", fields=tuple(REQUEST_FIELDS.items()))

    def aggregate() -> tuple[ir.Expr, Type]:
        op = draw(st.sampled_from(sorted(AGGREGATIONS)))
        agg = AGGREGATIONS[op]
        columns = [None] if agg.column == "optional" else []
        columns += list(EVENT_COLUMNS)
        while True:
            column = draw(st.sampled_from(columns))
            param = draw(st.integers(1, 3)) if agg.takes_param else None
            try:
                t = agg.infer(EVENT_COLUMNS[column] if column else None, param)
                break
            except TypeRuleError:
                columns.remove(column)
        where = None
        if draw(st.integers(0, 3)) == 0:
            col = draw(st.sampled_from(["n", "x", "flag"]))
            if col == "flag":
                where = ir.Column(name="flag", type=BOOL.nullable())
            else:
                cmp = draw(st.sampled_from([">", "<=", "=="]))
                where = _apply(cmp, (ir.Column(name=col, type=EVENT_COLUMNS[col]), EVENT_COLUMNS[col]),
                               (ir.Const(value=draw(INTS), type=INT64), INT64))[0]
        node = ir.Aggregate(op=op, key=ev_key, column=column, where=where, window=draw(st.sampled_from(WINDOWS)),
                            param=param, type=t)
        return node, t

    def leaf(defined: list[tuple[str, Type]]) -> tuple[ir.Expr, Type]:
        kind = draw(st.sampled_from(["agg", "agg", "agg", "asof", "const", "ref", "now", "request"]))
        if kind == "asof":
            col = draw(st.sampled_from(sorted(SNAP_COLUMNS)))
            return ir.AsOf(key=snap_key, column=col, type=SNAP_COLUMNS[col]), SNAP_COLUMNS[col]
        if kind == "const":
            if draw(st.booleans()):
                return ir.Const(value=draw(INTS), type=INT64), INT64
            return ir.Const(value=draw(FLOATS), type=FLOAT64), FLOAT64
        if kind == "ref" and defined:
            fid, t = draw(st.sampled_from(defined))
            return ir.FeatureRef(feature=fid, type=t), t
        if kind == "now":
            return ir.Now(type=TIMESTAMP), TIMESTAMP
        if kind == "request":
            return ir.RequestInput(request="req", field="amount", type=FLOAT64.nullable()), FLOAT64.nullable()
        return aggregate()

    def expr(defined, depth: int) -> tuple[ir.Expr, Type]:
        if depth == 0 or draw(st.integers(0, 2)) == 0:
            return leaf(defined)
        shape = draw(st.sampled_from(["binary", "binary", "unary", "coalesce", "if"]))
        a = expr(defined, depth - 1)
        if shape == "unary":
            op = draw(st.sampled_from(["abs", "neg", "is_null", "sqrt", "log", "not", "hour_of_day", "cast"]))
            if op == "cast":  # the cast's target type is the node's type
                t = FLOAT64.nullable(a[1].optional)
                return (ir.Apply(op="cast", args=(a[0],), type=t), t) if a[1].is_numeric else a
            return _apply(op, a) or a
        b = expr(defined, depth - 1)
        if shape == "coalesce":
            return _apply("??", a, b) or a
        if shape == "if":
            c = _apply(draw(st.sampled_from([">", "<", "=="])), a, b)
            return (_apply("if", c, a, b) or a) if c else a
        op = draw(st.sampled_from(["+", "-", "*", "/", "%", ">", "==", "and", "or"]))
        return _apply(op, a, b) or a

    features: list[ir.Feature] = []
    defined: list[tuple[str, Type]] = []
    for i in range(draw(st.integers(1, max_features))):
        e, t = expr(defined, draw(st.integers(0, 2)))
        if t.is_null or t.name == "vector":
            continue
        default = None
        if draw(st.integers(0, 4)) == 0 and t.name in ("int64", "float64"):
            default, t = (7 if t.is_integer else 0.5), t.non_null()
        elif t.name not in ("list",):
            t = t.nullable()
        fid = f"{GROUP}@v{VERSION}.f{i}"
        features.append(ir.Feature(id=fid, group=GROUP, version=VERSION, name=f"f{i}", entity="user", expr=e,
                                   type=t, default=default))
        defined.append((fid, t))
    if not features:
        e, t = aggregate()
        features.append(ir.Feature(id=f"{GROUP}@v{VERSION}.f0", group=GROUP, version=VERSION, name="f0",
                                   entity="user", expr=e, type=t))
    service = ir.Service(name="svc", version=1, requests=("req",), entities=("user",),
                         outputs=tuple(ir.Output(name=f"out_{f.name}", feature=f.id)
                                       for f in features if draw(st.integers(0, 3)) or f is features[-1]))
    group = ir.Group(name=GROUP, version=VERSION, entity="user", features=tuple(f.id for f in features))
    plan = ir.Plan(entities=(entity,), sources=(ev, snap), requests=(request,), features=tuple(features),
                   groups=(group,), services=(service,))

    uid = st.integers(1, 3)
    region = st.sampled_from(["a", "b"])
    times = st.integers(0, 20)

    def key_row(p_null: float):
        row = {"uid": draw(nullable(uid, p_null))}
        if composite:
            row["region"] = draw(nullable(region, p_null))
        return row

    ev_rows = [{**key_row(0.05), "ts": draw(nullable(times, 0.05)), "x": draw(nullable(FLOATS)),
                "n": draw(nullable(INTS)), "s": draw(nullable(STRINGS)), "flag": draw(nullable(st.booleans()))}
               for _ in range(draw(st.integers(0, 30)))]
    snap_rows = [{**key_row(0.05), "at": draw(nullable(times, 0.05)), "v": draw(nullable(FLOATS)),
                  "c": draw(nullable(STRINGS)), "k": draw(nullable(INTS))}
                 for _ in range(draw(st.integers(0, 10)))]
    spine = [{**key_row(0.0), "ts": draw(st.integers(0, 25)), "amount": draw(nullable(FLOATS))}
             for _ in range(draw(st.integers(1, 12)))]
    for row in spine:  # keys that never occur in the sources
        if draw(st.integers(0, 9)) == 0:
            row["uid"] = 4
    return Case(plan=plan, tables={"ev": ev_rows, "snap": snap_rows}, spine=spine, composite=composite)

