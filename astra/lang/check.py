"""Type and time checking of feature expressions, lowering each to typed IR.

One function per expression form.  A failed check reports a diagnostic and returns `None`;
callers propagate `None` without reporting again, so each mistake is reported once.
Time safety is structural: an events column can only be reached through an aggregation
(whose visibility and window are IR fields), a snapshot only through an as-of lookup.
"""

from __future__ import annotations

import attrs

from astra.diagnostics import Collector, Edit, did_you_mean, insert_at, rename_fix
from astra.lang import ast
from astra.lang.check_transform import check_transform, is_fitted_call
from astra.lang.resolve import BoundSource, Symbols
from astra.lang.types import BOOL, DURATION, FLOAT64, INT64, NULL, STRING, TIMESTAMP, Type, widen
from astra.ops import functions as _functions  # noqa: F401  (registers the built-in functions)
from astra.ops import vectors
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.registry import SCALARS, TypeRuleError
from astra.ops.scalars import cast_result
from astra.plan import ir

# Operators spelled as symbols or keywords are not callable by name.
INTERNAL_OPS = {"neg", "not", "and", "or", "??", "if", "cast", "in", "list_length", "is_null",
                "assignment"}  # `assignment` takes an experiment spec the checker builds, not user text
FUNCTIONS = sorted({name for name in SCALARS if name.isidentifier()} - INTERNAL_OPS | {"now", "is_null"})
LITERAL_TYPES = {"int": INT64, "float": FLOAT64, "string": STRING, "bool": BOOL, "null": NULL,
                 "duration": DURATION}


@attrs.frozen
class Scope:
    """What names mean where an expression is checked."""

    group: ast.Group
    syms: Symbols
    feature_types: dict[str, dict[str, Type]]  # group id -> feature -> declared type
    row_source: BoundSource | None = None  # set inside an aggregation's `where`
    feature: str = ""  # the feature being checked: never suggested to itself (a cycle)

    @property
    def group_id(self) -> str:
        return f"{self.group.name.value}@v{self.group.version}"


def check_expr(e: ast.Expr, scope: Scope, diags: Collector) -> ir.Expr | None:
    """Type-check one expression and lower it to IR."""
    match e:
        case ast.Literal(kind="window"):
            diags.error("E0303", f"`{e.text}` is a window: only an aggregation's last argument can be one", e.span)
            return None
        case ast.Literal():
            return literal(e)
        case ast.Ref():
            return _ref(e, scope, diags)
        case ast.GroupRef():
            return _group_ref(e, scope, diags)
        case ast.Call():
            return _call(e, scope, diags)
        case ast.Binary(op="in"):
            return _in(e, scope, diags)
        case ast.Binary():
            return _apply(e.op, (e.left, e.right), e, scope, diags)
        case ast.Unary():
            return _apply("neg" if e.op == "-" else "not", (e.operand,), e, scope, diags)
        case ast.If():
            return _apply("if", (e.cond, e.then, e.else_), e, scope, diags)
        case ast.Cast():
            return _cast(e, scope, diags)
        case ast.ListLit():
            diags.error("E0201", "a list literal can only appear on the right of `in` or as a function's "
                        "literal argument, e.g. `bucketize(x, [0, 10])`", e.span)
            return None
    raise TypeError(f"unexpected node {e!r}")


def literal(e: ast.Literal) -> ir.Const:
    """A literal's IR constant with its natural type (int64, float64, ...)."""
    return ir.Const(value=e.value, type=LITERAL_TYPES[e.kind], span=e.span)


# --------------------------------------------------------------------------- names


