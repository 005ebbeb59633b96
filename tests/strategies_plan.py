"""Hypothesis strategies for random well-typed plans, generated from the operator registry, and
hostile data to run them on.

Every scalar operator of `astra.ops.registry.SCALARS` and every aggregation of
`astra.ops.aggregations.AGGREGATIONS` is reachable: the argument types each one accepts are found
by asking its own type rule about every combination of types (`SIGNATURES`), so an operator added
to the registry is drawn without touching this file.  `drawn_ops` lists what a plan uses, for the
coverage check of the differential suite.

Plans: two entities, `user` (uid) and the composite `acct` (uid, region); an events source `ev`
keyed by both (a row with a null region still counts for `user`) with a column of every scalar
type; a snapshot `snap` keyed by both through renamed key columns (`holder`); a request with
fields of several types; one group per entity; one service mixing both groups.

Data is hostile on purpose: few keys (ids near +-2^62 and the int64 extremes among them) and few
distinct times (ties), nulls in keys, times and values, huge-then-tiny magnitudes with sign
changes, int32/int64 extremes, duplicate rows, empty sources, query times on window edges
(t, t - w, t - w - 1µs), and times before 1970.  Times are int µs.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections import defaultdict

import attrs
import numpy as np
from hypothesis import strategies as st

import astra.ops.functions  # noqa: F401  (registers the built-in functions)
from astra.lang.types import BOOL, DURATION, FLOAT32, FLOAT64, INT32, INT64, STRING, TIMESTAMP, Type
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.registry import SCALARS, TypeRuleError
from astra.ops.scalars import cast_result
from astra.plan import ir

VERSION = 1
SCALAR_TYPES = (BOOL, INT32, INT64, FLOAT32, FLOAT64, STRING, TIMESTAMP, DURATION)
LIST_TYPES = tuple(Type.list_of(t) for t in SCALAR_TYPES)
VALUE_COLUMNS = {"b": BOOL, "i32": INT32, "i64": INT64, "f32": FLOAT32, "f64": FLOAT64, "s": STRING,
                 "tm": TIMESTAMP, "d": DURATION}
ENTITY_KEYS = {"user": (("uid", INT64),), "acct": (("uid", INT64), ("region", STRING))}
GROUPS = {"user": "gu", "acct": "ga"}
REQUEST_FIELDS = (("amount", FLOAT64.nullable()), ("code", STRING.nullable()), ("qty", INT32),
                  ("when", TIMESTAMP.nullable()))
IN_ITEMS = (INT64, FLOAT64, STRING, BOOL)  # literal types an `in` list can hold
# the types a literal argument of these operators can have, by position (others take an int64 count)
LITERAL_TYPES = {
    "in": {1: tuple(Type.list_of(t) for t in IN_ITEMS)},
    "bucketize": {1: (Type.list_of(INT64), Type.list_of(FLOAT64))},
    "ordinal": {1: (Type.list_of(INT64), Type.list_of(STRING)), 2: (INT64,)},
    "one_hot": {1: (INT64, STRING)},
}
# windows in µs: the common small ones, 1µs, a prime, and widths far beyond the data (rare)
WINDOWS = (None, None, 1, 2, 3, 5, 10, 7, 13, 86_400_000_000, 1 << 40)
GAPS = (1, 2, 3, 5, 86_400_000_000)  # session gaps in µs: rows a few µs apart split or join
DAY = 86_400_000_000
# an aggregation's parameter by kind (`astra.ops.aggregations.base.PARAM_KINDS`): last_k's counts,
# percentile's fractions, half-lives in µs; a "literal" one (histogram's values) is drawn from the
# column's own hostile values (`literal_param`), so it meets the data.  A kind missing here fails
# `test_every_parameter_kind_is_drawn` (tests/differential/test_registry_coverage.py) at once.
PARAMS = {"count": (1, 2, 3, 40), "fraction": (0.0, 0.5, 0.25, 0.9, 1.0, 0.1), "duration": (1, 2, 3, 7, DAY),
          "literal": None}


def param_kind(agg) -> str:
    """Which of PARAMS an aggregation taking a parameter draws from."""
    return agg.param_kind


def example_param(agg, column: Type | None):
    """A parameter the aggregation's type rule accepts with this column (None without one)."""
    if not agg.takes_param:
        return None
    return agg.example_param(column) if PARAMS[param_kind(agg)] is None else PARAMS[param_kind(agg)][1]


