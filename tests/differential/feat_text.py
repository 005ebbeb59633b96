"""A drawn plan written back as `.feat` source, so the differential suite can run programs through
the language front end too (parser, resolver, checker, plan builder) and not only as built IR.

The language's smallest duration unit is the second, so the written program and its data use one
second where the drawn plan used one microsecond (`scale_case`): windows, durations and times all
scale together, which keeps every window edge and tie where it was.  Programs the language cannot
spell are refused (`feat_source` returns None): timestamp and int32 constants, the int64 minimum
(the language writes a negative number as a negated literal), NaN and infinite constants.
"""

from __future__ import annotations

import math

import attrs
from strategies_plan import Case, param_kind

from astra.lang.types import BOOL, FLOAT64, INT64, STRING, Type
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.registry import SCALARS
from astra.plan import ir

SCALE = 1_000_000  # one drawn microsecond becomes one second
INFIX = {"+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "??", "in"}


class Unwritable(Exception):
    """A plan the language has no spelling for."""


def _literal(v: object, t: Type) -> str:
    if t.name == "duration":
        text = f"{abs(v) // SCALE}s"
        return f"(-{text})" if v < 0 else text
    if t.name == "timestamp":
        raise Unwritable("timestamp constant")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, int) and v <= -(2**63):
        raise Unwritable("int64 minimum")
    if isinstance(v, float) and not math.isfinite(v):
        raise Unwritable("NaN or infinite constant")
    text = repr(float(v)) if t.is_float else repr(int(v))
    return f"(-{text[1:]})" if text.startswith("-") else text


def _items(values: tuple, t: Type) -> str:
    # a negative item is written `(-1)`: the checker folds a negated literal in a list to one constant
    return "[" + ", ".join(_literal(v, t.item) for v in values) + "]"


def _natural(v: object) -> Type:
    """The type a literal of this Python value has in the language."""
    return BOOL if isinstance(v, bool) else STRING if isinstance(v, str) else FLOAT64 if isinstance(v, float) else INT64


def _param(e: ir.Aggregate) -> str:
    """An aggregation's parameter: a half-life is a duration literal, counts and fractions print
    as numbers, a "literal" one (histogram's values) as the literals it holds, a tuple as a list."""
    kind = param_kind(AGGREGATIONS[e.op])
    if kind == "duration":
        return f"{e.param // SCALE}s"
    if kind == "literal":
        if isinstance(e.param, tuple):
            return "[" + ", ".join(_literal(v, _natural(v)) for v in e.param) + "]"
        return _literal(e.param, _natural(e.param))
    return str(e.param)


def expr(e: ir.Expr, group: str) -> str:
    """`.feat` text for an expression, every operator application parenthesised."""
    match e:
        case ir.Const(type=t) if t.name == "int32":
            raise Unwritable("int32 constant")  # `5 as int32` is int32? (a checked narrowing)
        case ir.Const(value=v, type=t) if t.name == "float32":
            return f"({_literal(v, t)} as float32)"  # a literal is float64 by itself
        case ir.Const(value=v, type=t):
            return _items(v, t) if t.name == "list" else _literal(v, t)
        case ir.Now():
            return "now()"
        case ir.Column(name=n):
            return n
        case ir.RequestInput(request=r, field=f):
            return f"{r}.{f}"
        case ir.AsOf(key=k, column=c):
            return f"{k.source}.{c}"
        case ir.FeatureRef(feature=f):
            head, name = f.rsplit(".", 1)
            return name if head == group else f
        case ir.Aggregate():
            target = e.key.source + (f".{e.column}" if e.column else "")
            if e.where is not None:
                target += f" where {expr(e.where, group)}"
            args = [target]
            if e.param is not None:
                args.append(_param(e))
            if e.hop is not None:  # hop boundaries count from the epoch: scaling times about the base moves them
                raise Unwritable("hopping window")
            if e.gap is not None:
                args.append(f"session {e.gap // SCALE}s")
            elif e.window is not None:
                args.append(f"{e.window // SCALE}s")
            return f"{e.op}({', '.join(args)})"
        case ir.Apply(op=op, args=args):
            parts = [expr(a, group) for a in args]
            # the checker gives a numeric literal the narrower type of a sibling (`x ?? 0` with x
            # int32 is int32); a drawn int64/float64 constant beside one keeps its type by a cast
            narrow = any(not isinstance(a, ir.Const) and a.type.name in ("int32", "float32") for a in args)
            fixed = SCALARS[op].literal_args if op in SCALARS else ()
            parts = [f"({p} as {a.type.non_null()})"
                     if narrow and i not in fixed and isinstance(a, ir.Const) and a.value is not None
                     and a.type.name in ("int64", "float64") else p
                     for i, (a, p) in enumerate(zip(args, parts, strict=True))]
            if op in INFIX:
                return f"({parts[0]} {op} {parts[1]})"
            if op == "neg":
                return f"(-{parts[0]})"
            if op == "not":
                return f"(not {parts[0]})"
            if op == "if":
                return f"(if {parts[0]} then {parts[1]} else {parts[2]})"
            if op == "cast":
                return f"({parts[0]} as {e.type.non_null()})"
            return f"{'length' if op == 'list_length' else op}({', '.join(parts)})"
    raise TypeError(e)