def _ref(e: ast.Ref, scope: Scope, diags: Collector) -> ir.Expr | None:
    head, *rest = e.parts
    if scope.row_source is not None:
        return _row_column(e, scope, diags)
    if not rest:
        return _local_feature(head, scope, diags)
    if len(rest) > 1:
        diags.error("E0103", f"`{e.dotted}` has too many parts", e.span,
                    help="write `source.column`, `request.field` or a feature name")
        return None
    (field,) = rest
    if head.value in scope.syms.requests:
        return _request_field(head, field, scope, diags)
    source = scope.syms.sources.get(head.value)
    if source is None:
        known = [*scope.syms.sources, *scope.syms.requests]
        diags.error("E0102", f"unknown source or request `{head.value}`", head.span,
                    help=did_you_mean(head.value, known), about=(head.value,),
                    fix=rename_fix(head.value, head.span, known))
        return None
    if source.decl.kind == "events":
        diags.error("E0301", f"events source `{head.value}` can only be read through an aggregation",
                    e.span, label="read outside an aggregation",
                    help=f"aggregate it over a window, e.g. `last({e.dotted}, 7d)` or `count({head.value}, 1d)`",
                    fix=(Edit(span=e.span, text=f"last({e.dotted}, 7d)"),))
        return None
    column = _column(source, field, diags)
    key = _source_key(source, head, scope, diags)
    if column is None or key is None:
        return None
    # an as-of lookup may find no row before t: always optional
    return ir.AsOf(key=key, column=field.value, type=column.nullable(), span=e.span)


def _local_feature(name: ast.Name, scope: Scope, diags: Collector) -> ir.Expr | None:
    features = scope.feature_types[scope.group_id]
    if name.value in features:
        return ir.FeatureRef(feature=f"{scope.group_id}.{name.value}", type=features[name.value], span=name.span)
    source = scope.syms.sources.get(name.value)
    if source is not None:
        how = "aggregation such as `count(...)`" if source.decl.kind == "events" else "as-of lookup `src.column`"
        code = "E0301" if source.decl.kind == "events" else "E0302"
        diags.error(code, f"`{name.value}` is a source; read it through an {how}", name.span)
        return None
    others = [n for n in features if n != scope.feature]
    diags.error("E0104", f"unknown feature `{name.value}` in `{scope.group_id}`", name.span,
                label="not defined in this group", help=did_you_mean(name.value, others),
                fix=rename_fix(name.value, name.span, others),
                about=(scope.group.name.value,))
    return None


def _group_ref(e: ast.GroupRef, scope: Scope, diags: Collector) -> ir.Expr | None:
    group = lookup_group(e.group, e.version, e.span, scope.syms, diags)
    if group is None:
        return None
    gid = f"{e.group.value}@v{e.version}"
    features = scope.feature_types[gid]
    if e.feature.value not in features:
        diags.error("E0104", f"`{gid}` has no feature `{e.feature.value}`", e.feature.span,
                    help=did_you_mean(e.feature.value, features), about=(e.group.value,),
                    fix=rename_fix(e.feature.value, e.feature.span, features))
        return None
    if group.entity.value != scope.group.entity.value:
        diags.error("E0307", f"`{gid}` is a group of entity `{group.entity.value}`, not "
                    f"`{scope.group.entity.value}`", e.span,
                    help="a feature can only read features of the same entity")
        return None
    return ir.FeatureRef(feature=f"{gid}.{e.feature.value}", type=features[e.feature.value], span=e.span)


def lookup_group(name: ast.Name, version: int, span, syms: Symbols, diags: Collector) -> ast.Group | None:
    """The group `name@vN`, or None after reporting E0105/E0106 with what exists."""
    group = syms.groups.get((name.value, version))
    if group is not None:
        return group
    versions = syms.group_versions(name.value)
    if versions:
        listed = ", ".join(f"v{v}" for v in versions)
        diags.error("E0106", f"`{name.value}` has no version v{version}", span,
                    label="unknown version", help=f"available versions: {listed}", about=(name.value,))
    else:
        diags.error("E0105", f"unknown feature group `{name.value}`", name.span,
                    help=did_you_mean(name.value, syms.group_names()), about=(name.value,),
                    fix=rename_fix(name.value, name.span, syms.group_names()))
    return None



def _request_field(head: ast.Name, field: ast.Name, scope: Scope, diags: Collector) -> ir.Expr | None:
    request = scope.syms.requests[head.value]
    fields = {f.name.value: f.type.type for f in request.fields}
    if field.value not in fields:
        diags.error("E0103", f"request `{head.value}` has no field `{field.value}`", field.span,
                    help=did_you_mean(field.value, fields), fix=rename_fix(field.value, field.span, fields))
        return None
    return ir.RequestInput(request=head.value, field=field.value, type=fields[field.value],
                           span=head.span.to(field.span))