@st.composite
def literal_param(draw, agg, column: Type):
    """A "literal" parameter: one to four distinct hostile values of the column's type, as a tuple
    (the type rule refuses what it must; then its own example stands)."""
    values = tuple(dict.fromkeys(draw(st.lists(value_of(column), min_size=1, max_size=4))))
    try:
        agg.infer(column.nullable(), values)
    except TypeRuleError:
        return agg.example_param(column)
    return values

TIME_BASES = (0, 1_700_000_000_000_000, -3 * DAY + 17)  # 1970, 2023, and before the epoch

I32 = (0, 1, -1, 7, 100_000, 2**31 - 1, -(2**31), 2**31 - 2)
I64 = (0, 1, -1, 3, -3, 2**62, -(2**62), 2**62 + 1, 2**63 - 1, -(2**63), 10**15)
# exact and binary arithmetic differ (0.1), variance cancels (1e6 + 0.5), huge next to tiny, and the
# IEEE special values, which are values like any other (docs/semantics.md, "Floating point")
F64 = (0.0, -0.0, 0.1, 0.25, -1.5, 3.3, 0.35, 2.5, 1e6, 1e6 + 0.5, 123.456, 1e300, -1e300, 1e-300, 5e-324,
       1e16, -7.0, 1.0, math.nan, math.inf, -math.inf)
F32 = tuple(float(np.float32(v)) for v in (0.0, 0.5, -1.5, 3.3, 1e30, -1e30, 1e-30, 16777217.0, 3.4e38, 0.1,
                                           math.nan, math.inf))
STRINGS = ("", "p", "q", "pq", "P", "é", "ß", "a b")
DURATIONS = (0, 1, -1, 5, 3_600_000_000, 3 * DAY + 7, -DAY)
UIDS = (1, 2, 3, 2**62, -(2**62), 2**62 + 1, 2**63 - 1, -(2**63))
REGIONS = ("a", "b", "", "é")


# --------------------------------------------------------------------------- what the registry accepts


# Registered operators no program can reach yet, with the reason; each is still checked engine
# against reference elsewhere.  The suite draws every other operator.
UNREACHABLE = {
    "assignment": "its argument is an experiment spec only the compiler writes, and `assignment(NAME)` is not "
                  "wired into features yet (tests/ops/test_assignment.py checks numpy and Polars against the "
                  "reference and hand-computed hashes)",
    **{op: "its operands are vectors, which the random programs do not draw (tests/ops/test_vectors.py checks "
          "every engine against the reference and scipy)" for op in ("dot", "norm", "euclidean", "manhattan",
                                                                   "cosine", "normalize", "vector+", "vector-",
                                                                   "vector*", "number*vector")},
    **{op: "its statistics are literals only a pinned fit writes (`astra fit`); tests/ops/test_transforms.py and "
          "test_transforms_engines.py check every engine against the reference and scikit-learn"
       for op in ("fitted.scale", "fitted.bins", "fitted.vocab", "fitted.impute", "fitted.target",
                  "fitted.target_oof", "fitted.one_hot")},
}


def _scalar_signatures() -> dict[str, list[tuple[tuple[Type, ...], Type, Type | None]]]:
    """op -> every (argument types, result type, cast target) its type rule accepts, over the
    scalar and list types (non-null); literal positions only take what a literal can be."""
    sigs: dict[str, list] = defaultdict(list)
    pool = SCALAR_TYPES + LIST_TYPES
    for name, op in sorted(SCALARS.items()):
        if name in UNREACHABLE:
            continue
        if name == "cast":  # the target lives in the node's type, not in an argument
            for src, to in itertools.product(SCALAR_TYPES, SCALAR_TYPES):
                with contextlib.suppress(TypeRuleError):
                    sigs[name].append(((src,), cast_result(src, to), to))
            continue
        for n in range(op.arity[0], op.arity[1] + 1):
            positions = []
            for i in range(n):
                if i in op.literal_args:
                    positions.append(LITERAL_TYPES.get(name, {}).get(i, (INT64,)))
                else:
                    positions.append(pool)
            for args in itertools.product(*positions):
                with contextlib.suppress(TypeRuleError):
                    sigs[name].append((args, op.infer(args), None))
    return dict(sigs)


