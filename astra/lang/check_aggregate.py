"""Checking `count(transactions where amount > 100, 7d)` and friends: the only way to read events.

Shape: `agg(source[.column] [where filter] [, k] [, window])`; `k` is last_k's integer, the window
a positive duration literal, no window meaning the source's whole history before t.
"""

from __future__ import annotations

import attrs

from astra.diagnostics import Collector, did_you_mean, rename_fix
from astra.lang import ast
from astra.lang.check import Scope, _column, _folded, _list_const, _source_key, check_expr, literal
from astra.lang.types import FLOAT64, STRING, Type
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.registry import TypeRuleError
from astra.plan import ir
from astra.times import format_duration

_DEFAULT_CODE = TypeRuleError("").code  # a type rule that names no code of its own


def check_aggregate(e: ast.Call, scope: Scope, diags: Collector) -> ir.Expr | None:
    """Check an aggregation call and lower it to an `ir.Aggregate`."""
    agg = AGGREGATIONS[e.func.value]
    fn = agg.name
    if scope.row_source is not None:
        diags.error("E0306", f"`{fn}` cannot appear inside a `where` filter", e.span,
                    help="a filter tests one row at a time")
        return None
    if not e.args or not isinstance(e.args[0], ast.Ref) or len(e.args[0].parts) > 2:
        first = e.args[0].span if e.args else e.span
        diags.error("E0209", f"`{fn}` takes a source or `source.column` first", first,
                    help=f"e.g. `{fn}(transactions.amount, 7d)`" if agg.column == "required" else
                    f"e.g. `{fn}(transactions, 7d)`")
        return None
    target: ast.Ref = e.args[0]
    source = scope.syms.sources.get(target.parts[0].value)
    if source is None:
        diags.error("E0102", f"unknown source `{target.parts[0].value}`", target.parts[0].span,
                    help=did_you_mean(target.parts[0].value, scope.syms.sources), about=(target.parts[0].value,),
                    fix=rename_fix(target.parts[0].value, target.parts[0].span, scope.syms.sources))
        return None
    if source.decl.kind != "events":
        diags.error("E0302", f"`{fn}` aggregates events; `{source.decl.name.value}` is a snapshot", target.span,
                    help=f"read a snapshot as of t: `{target.dotted}`" if len(target.parts) == 2 else
                    "read a snapshot column as of t: `source.column`")
        return None
    key = _source_key(source, target.parts[0], scope, diags)
    column_type = None
    column = None
    if len(target.parts) == 2:
        column = target.parts[1].value
        column_type = _column(source, target.parts[1], diags)
        if column_type is None:
            return None
    elif agg.column == "required":
        diags.error("E0209", f"`{fn}` needs a column: `{fn}({target.dotted}.column, ...)`", target.span)
        return None
    where = _where(e, source, scope, diags)
    param_at = e.args[1] if len(e.args) > 1 and agg.takes_param else None  # where a rule blaming it points
    param, window = _params(e, agg, diags)
    if key is None or where is False or param is False or window is False:
        return None
    param_type = None
    if isinstance(param, ir.Const):  # a "literal" parameter: its value, and its type for the rule
        param, param_type = param.value, param.type
    try:
        if param_type is not None:
            agg.check_param_type(column_type, param_type)
        out = agg.infer(column_type, param)
    except TypeRuleError as err:
        at, label = (target.span, f"this is `{column_type}`") if err.arg == 0 else (e.span, "")
        if err.arg == 1 and param_type is not None:
            at, label = param_at.span, f"this is `{param_type}`"
        # a rule's own code (a "literal" parameter's), else E0203: the input does not fit
        code = err.code if err.code != _DEFAULT_CODE else "E0203"
        diags.error(code, err.message, at, label=label, help=err.help or _agg_help(agg, param, source))
        return None
    if getattr(agg, "vector_width_param", False) and column_type is not None and column_type.name == "vector":
        param = column_type.size  # the engines' kernels tell a vector mean by it (astra.ops.vectors)
    return ir.Aggregate(op=fn, key=key, column=column, where=where, param=param, type=out, span=e.span,
                        **window)


def _where(e: ast.Call, source, scope: Scope, diags: Collector):
    if e.where is None:
        return None
    row_scope = attrs.evolve(scope, row_source=source)
    cond = check_expr(e.where, row_scope, diags)
    if cond is None:
        return False
    if cond.type.name != "bool":
        diags.error("E0201", f"a `where` filter must be a bool, got `{cond.type}`", e.where.span)
        return False
    return cond