def _column(source: BoundSource, name: ast.Name, diags: Collector) -> Type | None:
    t = source.columns.get(name.value)
    if t is None:
        diags.error("E0103", f"source `{source.decl.name.value}` has no column `{name.value}`", name.span,
                    label="unknown column", help=did_you_mean(name.value, source.columns),
                    fix=rename_fix(name.value, name.span, source.columns))
    return t


def _source_key(source: BoundSource, at: ast.Name, scope: Scope, diags: Collector) -> ir.SourceKey | None:
    entity = scope.group.entity.value
    columns = source.keys.get(entity)
    if columns is None:
        keyed = ", ".join(source.keys) or "no entity"
        help, fix = _keyed_by_help(source, entity, scope)
        diags.error("E0304", f"source `{source.decl.name.value}` is not keyed by entity `{entity}`", at.span,
                    label=f"keyed by {keyed}", help=help, fix=fix)
        return None
    return ir.SourceKey(source=source.decl.name.value, columns=columns)


def _keyed_by_help(source: BoundSource, entity: str, scope: Scope) -> tuple[str, tuple[Edit, ...]]:
    """E0304's hint: `entity` added to the source's `for` list, with any key column the source lacks
    added to its columns."""
    decl = source.decl
    keys = scope.syms.entities[entity].keys if entity in scope.syms.entities else ()
    if not decl.entities or not decl.columns or not keys:
        return f"add `{entity}` to the `for` list of `{decl.name.value}`", ()
    bad = [k for k in keys if k.name.value in source.columns
           and source.columns[k.name.value].non_null() != k.type.type.non_null()]
    if bad:
        return (f"add `{entity}` to the `for` list of `{decl.name.value}`, mapping its keys to columns: "
                f"`{entity}({bad[0].name.value} = column)`"), ()
    lacking = [k for k in keys if k.name.value not in source.columns]
    fix = [insert_at(decl.entities[-1].span, f", {entity}", after=True)]
    help = f"add `{entity}` to its `for` list: `for {', '.join([*source.keys, entity])}`"
    if lacking:
        listed = "  ".join(f"{k.name.value}: {k.type.type}" for k in lacking)
        fix.append(insert_at(decl.columns[0].span, listed + "  "))
        help += f", and its key column{'s' * (len(lacking) > 1)} to its columns: `{listed}`"
    return help, tuple(fix)


def _row_column(e: ast.Ref, scope: Scope, diags: Collector) -> ir.Expr | None:
    """Inside `where`, names are columns of the aggregated source's row."""
    source = scope.row_source
    parts = [p.value for p in e.parts]
    if len(parts) == 2 and parts[0] == source.decl.name.value:
        parts = parts[1:]
    if len(parts) != 1:
        diags.error("E0306", f"`{e.dotted}` is not a column of `{source.decl.name.value}`", e.span,
                    help="a `where` filter can only read the aggregated source's own columns")
        return None
    t = _column(source, e.parts[-1], diags)
    return None if t is None else ir.Column(name=parts[0], type=t, span=e.span)


# --------------------------------------------------------------------------- operators and functions


def _apply(op: str, args: tuple[ast.Expr, ...], at, scope: Scope, diags: Collector) -> ir.Expr | None:
    lowered = [check_expr(a, scope, diags) for a in args]
    if any(x is None for x in lowered):
        return None
    vector = vectors.routed(op, tuple(x.type for x in lowered))
    if vector is not None:  # `+ - *` over vectors: element-wise, or a vector times a number
        op, order = vector
        lowered, args = [lowered[i] for i in order], tuple(args[i] for i in order)
    return apply_op(op, tuple(lowered), args, at.span, diags)


