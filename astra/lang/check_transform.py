"""Checking fitted transform calls: `standard_scale(x)`, `min_max_scale(x)`, `robust_scale(x)`,
`quantile_bucketize(x, N)`, `ordinal(x)`, `one_hot(x)`, `impute(x, mean | median | mode | LITERAL)`
and `target_encode(x, LABEL[, m])`.

A call that needs statistics becomes the unbound placeholder `Apply(op="fit:NAME")`, whose
arguments after the transformed value are literal parameters (the bin count, the impute method);
`astra fit` computes the statistics and `astra.plan.fit.bind` replaces it.  `impute` with a
literal needs no fit and is bound here.  Rules and error codes: docs/language.md, "Fitted transforms".
"""

from __future__ import annotations

from astra.diagnostics import Collector
from astra.lang import ast
from astra.lang.types import FLOAT64, INT32, INT64, STRING, Type
from astra.ops.transforms import IMPUTE_METHODS, MAX_BINS, PLACEHOLDER, TRANSFORMS
from astra.plan import ir

SCALERS = ("standard_scale", "min_max_scale", "robust_scale")
VOCAB_TYPES = ("string", "int32", "int64", "bool")


def is_fitted_call(e: ast.Call) -> bool:
    """Whether a call names a fitted transform (`ordinal` with one argument; with a category list
    it is the stateless encoder of `astra.ops.functions`)."""
    fn = e.func.value
    return fn in TRANSFORMS and (fn not in ("ordinal", "one_hot") or len(e.args) == 1)


def check_transform(e: ast.Call, scope, diags: Collector) -> ir.Expr | None:
    """Type-check a fitted transform call and lower it to its placeholder (or bound) IR."""
    from astra.lang.check import check_expr  # check.py routes calls here

    fn = e.func.value
    want = 1 if fn in (*SCALERS, "ordinal", "one_hot") else 2
    if fn == "target_encode" and len(e.args) in (2, 3):
        want = len(e.args)
    if len(e.args) != want:
        example = {"quantile_bucketize": "quantile_bucketize(x, 10)", "impute": "impute(x, median)",
                   "target_encode": "target_encode(x, is_fraud, 10)"}.get(fn, f"{fn}(x)")
        count = "2 or 3" if fn == "target_encode" else want
        diags.error("E0202", f"`{fn}` takes {count} argument(s), got {len(e.args)}", e.span, help=f"e.g. `{example}`")
        return None
    if scope.row_source is not None:
        diags.error("E0805", f"`{fn}` is fitted on feature values; it cannot appear in a `where` filter", e.span,
                    help="transform the feature instead: a filter sees one source row at a time")
        return None
    x = check_expr(e.args[0], scope, diags)
    if x is None:
        return None
    t = x.type
    if fn == "target_encode":
        return _target_encode(e, x, diags)
    if fn in SCALERS or fn == "quantile_bucketize":
        if not _numeric(t, fn, e.args[0], diags):
            return None
        if fn == "quantile_bucketize":
            n = _bin_count(e.args[1], diags)
            if n is None:
                return None
            return _placeholder(fn, (x, ir.Const(value=n, type=INT64, span=e.args[1].span)),
                                INT32.nullable(t.optional or t.is_float), e.span)
        return _placeholder(fn, (x,), FLOAT64.nullable(t.optional), e.span)
    if fn in ("ordinal", "one_hot"):
        if t.name not in VOCAB_TYPES:
            diags.error("E0803", f"`{fn}` learns a vocabulary of strings, integers or bools, got `{t}`",
                        e.args[0].span, label=f"this is `{t}`",
                        help="bucket numbers with `quantile_bucketize(x, N)`, or cast to an integer first")
            return None
        out = INT32.nullable(t.optional) if fn == "ordinal" else Type.list_of(INT32, optional=t.optional)
        return _placeholder(fn, (x,), out, e.span)
    return _impute(e, x, diags)


def _numeric(t: Type, fn: str, arg: ast.Expr, diags: Collector) -> bool:
    if t.is_numeric:
        return True
    diags.error("E0801", f"`{fn}` transforms numbers, got `{t}`", arg.span, label=f"this is `{t}`",
                help="encode categories with `ordinal(x)`" if t.name in VOCAB_TYPES else "")
    return False