def _fields(fields) -> str:
    return " ".join(f"{n}: {t}" for n, t in fields)


def feat_source(plan: ir.Plan) -> str | None:
    """The whole plan as one `.feat` file, or None when the language cannot spell it."""
    out = []
    try:
        for ent in plan.entities:
            out.append(f"entity {ent.name} {{ " + " ".join(f"key {k}: {t}" for k, t in ent.keys) + " }")
        for src in plan.sources:
            bindings = []
            for ent_name, key in zip(src.entities, src.keys):
                names = [k for k, _ in plan.entity(ent_name).keys]
                renamed = [f"{k} = {c}" for k, c in zip(names, key.columns) if k != c]
                bindings.append(ent_name + (f"({', '.join(renamed)})" if renamed else ""))
            columns = _fields((n, t) for n, t in src.columns if n != src.time)
            out.append(f"{src.kind} {src.name} for {', '.join(bindings)} {{\n    path \"{src.path}\"\n"
                       f"    time {src.time}\n    columns {{ {columns} }}\n}}")
        for req in plan.requests:
            out.append(f"request {req.name} {{ {_fields(req.fields)} }}")
        for g in plan.groups:
            lines = []
            for fid in g.features:
                f = plan.feature(fid)
                default = "" if f.default is None else f" default {_default(f.default, f.type)}"
                lines.append(f"    {f.name}: {f.type} = {expr(f.expr, g.id)}{default}")
            out.append(f"features {g.name} v{g.version} for {g.entity} {{\n" + "\n".join(lines) + "\n}")
        for s in plan.services:
            outs = "\n".join(f"    {o.feature} as {o.name}" for o in s.outputs)
            reqs = "".join(f"    request {r}\n" for r in s.requests)
            out.append(f"service {s.name} v{s.version} {{\n{reqs}{outs}\n}}")
    except Unwritable:
        return None
    return "\n\n".join(out) + "\n"


def _default(v: object, t: Type) -> str:
    text = _literal(v, t)
    return "-" + text[2:-1] if text.startswith("(-") else text


def scale_case(case: Case) -> Case:
    """The case with every duration and window multiplied by SCALE, and every time's distance
    from the case's base time too (so times of 2023 stay in range)."""
    plan, base = case.plan, case.base

    def scale(v: int, t: Type) -> int:
        return (v - base) * SCALE + base if t.name == "timestamp" else v * SCALE

    def scale_expr(e: ir.Expr) -> ir.Expr:
        if isinstance(e, ir.Const) and e.type.name in ("duration", "timestamp"):
            return attrs.evolve(e, value=scale(e.value, e.type))
        if isinstance(e, ir.Aggregate):
            duration = e.param is not None and param_kind(AGGREGATIONS[e.op]) == "duration"
            return attrs.evolve(e, window=None if e.window is None else e.window * SCALE,
                                gap=None if e.gap is None else e.gap * SCALE,
                                param=e.param * SCALE if duration else e.param,
                                where=None if e.where is None else scale_expr(e.where))
        if isinstance(e, ir.Apply):
            return attrs.evolve(e, args=tuple(scale_expr(a) for a in e.args))
        return e

    def scale_row(row: dict, types: dict[str, Type]) -> dict:
        return {k: scale(v, types[k]) if v is not None and types.get(k) is not None
                and types[k].name in ("timestamp", "duration") else v for k, v in row.items()}

    features = tuple(attrs.evolve(f, expr=scale_expr(f.expr)) for f in plan.features)
    tables = {s.name: [scale_row(r, dict(s.columns)) for r in case.tables[s.name]] for s in plan.sources}
    spine = [scale_row(r, dict(case.spine_columns)) for r in case.spine]
    return attrs.evolve(case, plan=attrs.evolve(plan, features=features), tables=tables, spine=spine)