def apply_op(op: str, lowered: tuple[ir.Expr, ...], args: tuple, span, diags: Collector,
             name: str | None = None) -> ir.Expr | None:
    """Type-check a registry operator applied to lowered arguments and build its IR node."""
    spec = SCALARS[op]
    shown = name or op
    lo, hi = spec.arity
    if not lo <= len(lowered) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        diags.error("E0202", f"`{shown}` takes {want} argument(s), got {len(lowered)}", span)
        return None
    for i in spec.literal_args:
        if i < len(lowered) and not isinstance(lowered[i], ir.Const):
            diags.error("E0207", f"argument {i + 1} of `{shown}` must be a literal", args[i].span)
            return None
    lowered = adapt_literals(lowered)
    try:
        out = spec.infer(tuple(x.type for x in lowered))
        if spec.check_literals is not None:  # the values of literal arguments (sorted bounds, distinct items)
            spec.check_literals({i: lowered[i].value for i in spec.literal_args if i < len(lowered)})
    except TypeRuleError as err:
        where = args[err.arg].span if err.arg is not None and err.arg < len(args) else span
        label = f"this is `{lowered[err.arg].type}`" if err.arg is not None and err.arg < len(args) else ""
        diags.error(err.code, err.message, where, label=label, help=err.help)
        return None
    return ir.Apply(op=op, args=lowered, type=out, span=span)


def fits(value: object, t: Type) -> bool:
    """Can a numeric literal be given the narrower type `t` exactly?"""
    if t.name == "int32":
        return isinstance(value, int) and -(2**31) <= value < 2**31
    return t.name == "float32" and isinstance(value, float)


def adapt_literals(args: tuple[ir.Expr, ...]) -> tuple[ir.Expr, ...]:
    """Numeric literals take the narrower type of their sibling: `tier ?? 0` stays `int32`."""
    narrow = next((a.type for a in args if not isinstance(a, ir.Const) and a.type.name in ("int32", "float32")),
                  None)
    if narrow is None:
        return args
    out = []
    for a in args:
        if isinstance(a, ir.Const) and a.type.is_numeric and fits(a.value, narrow):
            a = attrs.evolve(a, type=narrow.non_null())
        out.append(a)
    return tuple(out)


def _folded(e: ast.Expr) -> ast.Expr:
    """A negated number literal (`-1`, `-(2.5)`) as one literal; anything else as it is."""
    if isinstance(e, ast.Unary) and e.op == "-":
        inner = _folded(e.operand)
        if isinstance(inner, ast.Literal) and inner.kind in ("int", "float", "duration"):
            return attrs.evolve(inner, value=-inner.value, text="-" + inner.text, span=e.span)
    return e


def _list_const(e: ast.ListLit, diags: Collector, what: str) -> ir.Const | None:
    """A list literal of non-null literals of one type as a constant tuple (`what` names its place)."""
    items = [_folded(i) for i in e.items]
    if not all(isinstance(i, ast.Literal) for i in items):
        diags.error("E0207", f"{what} must be a list of literals, e.g. `[1, 2]`", e.span)
        return None
    consts = [literal(i) for i in items]
    item_type = NULL
    for i in consts:
        item_type = widen(item_type, i.type) if item_type is not None else None
    if item_type is None or any(i.value is None for i in consts):
        diags.error("E0201", f"the items of {what} must be non-null and of one type", e.span)
        return None
    return ir.Const(value=tuple(i.value for i in consts), type=Type.list_of(item_type.non_null()), span=e.span)


def _literal_arg(e: ast.Expr, fn: str, i: int, scope: Scope, diags: Collector) -> ir.Expr | None:
    """An argument at a literal position of function `fn`: a list literal or a (negated) literal
    becomes a constant; anything else is checked as usual (apply_op then asks for a literal)."""
    e = _folded(e)
    if isinstance(e, ast.ListLit):
        return _list_const(e, diags, f"argument {i + 1} of `{fn}`")
    return literal(e) if isinstance(e, ast.Literal) and e.kind != "window" else check_expr(e, scope, diags)


def _in(e: ast.Binary, scope: Scope, diags: Collector) -> ir.Expr | None:
    left = check_expr(e.left, scope, diags)
    if not isinstance(e.right, ast.ListLit) or not all(isinstance(_folded(i), ast.Literal) for i in e.right.items):
        diags.error("E0207", "`in` needs a list of literals on its right, e.g. `x in [1, 2]`", e.right.span)
        return None
    values = _list_const(e.right, diags, "an `in` list")
    if left is None or values is None:
        return None
    return apply_op("in", (left, values), (e.left, e.right), e.span, diags)