def _bin_count(arg: ast.Expr, diags: Collector) -> int | None:
    if isinstance(arg, ast.Literal) and arg.kind == "int" and 2 <= arg.value <= MAX_BINS:
        return arg.value
    diags.error("E0802", f"the bin count of `quantile_bucketize` must be an integer literal from 2 to {MAX_BINS}",
                arg.span, help="e.g. `quantile_bucketize(x, 10)` for deciles")
    return None


def _constant(arg: ast.Expr) -> ir.Const | None:
    """A literal constant, a negative number included."""
    from astra.lang.check import literal

    if isinstance(arg, ast.Literal) and arg.kind in ("int", "float", "string", "bool"):
        return literal(arg)
    if isinstance(arg, ast.Unary) and arg.op == "-" and isinstance(arg.operand, ast.Literal) \
            and arg.operand.kind in ("int", "float"):
        c = literal(arg.operand)
        return ir.Const(value=-c.value, type=c.type, span=arg.span)
    return None


def _impute(e: ast.Call, x: ir.Expr, diags: Collector) -> ir.Expr | None:
    from astra.lang.check import adapt_literals, apply_op

    t, how = x.type, e.args[1]
    if isinstance(how, ast.Ref) and len(how.parts) == 1 and how.parts[0].value in IMPUTE_METHODS:
        method = how.parts[0].value
        if method != "mode" and not _numeric(t, f"impute(..., {method})", e.args[0], diags):
            return None
        if method == "mode" and not (t.is_numeric or t.name in VOCAB_TYPES):
            diags.error("E0801", f"`impute(..., mode)` takes numbers, strings or bools, got `{t}`",
                        e.args[0].span, label=f"this is `{t}`")
            return None
        out = FLOAT64 if method != "mode" else t.non_null()
        return _placeholder("impute", (x, ir.Const(value=method, type=STRING, span=how.span)), out, e.span)
    const = _constant(how)
    if const is None:
        diags.error("E0804", "the second argument of `impute` is `mean`, `median`, `mode` or a literal value",
                    how.span, help="e.g. `impute(x, median)` (fitted) or `impute(x, 0.0)` (a constant)")
        return None
    x, const = adapt_literals((x, const))
    return apply_op("fitted.impute", (x, const), e.args, e.span, diags, name="impute")


def _target_encode(e: ast.Call, x: ir.Expr, diags: Collector) -> ir.Expr | None:
    """`target_encode(x, LABEL[, m])`: x a category, LABEL a spine column's name, m >= 0 a number."""
    from astra.ops.target_encode import SMOOTHING

    t = x.type
    if t.name not in VOCAB_TYPES:
        diags.error("E0803", f"`target_encode` encodes categories (strings, integers or bools), got `{t}`",
                    e.args[0].span, label=f"this is `{t}`",
                    help="bucket numbers with `quantile_bucketize(x, N)` first")
        return None
    label = e.args[1]
    if not (isinstance(label, ast.Ref) and len(label.parts) == 1):
        diags.error("E0806", "the second argument of `target_encode` is the name of the training spine's label column",
                    label.span, help="e.g. `target_encode(last_category, is_fraud)`")
        return None
    m = SMOOTHING
    if len(e.args) == 3:
        c = _constant(e.args[2])
        if c is None or not c.type.is_numeric or not (0 <= c.value < float("inf")):
            diags.error("E0807", "the smoothing of `target_encode` is a number literal >= 0", e.args[2].span,
                        help="e.g. `target_encode(x, is_fraud, 10)`")
            return None
        m = float(c.value)
    params = (ir.Const(value=label.parts[0].value, type=STRING, span=label.span), ir.Const(value=m, type=FLOAT64))
    return _placeholder("target_encode", (x, *params), FLOAT64, e.span)


def _placeholder(fn: str, args: tuple[ir.Expr, ...], out: Type, span) -> ir.Apply:
    return ir.Apply(op=PLACEHOLDER + fn, args=args, type=out, span=span)