def _aggregate_signatures() -> dict[str, list[tuple[str | None, Type]]]:
    """aggregation -> every (column of `ev` or None for rows, result type) its type rule accepts."""
    sigs: dict[str, list] = {}
    for name, agg in sorted(AGGREGATIONS.items()):
        options = [None] if agg.column == "optional" else []
        options += sorted(VALUE_COLUMNS)
        found = []
        for col in options:
            with contextlib.suppress(TypeRuleError):
                column = VALUE_COLUMNS[col].nullable() if col else None
                found.append((col, agg.infer(column, example_param(agg, column))))
        sigs[name] = found
    return sigs


SIGNATURES = _scalar_signatures()
AGG_SIGNATURES = _aggregate_signatures()
# non-null result type -> op -> indexes of its signatures giving that type
BY_RESULT: dict[Type, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
for _op, _sigs in SIGNATURES.items():
    for _i, (_args, _res, _to) in enumerate(_sigs):
        BY_RESULT[_res.non_null()][_op].append(_i)


def drawn_ops(plan: ir.Plan) -> set[str]:
    """Names of the scalar operators and aggregations the plan's services evaluate (`agg:count`-style
    for the latter)."""
    used = set()
    for f in plan.closure(tuple(o.feature for s in plan.services for o in s.outputs)):
        for n in ir.walk(f.expr):
            if isinstance(n, ir.Apply):
                used.add(n.op)
            elif isinstance(n, ir.Aggregate):
                used.add("agg:" + n.op)
                if n.where is not None:
                    used |= {m.op for m in ir.walk(n.where) if isinstance(m, ir.Apply)}
    return used


def registered_ops() -> set[str]:
    """Every registered scalar operator and aggregation, named as `drawn_ops` names them."""
    return (set(SCALARS) - set(UNREACHABLE)) | {"agg:" + a for a in AGGREGATIONS}


# --------------------------------------------------------------------------- the fixed declarations


def _sources() -> tuple[ir.Source, ir.Source]:
    ev_keys = tuple(ir.SourceKey(source="ev", columns=tuple(k for k, _ in ENTITY_KEYS[e])) for e in ENTITY_KEYS)
    ev = ir.Source(name="ev", kind="events", path="ev.parquet", time="ts",
                   columns=(("uid", INT64.nullable()), ("region", STRING.nullable()), ("ts", TIMESTAMP.nullable()),
                            *((c, t.nullable()) for c, t in VALUE_COLUMNS.items()), ("f64n", FLOAT64)),
                   keys=ev_keys, entities=tuple(ENTITY_KEYS))
    snap_keys = (ir.SourceKey(source="snap", columns=("holder",)),
                 ir.SourceKey(source="snap", columns=("holder", "area")))
    snap = ir.Source(name="snap", kind="snapshot", path="snap.parquet", time="at",
                     columns=(("holder", INT64.nullable()), ("area", STRING.nullable()), ("at", TIMESTAMP.nullable()),
                              *((f"v_{c}", t.nullable()) for c, t in VALUE_COLUMNS.items())),
                     keys=snap_keys, entities=tuple(ENTITY_KEYS))
    return ev, snap


EV, SNAP = _sources()
SPINE_COLUMNS = (("uid", INT64), ("region", STRING), ("ts", TIMESTAMP), *REQUEST_FIELDS)


@attrs.define
class Case:
    """A plan with one service `svc@v1`, source tables as row dicts in file order, and spine rows
    (entity keys, query time `ts`, request fields)."""

    plan: ir.Plan
    tables: dict[str, list[dict]]
    spine: list[dict]
    spine_columns: tuple = SPINE_COLUMNS
    base: int = 0  # the time the data's timestamps are drawn near
    service: str = "svc"
    version: int = VERSION

    @property
    def outputs(self) -> list[ir.Output]:
        return list(self.plan.service(self.service, self.version).outputs)

    def output_types(self) -> dict[str, Type]:
        return {o.name: self.plan.feature(o.feature).type for o in self.outputs}


# --------------------------------------------------------------------------- values


def value_of(t: Type, base: int = 0):
    """A strategy for one non-null value of scalar type `t` (timestamps near `base`)."""
    match t.name:
        case "bool":
            return st.booleans()
        case "int32":
            return st.sampled_from(I32)
        case "int64":
            return st.sampled_from(I64)
        case "float32":
            return st.sampled_from(F32)
        case "float64":
            return st.sampled_from(F64)
        case "string":
            return st.sampled_from(STRINGS)
        case "duration":
            return st.sampled_from(DURATIONS)
        case "timestamp":
            edges = (0, 1, 3_599_999_999, 3_600_000_000, DAY - 1, DAY, -1)
            return st.one_of(st.integers(0, 20), st.sampled_from(edges)).map(lambda d: base + d)
    raise ValueError(t)


def nullable(s, p: float = 0.2):
    """`s` or None with probability about p."""
    if not p:
        return s
    return st.integers(0, 99).flatmap(lambda r: st.none() if r < p * 100 else s)


def literal(t: Type):
    """A strategy for a constant of scalar type `t` as the language can write it."""
    return value_of(t)


# --------------------------------------------------------------------------- plans


class _Builder:
    """Draws typed expressions for one plan."""

    def __init__(self, draw, base: int):
        self.draw, self.base = draw, base
        self.ops = sorted(SIGNATURES)
        self.rng = random.Random(draw(st.integers(0, 2**64)))
        self.defined: dict[str, list[tuple[str, Type]]] = {e: [] for e in ENTITY_KEYS}

    def pick(self, options: list):
        """One of `options`, uniformly: hypothesis's own draws crowd a few items over a short run,
        so operators are picked by a generator seeded from one draw (which still shrinks)."""
        return self.rng.choice(options)

    def window(self) -> dict:
        """An aggregate's window fields: mostly sliding or lifetime, sometimes hopping (tumbling
        when the hop is the width) or a session (docs/semantics.md, "Window kinds")."""
        width = self.draw(st.sampled_from(WINDOWS))
        kind = self.draw(st.sampled_from(("sliding",) * 6 + ("hopping", "session")))
        if kind == "session":
            return {"window": None, "gap": self.draw(st.sampled_from(GAPS))}
        if kind == "hopping" and width is not None:
            hops = sorted({h for h in (1, 2, 3, width) if h <= width})  # `width`: tumbling
            return {"window": width, "hop": self.draw(st.sampled_from(hops))}
        return {"window": width}

    def aggregate(self, entity: str, op: str | None = None, want: Type | None = None) -> tuple[ir.Expr, Type] | None:
        options = [(o, c, r) for o, sigs in AGG_SIGNATURES.items() if op in (None, o) for c, r in sigs
                   if want is None or r.non_null() == want]
        if not options:
            return None
        op, column, _ = self.draw(st.sampled_from(options))
        agg = AGGREGATIONS[op]
        ctype = VALUE_COLUMNS[column] if column else None
        param = None
        if agg.takes_param:
            drawn = PARAMS[param_kind(agg)]
            param = self.draw(st.sampled_from(drawn) if drawn is not None else literal_param(agg, ctype))
        t = agg.infer(ctype.nullable() if ctype else None, param)
        where = self.where() if self.draw(st.integers(0, 3)) == 0 else None
        key = EV.keys[list(ENTITY_KEYS).index(entity)]
        return ir.Aggregate(op=op, key=key, column=column, where=where, param=param, type=t, **self.window()), t

    def where(self) -> ir.Expr:
        e, _ = self.typed(BOOL, self.draw(st.integers(0, 2)), entity=None, row=True)
        return e

    def leaf(self, want: Type, entity: str | None, row: bool) -> tuple[ir.Expr, Type] | None:
        kinds = ["const"]
        if row:
            kinds += ["column"] * 3 if want in VALUE_COLUMNS.values() else []
        else:
            kinds += ["agg"] * 3 + ["asof", "request", "ref", "now"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "column":
            cols = [c for c, t in VALUE_COLUMNS.items() if t == want] + (["f64n"] if want == FLOAT64 else [])
            col = self.draw(st.sampled_from(cols))
            t = FLOAT64 if col == "f64n" else want.nullable()
            return ir.Column(name=col, type=t), t
        if kind == "agg":
            return self.aggregate(entity, want=want)
        if kind == "asof":
            cols = [c for c, t in VALUE_COLUMNS.items() if t == want]
            if not cols:
                return None
            key = SNAP.keys[list(ENTITY_KEYS).index(entity)]
            col = "v_" + self.draw(st.sampled_from(cols))
            return ir.AsOf(key=key, column=col, type=want.nullable()), want.nullable()
        if kind == "request":
            fields = [(f, t) for f, t in REQUEST_FIELDS if t.non_null() == want]
            if not fields:
                return None
            f, t = self.draw(st.sampled_from(fields))
            return ir.RequestInput(request="req", field=f, type=t), t
        if kind == "ref":
            refs = [(fid, t) for fid, t in self.defined[entity] if t.non_null() == want]
            if not refs:
                return None
            fid, t = self.draw(st.sampled_from(refs))
            return ir.FeatureRef(feature=fid, type=t), t
        if kind == "now":
            return (ir.Now(type=TIMESTAMP), TIMESTAMP) if want == TIMESTAMP else None
        if want.name == "list":
            return None
        return ir.Const(value=self.draw(literal(want)), type=want), want

    def typed(self, want: Type, depth: int, entity: str | None, row: bool = False) -> tuple[ir.Expr, Type]:
        """An expression whose type is `want` or `want?`."""
        for _ in range(6):
            if depth > 0 and want in BY_RESULT and self.draw(st.integers(0, 2)):
                op = self.pick(sorted(BY_RESULT[want]))
                got = self.apply(op, self.pick(BY_RESULT[want][op]), depth, entity, row)
            else:
                got = self.leaf(want, entity, row)
            if got is not None and got[1].non_null() == want:
                return got
        if want.name == "list":  # lists only come from last_k; in a row context there is no list
            return self.aggregate(entity, op="last_k", want=want)
        return ir.Const(value=self.draw(literal(want)), type=want), want

    def apply(self, op: str, i: int, depth: int, entity: str | None, row: bool) -> tuple[ir.Expr, Type] | None:
        arg_types, _, to = SIGNATURES[op][i]
        if row and any(t.name == "list" for j, t in enumerate(arg_types) if j not in SCALARS[op].literal_args):
            return None
        args = []
        for j, t in enumerate(arg_types):
            if j in SCALARS[op].literal_args:
                if t.name == "list":  # `in` items, bucketize's boundaries (sorted), ordinal's categories
                    items = self.draw(st.lists(literal(t.item), min_size=1, max_size=4, unique=True))
                    items = sorted(items) if op == "bucketize" else items
                    args.append((ir.Const(value=tuple(items), type=t), t))
                elif op in LITERAL_TYPES:  # one_hot's category, ordinal's unseen code
                    value = self.draw(st.sampled_from((-1, 1, 99, -(2**31))) if op == "ordinal" else literal(t))
                    args.append((ir.Const(value=value, type=t), t))
                else:
                    args.append((ir.Const(value=self.draw(st.integers(0, 3)), type=INT64), INT64))
            else:
                args.append(self.typed(t, depth - 1, entity, row))
        types = tuple(a[1] for a in args)
        try:
            result = cast_result(types[0], to) if op == "cast" else SCALARS[op].infer(types)
            if SCALARS[op].check_literals is not None:  # drawn boundaries or categories the checker refuses
                SCALARS[op].check_literals({j: a[0].value for j, a in enumerate(args) if j in SCALARS[op].literal_args})
        except TypeRuleError:
            return None
        return ir.Apply(op=op, args=tuple(a[0] for a in args), type=result), result

    def feature_expr(self, entity: str, focus: str | None = None) -> tuple[ir.Expr, Type]:
        """A feature's expression, rooted at `focus` (an operator name, or `agg:name`) or at a
        uniformly drawn operator, aggregation or leaf."""
        depth = self.draw(st.integers(1, 3))
        if focus is not None and focus.startswith("agg:"):
            return self.aggregate(entity, op=focus[4:])
        if focus is not None:
            for _ in range(20):  # an argument may come out optional where the rule wants it not to
                got = self.apply(focus, self.pick(range(len(SIGNATURES[focus]))), depth, entity, row=False)
                if got is not None:
                    return got
            raise AssertionError(f"cannot build a well-typed `{focus}`")
        root = self.pick(["op", "op", "op", "agg", "leaf"])
        if root == "op":
            op = self.pick(self.ops)
            got = self.apply(op, self.pick(range(len(SIGNATURES[op]))), depth, entity, row=False)
            if got is not None:
                return got
        if root == "agg":
            return self.aggregate(entity, op=self.pick(sorted(AGG_SIGNATURES)))
        return self.typed(self.draw(st.sampled_from(SCALAR_TYPES)), depth, entity)


def _declared(draw, t: Type) -> tuple[Type, object]:
    """A feature's declared type and default for an expression of type t."""
    if t.optional and t.name in ("int32", "int64", "float64", "string", "bool") and draw(st.integers(0, 3)) == 0:
        default = draw(literal(t.non_null()))
        return t.non_null(), default
    if t.name in ("int32", "int64", "float32") and draw(st.integers(0, 5)) == 0:
        return FLOAT64.nullable(t.optional), None  # a declared wider type
    return t, None


@st.composite
def plans(draw, max_features: int = 6, focus: str | None = None) -> tuple[ir.Plan, int]:
    """A well-typed plan with service `svc@v1`, and the time base its data should use; with
    `focus` (a name of `registered_ops()`), its first feature is rooted at that operator."""
    base = draw(st.sampled_from(TIME_BASES))
    b = _Builder(draw, base)
    features: dict[str, list[ir.Feature]] = {e: [] for e in ENTITY_KEYS}
    for i in range(draw(st.integers(1, max_features)) if draw(st.integers(0, 3)) else max_features):
        entity = draw(st.sampled_from(sorted(ENTITY_KEYS)))
        e, t = b.feature_expr(entity, focus if i == 0 else None)
        if t.name == "vector":
            continue
        declared, default = _declared(draw, t)
        group = GROUPS[entity]
        fid = f"{group}@v{VERSION}.f{i}"
        features[entity].append(ir.Feature(id=fid, group=group, version=VERSION, name=f"f{i}", entity=entity,
                                           expr=e, type=declared, default=default))
        b.defined[entity].append((fid, declared))
    if not any(features.values()):
        e, t = b.aggregate("user")
        features["user"].append(ir.Feature(id="gu@v1.f0", group="gu", version=VERSION, name="f0", entity="user",
                                           expr=e, type=t))
    every = [f for fs in features.values() for f in fs]
    chosen = [f for f in every if draw(st.integers(0, 4)) or (focus and f.name == "f0")] or every[-1:]
    outputs = tuple(ir.Output(name=f"out_{f.name}", feature=f.id) for f in chosen)
    entities = tuple(dict.fromkeys(f.entity for f in chosen))
    service = ir.Service(name="svc", version=VERSION, requests=("req",), entities=entities, outputs=outputs)
    groups = tuple(ir.Group(name=GROUPS[e], version=VERSION, entity=e, features=tuple(f.id for f in fs))
                   for e, fs in features.items() if fs)
    entity_nodes = tuple(ir.Entity(name=e, keys=k) for e, k in ENTITY_KEYS.items())
    # dependencies first: features only reference earlier ones, so declaration order is topological
    ordered = tuple(sorted(every, key=lambda f: int(f.name[1:])))
    plan = ir.Plan(entities=entity_nodes, sources=(EV, SNAP), requests=(ir.Request(name="req", fields=REQUEST_FIELDS),),
                   features=ordered, groups=groups, services=(service,))
    return plan, base


# --------------------------------------------------------------------------- data


@st.composite
def tables(draw, base: int, max_rows: int = 24) -> dict[str, list[dict]]:
    """Hostile rows for `ev` and `snap`, in file order."""
    # some cases crowd their rows onto 2-3 keys and 3 times, so equal-time rows of one key abound
    spread = draw(st.sampled_from([20, 2, 5]))
    times = st.integers(0, spread).map(lambda d: base + d)
    uid = st.sampled_from(draw(st.sampled_from([UIDS, UIDS[:2], (UIDS[3], UIDS[6], UIDS[7])])))
    region = st.sampled_from(REGIONS)

    def rows(n_max: int, make) -> list[dict]:
        if draw(st.integers(0, 9)) == 0:
            return []  # an empty source
        out = [make() for _ in range(draw(st.integers(1, n_max)))]
        for _ in range(draw(st.integers(0, 2))):  # exact duplicates somewhere later in the file
            j = draw(st.integers(0, len(out) - 1))
            out.insert(draw(st.integers(j, len(out))), dict(out[j]))
        return out

    magnitude = draw(st.sampled_from(["mixed", "huge_then_tiny"]))

    def ev_row() -> dict:
        row = {"uid": draw(nullable(uid, 0.1)), "region": draw(nullable(region, 0.15)),
               "ts": draw(nullable(times, 0.05))}
        for c, t in VALUE_COLUMNS.items():
            row[c] = draw(nullable(value_of(t, base), 0.15))
        row["f64n"] = draw(value_of(FLOAT64))
        return row

    ev = rows(max_rows, ev_row)
    if magnitude == "huge_then_tiny" and ev:  # huge magnitudes first (by time), tiny ones after
        for r in ev:
            if r["ts"] is not None and r["f64"] is not None:
                r["f64"] = draw(st.sampled_from([1e300, -1e300, 1e16, -1e16])) if r["ts"] - base < 8 \
                    else draw(st.sampled_from([1e-300, 0.5, -0.25, 3.0]))

    def snap_row() -> dict:
        row = {"holder": draw(nullable(uid, 0.1)), "area": draw(nullable(region, 0.15)),
               "at": draw(nullable(times, 0.05))}
        for c, t in VALUE_COLUMNS.items():
            row[f"v_{c}"] = draw(nullable(value_of(t, base), 0.15))
        return row

    return {"ev": ev, "snap": rows(max_rows // 2, snap_row)}


def _window_edges(plan: ir.Plan) -> set[int]:
    """Short widths, hops and session gaps: query times this far from events sit on their edges."""
    return {w for f in plan.features for n in ir.walk(f.expr) if isinstance(n, ir.Aggregate)
            for w in (n.window, n.hop, n.gap) if w is not None and w < 100}


@st.composite
def spine_rows(draw, plan: ir.Plan, data: dict[str, list[dict]], base: int, max_rows: int = 10) -> list[dict]:
    """Query rows: keys that occur in the data (and some that never do), times at and around
    event times and window edges (t, t - w, t - w - 1µs seen from the event)."""
    event_times = sorted({r["ts"] for r in data["ev"] if r["ts"] is not None}
                         | {r["at"] for r in data["snap"] if r["at"] is not None})
    edges = sorted({0, 1, *(w for w in _window_edges(plan)), *(w + 1 for w in _window_edges(plan))})
    known = [(r["uid"], r["region"]) for r in data["ev"] if r["uid"] is not None and r["region"] is not None]

    def query_time() -> int:
        if event_times and draw(st.booleans()):
            return draw(st.sampled_from(event_times)) + draw(st.sampled_from(edges))
        return base + draw(st.integers(0, 25))

    out = []
    for _ in range(draw(st.integers(1, max_rows))):
        if known and draw(st.integers(0, 3)):
            u, reg = draw(st.sampled_from(known))
        else:
            u, reg = draw(st.sampled_from((*UIDS, 12345))), draw(st.sampled_from(REGIONS))
        row = {"uid": u, "region": reg, "ts": query_time()}
        for f, t in REQUEST_FIELDS:
            row[f] = draw(nullable(value_of(t.non_null(), base), 0.2 if t.optional else 0))
        out.append(row)
    return out


@st.composite
def cases(draw, max_features: int = 6, max_rows: int = 24, focus: str | None = None) -> Case:
    """A random plan with hostile data and a spine (see `plans` for `focus`)."""
    plan, base = draw(plans(max_features, focus))
    data = draw(tables(base, max_rows))
    return Case(plan=plan, tables=data, spine=draw(spine_rows(plan, data, base)), base=base)