def _cast(e: ast.Cast, scope: Scope, diags: Collector) -> ir.Expr | None:
    inner = check_expr(e.expr, scope, diags)
    if inner is None:
        return None
    try:
        out = cast_result(inner.type, e.to.type)
    except TypeRuleError as err:
        diags.error("E0208", err.message, e.span, label=f"this is `{inner.type}`")
        return None
    return ir.Apply(op="cast", args=(inner,), type=out, span=e.span)


def _call(e: ast.Call, scope: Scope, diags: Collector) -> ir.Expr | None:
    fn = e.func.value
    if fn in AGGREGATIONS:
        from astra.lang.check_aggregate import check_aggregate  # it builds on this module's helpers

        return check_aggregate(e, scope, diags)
    if e.where is not None:
        diags.error("E0306", f"`where` filters belong to aggregations, not to `{fn}`", e.where.span)
        return None
    if fn == "assignment":
        return _assignment(e, scope, diags)
    if fn == "now":
        if e.args:
            diags.error("E0202", "`now` takes no arguments", e.span)
            return None
        return ir.Now(type=TIMESTAMP, span=e.span)
    if is_fitted_call(e):  # standard_scale(x), impute(x, mean), ...: statistics come from `astra fit`
        return check_transform(e, scope, diags)
    if fn not in FUNCTIONS:
        known = [f for f in [*FUNCTIONS, *AGGREGATIONS] if f != "now" or not e.args]  # `now` takes none
        diags.error("E0108", f"unknown function `{fn}`", e.func.span, label="not a function",
                    help=did_you_mean(fn, known), fix=rename_fix(fn, e.func.span, known))
        return None
    fixed = SCALARS[fn].literal_args if fn in SCALARS else ()
    lowered = [_literal_arg(a, fn, i, scope, diags) if i in fixed else check_expr(a, scope, diags)
               for i, a in enumerate(e.args)]
    if any(x is None for x in lowered):
        return None
    op = "list_length" if fn == "length" and lowered and lowered[0].type.name == "list" else fn
    return apply_op(op, tuple(lowered), e.args, e.span, diags, name=fn)


def _assignment(e: ast.Call, scope: Scope, diags: Collector) -> ir.Expr | None:
    """`assignment(experiment)`: the arm of the feature group's entity in the experiment, null
    when the unit is not in it.  The unit key and the experiment's assignment spec become the
    two arguments of the `assignment` operator, so both engines hash exactly the same text."""
    syms = scope.syms
    if len(e.args) != 1 or not isinstance(e.args[0], ast.Ref) or len(e.args[0].parts) != 1:
        diags.error("E0705", "`assignment` takes the name of one experiment, e.g. `assignment(checkout_test)`",
                    e.args[0].span if e.args else e.span)
        return None
    name = e.args[0].parts[0]
    decl = syms.experiments.get(name.value)
    if decl is None:
        diags.error("E0705", f"unknown experiment `{name.value}`", name.span, label="not an experiment",
                    help=did_you_mean(name.value, syms.experiments), fix=rename_fix(name.value, name.span,
                                                                                    list(syms.experiments)))
        return None
    spec = syms.assignments.get(name.value)
    if spec is None:  # the declaration's own errors are reported where it is written
        return None
    entity = scope.group.entity.value
    if decl.unit is None or decl.unit.value != entity:
        diags.error("E0706", f"`{name.value}` assigns `{decl.unit.value if decl.unit else '?'}` units, "
                    f"but this group's features are about `{entity}`", e.span,
                    help=f"use the experiment in a group `for {decl.unit.value if decl.unit else entity}`")
        return None
    keys = syms.entities[entity].keys
    if len(keys) != 1 or keys[0].type.type.name not in ("string", "int64", "int32"):
        diags.error("E0706", f"an experiment unit needs one string or integer key; `{entity}` has "
                    + ", ".join(f"`{k.name.value}: {k.type.type}`" for k in keys), e.span)
        return None
    key = ir.EntityKey(entity=entity, field=keys[0].name.value, type=keys[0].type.type.non_null(), span=e.span)
    text = ir.Const(value=spec.text(), type=STRING, span=e.span)
    return ir.Apply(op="assignment", args=(key, text), type=STRING.nullable(), span=e.span)

