"""Lowering IR expressions to Polars expressions through each operator's `polars` lowering.

Leaves that the engine computes itself (aggregates, as-of lookups, other features) arrive as
columns named by the caller's `leaf` function; this module knows no operator by name.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

import astra.ops.functions
import astra.ops.scalars  # noqa: F401  (registers the operators)
from astra.lang.types import Type
from astra.ops.dtypes import polars_dtype
from astra.ops.registry import SCALARS
from astra.plan import ir

NOW = "__now"


def literal(value: object, t: Type) -> pl.Expr:
    """A constant of type `t` (timestamps and durations are int µs in the IR)."""
    if value is None:
        return pl.lit(None, dtype=polars_dtype(t)) if not t.is_null else pl.lit(None)
    if t.name in ("timestamp", "duration"):
        return pl.lit(int(value), dtype=pl.Int64).cast(polars_dtype(t))
    if t.name == "list":
        return pl.lit(pl.Series([list(value)], dtype=polars_dtype(t)))
    return pl.lit(value, dtype=polars_dtype(t))


def lower(e: ir.Expr, leaf: Callable[[ir.Expr], pl.Expr]) -> pl.Expr:
    """A Polars expression computing `e` row by row; `leaf` names the columns of computed nodes."""
    if isinstance(e, ir.Const):
        return literal(e.value, e.type)
    if isinstance(e, ir.Column):
        return pl.col(e.name)
    if isinstance(e, ir.Now):
        return pl.col(NOW)
    if isinstance(e, ir.Apply):
        op = SCALARS[e.op]
        args: list[object] = []
        exprs: list[pl.Expr] = []
        for i, a in enumerate(e.args):
            if i in op.literal_args:
                if not isinstance(a, ir.Const):
                    raise ValueError(f"argument {i + 1} of `{e.op}` must be a literal")
                args.append(a.value)
            else:
                x = lower(a, leaf)
                args.append(x)
                exprs.append(x)
        out = op.polars(e.type, *args)
        if op.null_policy == "strict" and exprs:
            # strict: any null argument makes the result null, before the op's own nulls
            out = pl.when(pl.all_horizontal([x.is_not_null() for x in exprs])).then(out)
        return out
    return leaf(e)


def finish(expr: pl.Expr, feature: ir.Feature) -> pl.Expr:
    """Apply the feature's default to a null result, then cast to its declared type."""
    dtype = polars_dtype(feature.type)
    expr = expr.cast(dtype, strict=False)
    if feature.default is not None:
        expr = pl.coalesce(expr, literal(feature.default, feature.type.non_null()))
    return expr