def _params(e: ast.Call, agg, diags: Collector):
    rest = list(e.args[1:])
    param = None
    if agg.takes_param:
        param = _param(e, rest, agg, diags)
        if param is False:
            return False, False
    window: dict = {"window": None}
    if rest:
        window = _window(rest.pop(0), agg, diags)
        if window is False:
            return param, False
    if rest:
        diags.error("E0202", f"`{agg.name}` got {len(rest)} extra argument(s)", rest[0].span)
        return param, False
    return param, window


def _window(w: ast.Expr, agg, diags: Collector) -> dict | bool:
    """The `ir.Aggregate` window fields of a window argument (docs/semantics.md, "Window kinds"),
    or False after a diagnostic."""
    if not (isinstance(w, ast.Literal) and w.kind in ("duration", "window")):
        diags.error("E0303", f"the window of `{agg.name}` must be a duration such as `7d` or `1h`", w.span,
                    help="leave the window out to aggregate the whole history before t; other kinds: "
                    "`7d every 1h`, `tumbling 1d`, `session 30m`")
        return False
    kind, size, hop = ("sliding", w.value, None) if w.kind == "duration" else w.value
    if kind == "session":
        if size <= 0:
            diags.error("E0309", "a session gap must be positive", w.span, label="no gap",
                        help="rows closer than the gap share a session, e.g. `session 30m`")
            return False
        return {"window": None, "gap": size}
    if size <= 0:
        diags.error("E0303", "a window must be positive", w.span, label="empty window")
        return False
    if kind == "tumbling":
        return {"window": size, "hop": size}
    if kind == "hopping":
        if hop <= 0 or hop > size:
            diags.error("E0308", f"a hop must be positive and at most the window ({format_duration(size)})", w.span,
                        label="hop longer than the window" if hop > 0 else "no hop",
                        help="a longer hop would skip events between windows; `tumbling` is a hop equal to "
                        "the window")
            return False
        return {"window": size, "hop": hop}
    return {"window": size}


def _param(e: ast.Call, rest: list, agg, diags: Collector):
    """The literal after the column (popped from `rest`): last_k's count, percentile's fraction
    q (E0210), exp_decay_sum's half-life (E0211), or a "literal": any literal or list of literals,
    returned as its `ir.Const` (a list's value a tuple), which the aggregation's type rules check
    (`check_param_type`, then `infer` on the value); False after a diagnostic."""
    kind = agg.param_kind
    got = rest[0] if rest and isinstance(rest[0], ast.Literal) else None
    where = rest[0].span if rest else e.span
    if kind == "literal":
        arg = _folded(rest[0]) if rest else None
        if isinstance(arg, ast.ListLit):
            const = _list_const(arg, diags, f"the list of `{agg.name}`")
        elif isinstance(arg, ast.Literal) and arg.kind != "window":
            const = literal(arg)
        else:
            diags.error("E0207", f"`{agg.name}` needs literal {agg.param_name()} after the column, "
                        f"e.g. `{agg.name}(src.col, {agg.param_text(agg.example_param(None))}, 7d)`", where,
                        label="not a literal")
            return False
        if const is None:
            return False
        rest.pop(0)
        return const
    if kind == "fraction":
        if got is None or got.kind not in ("float", "int") or not 0 <= got.value <= 1:
            diags.error("E0210", f"`{agg.name}` needs a fraction q in [0, 1] after the column, "
                        f"e.g. `{agg.name}(src.col, 0.9, 7d)`", where, label="not a fraction in [0, 1]")
            return False
        rest.pop(0)
        return float(got.value)
    if kind == "duration":
        if got is None or got.kind != "duration" or got.value <= 0:
            diags.error("E0211", f"`{agg.name}` needs a positive half-life duration after the column, "
                        f"e.g. `{agg.name}(src.col, 1h, 7d)`", where, label="not a positive duration")
            return False
        return rest.pop(0).value
    if got is None or got.kind != "int":
        diags.error("E0209", f"`{agg.name}` needs an integer count after the column, "
                    f"e.g. `{agg.name}(src.col, 5, 7d)`", where)
        return False
    return rest.pop(0).value


def _agg_help(agg, param, source) -> str:
    """For an aggregation of numbers only (its type rule takes a float column, not a string
    one), the source's numeric columns."""
    numeric = [c for c, t in source.columns.items() if t.is_numeric]
    if numeric and _takes(agg, FLOAT64, param) and not _takes(agg, STRING, param):
        return f"numeric columns of `{source.decl.name.value}`: {', '.join(numeric)}"
    return ""


def _takes(agg, column: Type, param) -> bool:
    """Whether the type rule accepts a column of this type (a refused parameter is not the column's fault)."""
    try:
        agg.infer(column, param)
    except TypeRuleError as err:
        return err.arg != 0
    return True



