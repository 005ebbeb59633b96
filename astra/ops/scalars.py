"""Row-wise operators: arithmetic, comparison, boolean logic, null handling and casts.

Each entry holds its type rule, plain-Python reference, Polars lowering and numpy lowering
side by side.  Functions (math, strings, time) live in `astra.ops.functions`.
"""

from __future__ import annotations

import math
import operator

from astra.lang.types import BOOL, DURATION, FLOAT64, INT64, STRING, TIMESTAMP, Type, widen
from astra.ops.dtypes import numpy_dtype, polars_dtype
from astra.ops.registry import SCALARS, LazyModule, ScalarOp, TypeRuleError, Vec, register

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time


def pl():
    """Polars, imported on first use so the compiler never loads it."""
    import polars

    return polars


def any_optional(args: tuple[Type, ...]) -> bool:
    """Whether any argument type may be null."""
    return any(a.optional for a in args)


def _ignore_out(fn):
    """Adapt a plain function to the (out_type, *args) signature every reference has."""
    return lambda out, *args: fn(*args)


def _cast_np(values, t: Type):
    return values.astype(numpy_dtype(t), copy=False)


# --------------------------------------------------------------------------- arithmetic


def _infer_arith(op: str):
    def infer(args: tuple[Type, ...]) -> Type:
        a, b = args
        opt = any_optional(args)
        names = (a.name, b.name)
        if a.is_integer and b.is_integer:
            return INT64.nullable(opt)  # computed in int64, so int32 operands never wrap
        if a.is_numeric and b.is_numeric:
            return widen(a, b).nullable(opt)
        if op == "+" and names == ("string", "string"):
            return STRING.nullable(opt)
        if op == "-" and names == ("timestamp", "timestamp"):
            return DURATION.nullable(opt)
        if op in "+-" and names == ("timestamp", "duration"):
            return TIMESTAMP.nullable(opt)
        if op == "+" and names == ("duration", "timestamp"):
            return TIMESTAMP.nullable(opt)
        if op in "+-" and names == ("duration", "duration"):
            return DURATION.nullable(opt)
        if a.is_null or b.is_null:
            raise TypeRuleError(f"`{op}` of `null` is always null", help="remove the null operand")
        bad = 0 if not (a.is_numeric or a.name in ("timestamp", "duration", "string")) else 1
        raise TypeRuleError(f"`{op}` cannot combine `{a}` and `{b}`", arg=bad,
                            help="arithmetic needs numbers (or timestamp/duration arithmetic)")

    return infer


def _np_arith(fn):
    def lower(out: Type, a, b):
        if out.name == "string":
            return np.strings.add(a, b)
        if out.is_numeric:
            a, b = _cast_np(a, out), _cast_np(b, out)
        with np.errstate(over="ignore", invalid="ignore"):  # float overflow is inf (IEEE), as in Polars
            return fn(a, b)

    return lower


def _pl_arith(fn):
    def lower(out: Type, a, b):
        if out.is_numeric:
            dt = polars_dtype(out)
            a, b = a.cast(dt), b.cast(dt)
        return fn(a, b)

    return lower


def wrap_int64(v: int) -> int:
    """A Python integer reduced to int64 two's complement, as numpy and Polars overflow."""
    return ((v + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


def int64_backed(t: Type) -> bool:
    """Whether values of `t` are int64 in the engines (integers, and times as µs)."""
    return t.is_integer or t.name in ("timestamp", "duration")


def in_precision(t: Type, v):
    """A number converted to float type `t` (float32 rounds), as the engines convert operands."""
    if t.name == "float32":
        with np.errstate(over="ignore"):
            return float(np.float32(v))
    return float(v) if t.name == "float64" else v


def _ref_arith(fn):
    def reference(out: Type, a, b):
        if out.is_float:  # operands widen to the result type first: int32 16777217 -> 16777216.0f
            a, b = in_precision(out, a), in_precision(out, b)
        v = fn(a, b)
        return wrap_int64(v) if int64_backed(out) else v

    return reference


for _sym, _fn in (("+", operator.add), ("-", operator.sub), ("*", operator.mul)):
    register(ScalarOp(
        name=_sym, arity=(2, 2), infer=_infer_arith(_sym),
        reference=_ref_arith(_fn), polars=_pl_arith(_fn), numpy=_np_arith(_fn),
        doc=f"a {_sym} b; integers compute in int64 (wrapping past ±2**63), other numbers widen",
    ))


def _infer_div(args: tuple[Type, ...]) -> Type:
    a, b = args
    if not (a.is_numeric and b.is_numeric):
        raise TypeRuleError(f"`/` needs two numbers, got `{a}` and `{b}`", arg=0 if not a.is_numeric else 1)
    return FLOAT64.nullable(True)


def _np_div(out: Type, a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    nonzero = b != 0
    with np.errstate(invalid="ignore", over="ignore"):  # inf/inf is NaN and 1e308/1e-308 is inf, as IEEE says
        return np.divide(a, b, out=np.zeros_like(a), where=nonzero), nonzero


def _div(a, b) -> float | None:
    """`/` on two Python numbers: the reference, and the single-entity plan's lowering.  Python
    floats divide as IEEE doubles, as numpy does (1e308 / 1e-308 is inf, inf / inf NaN, no
    exception); only a zero divisor (either sign) raises in Python, and that is the null case."""
    b = float(b)
    return None if b == 0 else float(a) / b


def _pl_div(out: Type, a, b):
    b = b.cast(pl().Float64)
    return pl().when(b != 0).then(a.cast(pl().Float64) / b)


register(ScalarOp(
    name="/", arity=(2, 2), infer=_infer_div, one=lambda out: _div,
    reference=lambda out, a, b: _div(a, b), polars=_pl_div, numpy=_np_div,
    doc="a / b as float64; null when b is 0 or null",
))


def _infer_mod(args: tuple[Type, ...]) -> Type:
    a, b = args
    if not (a.is_numeric and b.is_numeric):
        raise TypeRuleError(f"`%` needs two numbers, got `{a}` and `{b}`", arg=0 if not a.is_numeric else 1)
    return widen(a, b).nullable(True)


def _np_mod(out: Type, a, b):
    a, b = _cast_np(a, out), _cast_np(b, out)
    nonzero = b != 0
    if out.is_float:  # the same three IEEE steps as Polars, so both engines agree to the bit
        safe = np.where(nonzero, b, 1)
        with np.errstate(invalid="ignore", over="ignore"):  # inf % x is NaN, as in Polars: no warning
            q = a / safe
            # a quotient past the float range leaves no remainder to speak of: NaN, not a - b * inf
            return np.where(np.isfinite(q), a - safe * np.floor(q), np.nan).astype(a.dtype, copy=False), nonzero
    return np.mod(a, b, out=np.zeros_like(a), where=nonzero), nonzero


def _pl_mod(out: Type, a, b):
    dt = polars_dtype(out)
    a, b = a.cast(dt), b.cast(dt)
    if not out.is_float:
        return pl().when(b != 0).then(a % b)
    nan = pl().lit(float("nan"), dtype=dt)
    return pl().when(b != 0).then(pl().when((a / b).is_finite()).then(a % b).otherwise(nan))


def _ref_mod(out: Type, a, b):
    if b == 0:
        return None
    if not out.is_float:
        return a % b
    # floats: a - b * floor(a / b), step by step in the result's precision, as both engines
    # compute it (not Python's exact fmod)
    dt = np.float32 if out.name == "float32" else np.float64
    a, b = dt(in_precision(out, a)), dt(in_precision(out, b))
    with np.errstate(over="ignore", invalid="ignore"):
        q = a / b
        return float(a - b * np.floor(q)) if np.isfinite(q) else math.nan


register(ScalarOp(
    name="%", arity=(2, 2), infer=_infer_mod, reference=_ref_mod, polars=_pl_mod, numpy=_np_mod,
    doc="floor modulo (sign of the divisor), for floats a - b * floor(a / b) (NaN if a / b is not finite); "
        "null when b is 0",
))


def _infer_neg(args: tuple[Type, ...]) -> Type:
    (a,) = args
    if not (a.is_numeric or a.name == "duration"):
        raise TypeRuleError(f"cannot negate `{a}`", arg=0)
    return INT64.nullable(a.optional) if a.is_integer else a


register(ScalarOp(
    name="neg", arity=(1, 1), infer=_infer_neg,
    reference=lambda out, a: wrap_int64(-a) if int64_backed(out) else -a,
    polars=lambda out, a: -a.cast(polars_dtype(out)), numpy=lambda out, a: -_cast_np(a, out),
    doc="-a; integers in int64 (-(-2**63) wraps to -2**63)",
))

# --------------------------------------------------------------------------- comparison


def _comparable(a: Type, b: Type, op: str) -> Type:
    common = widen(a.non_null(), b.non_null())
    if common is None:
        raise TypeRuleError(f"cannot compare `{a}` with `{b}`", arg=1)
    if op not in ("==", "!=") and not common.is_orderable:
        raise TypeRuleError(f"`{op}` needs ordered values, got `{common}`", arg=0)
    if common.name in ("list", "vector"):
        raise TypeRuleError(f"cannot compare `{common}` values", arg=0)
    return common


def _infer_cmp(op: str):
    def infer(args: tuple[Type, ...]) -> Type:
        _comparable(args[0], args[1], op)
        return BOOL.nullable(any_optional(args))

    return infer


def _np_cmp(sym: str, fn):
    def lower(out: Type, a, b):
        if a.dtype.kind in "iuf" and b.dtype.kind in "iuf" and a.dtype != b.dtype:
            # an integer meets a float as float64, as in Polars
            common = np.float64 if "f" in (a.dtype.kind, b.dtype.kind) else np.result_type(a.dtype, b.dtype)
            a, b = a.astype(common), b.astype(common)
        result = fn(a, b)
        if a.dtype.kind == "f":
            result = _nan_total_order(sym, result, np.isnan(a), np.isnan(b))
        return result

    return lower


def _nan_total_order(sym: str, ieee, nan_a, nan_b):
    """IEEE results corrected to the total order: NaN equals NaN and is above every number."""
    if sym == "==":
        return ieee | (nan_a & nan_b)
    if sym == "!=":
        return ieee & ~(nan_a & nan_b)
    if sym == "<":
        return ieee | (~nan_a & nan_b)
    if sym == "<=":
        return ieee | nan_b
    if sym == ">":
        return ieee | (nan_a & ~nan_b)
    return ieee | nan_a  # >=


def _order_key(v) -> tuple:
    """A float's place in the total order (NaN last); other values compare as they are."""
    return (1, 0.0) if v != v else (0, v)


def _ref_cmp(fn):
    def reference(out: Type, a, b):
        if isinstance(a, float) or isinstance(b, float):  # an integer meets a float as float64
            return fn(_order_key(float(a)), _order_key(float(b)))
        return fn(a, b)

    return reference


for _sym, _fn in (("==", operator.eq), ("!=", operator.ne), ("<", operator.lt),
                  ("<=", operator.le), (">", operator.gt), (">=", operator.ge)):
    register(ScalarOp(
        name=_sym, arity=(2, 2), infer=_infer_cmp(_sym), reference=_ref_cmp(_fn),
        polars=(lambda f: lambda out, a, b: f(a, b))(_fn), numpy=_np_cmp(_sym, _fn),
        doc=f"a {_sym} b; null when either side is null; floats in total order (NaN == NaN, NaN above all)",
    ))


def _infer_in(args: tuple[Type, ...]) -> Type:
    a, items = args
    if items.name != "list":
        raise TypeRuleError("`in` needs a list on its right, e.g. `x in [1, 2]`", arg=1)
    _comparable(a, items.item, "==")
    return BOOL.nullable(a.optional)


def _np_in(out: Type, a, items: tuple):
    # one `==` per literal, so `in` compares exactly as `==` does (an int meets a float as float64)
    eq = SCALARS["=="].numpy
    found = np.zeros(len(a), dtype=bool)
    for v in items:
        found |= eq(out, a, np.full(len(a), v))
    return found


def _pl_in(out: Type, a, items: tuple):
    return pl().any_horizontal([a == pl().lit(v) for v in items])


def _ref_in(out: Type, a, items: tuple) -> bool:
    eq = SCALARS["=="].reference
    return any(eq(out, a, v) for v in items)


register(ScalarOp(
    name="in", arity=(2, 2), infer=_infer_in, reference=_ref_in, polars=_pl_in,
    numpy=_np_in, literal_args=(1,), doc="x in [v1, v2, ...]: x == v1 or x == v2 ...; null when x is null",
))

# --------------------------------------------------------------------------- boolean logic (Kleene)


def _infer_logic(name: str):
    def infer(args: tuple[Type, ...]) -> Type:
        for i, a in enumerate(args):
            if a.name != "bool" and not a.is_null:
                raise TypeRuleError(f"`{name}` needs bool operands, got `{a}`", arg=i,
                                    help="compare the value to something to get a bool")
        return BOOL.nullable(any_optional(args))

    return infer


def _np_and(out: Type, a: Vec, b: Vec) -> Vec:
    false_a, false_b = a.valid & ~a.values, b.valid & ~b.values
    value = a.values & b.values & a.valid & b.valid
    return Vec(value, (a.valid & b.valid) | false_a | false_b)


def _np_or(out: Type, a: Vec, b: Vec) -> Vec:
    true_a, true_b = a.valid & a.values, b.valid & b.values
    return Vec(true_a | true_b, (a.valid & b.valid) | true_a | true_b)


def _ref_and(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _ref_or(a, b):
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


register(ScalarOp(
    name="and", arity=(2, 2), infer=_infer_logic("and"), reference=_ignore_out(_ref_and),
    polars=lambda out, a, b: a & b, numpy=_np_and, null_policy="custom",
    doc="three-valued: false and null = false; true and null = null",
))
register(ScalarOp(
    name="or", arity=(2, 2), infer=_infer_logic("or"), reference=_ignore_out(_ref_or),
    polars=lambda out, a, b: a | b, numpy=_np_or, null_policy="custom",
    doc="three-valued: true or null = true; false or null = null",
))
register(ScalarOp(
    name="not", arity=(1, 1), infer=_infer_logic("not"), reference=_ignore_out(operator.not_),
    polars=lambda out, a: ~a, numpy=lambda out, a: ~a, doc="not a; null stays null",
))

# --------------------------------------------------------------------------- nulls and conditionals


def _infer_coalesce(args: tuple[Type, ...]) -> Type:
    a, b = args
    common = widen(a.non_null(), b)
    if common is None:
        raise TypeRuleError(f"`??` needs a fallback of the same type: `{a}` vs `{b}`", arg=1)
    return common.nullable(b.optional)


def _np_coalesce(out: Type, a: Vec, b: Vec) -> Vec:
    dt = numpy_dtype(out)
    return Vec(np.where(a.valid, a.values.astype(dt), b.values.astype(dt)), a.valid | b.valid)


def _pl_coalesce(out: Type, a, b):
    dt = polars_dtype(out)
    return pl().coalesce(a.cast(dt), b.cast(dt))


register(ScalarOp(
    name="??", arity=(2, 2), infer=_infer_coalesce,
    reference=lambda out, a, b: b if a is None else a, polars=_pl_coalesce, numpy=_np_coalesce,
    null_policy="custom", doc="a ?? b: a unless it is null, else b",
))


def _infer_if(args: tuple[Type, ...]) -> Type:
    cond, then, else_ = args
    if cond.name != "bool":
        raise TypeRuleError(f"`if` needs a bool condition, got `{cond}`", arg=0)
    common = widen(then, else_)
    if common is None:
        raise TypeRuleError(f"`then` and `else` differ: `{then}` vs `{else_}`", arg=2)
    return common


def _np_if(out: Type, cond: Vec, then: Vec, else_: Vec) -> Vec:
    take = cond.valid & cond.values
    dt = numpy_dtype(out)
    return Vec(np.where(take, then.values.astype(dt), else_.values.astype(dt)),
               np.where(take, then.valid, else_.valid))


def _pl_if(out: Type, cond, then, else_):
    dt = polars_dtype(out)
    return pl().when(cond).then(then.cast(dt)).otherwise(else_.cast(dt))


register(ScalarOp(
    name="if", arity=(3, 3), infer=_infer_if,
    reference=lambda out, c, a, b: a if c is True else b, polars=_pl_if, numpy=_np_if,
    null_policy="custom", doc="if c then a else b; a null condition takes the else branch",
))


def _infer_is_null(args: tuple[Type, ...]) -> Type:
    return BOOL


register(ScalarOp(
    name="is_null", arity=(1, 1), infer=_infer_is_null, reference=lambda out, a: a is None,
    polars=lambda out, a: a.is_null(), numpy=lambda out, a: Vec(~a.valid, np.ones_like(a.valid)),
    null_policy="custom", doc="is_null(x): true when x is null",
))

# --------------------------------------------------------------------------- casts

_CASTABLE = {
    "int32": ("int64", "float32", "float64", "string", "bool"),
    "int64": ("int32", "float32", "float64", "string", "timestamp", "duration", "bool"),
    "float32": ("float64", "int32", "int64"),
    "float64": ("float32", "int32", "int64"),
    "bool": ("int32", "int64", "float32", "float64", "string"),
    "string": ("string",),
    "timestamp": ("int64",),
    "duration": ("int64",),
}


def cast_result(src: Type, to: Type) -> Type:
    """The type of `src as to`, or a TypeRuleError. Float -> int may fail (NaN), so it is optional."""
    if src.is_null:
        return to.nullable()
    if src.name == to.name:
        return to.nullable(src.optional)
    if to.name not in _CASTABLE.get(src.name, ()):
        raise TypeRuleError(f"cannot cast `{src}` to `{to}`", arg=0)
    # null when the value has no place in the target: NaN, infinities, out of range
    lossy = (src.is_float and to.is_integer) or (src.name == "int64" and to.name == "int32")
    return to.nullable(src.optional or lossy or to.optional)


def _np_cast(out: Type, a):
    dt = numpy_dtype(out)
    if out.is_integer and a.dtype.kind == "f":
        t = np.trunc(a.astype(np.float64))  # toward zero, then the range check
        low = float(np.iinfo(dt).min)  # -2**(bits - 1), and its negation, are exact doubles
        ok = np.isfinite(t) & (t >= low) & (t < -low)
        return np.where(ok, t, 0).astype(dt), ok
    if out.is_integer and a.dtype.kind == "i" and a.dtype.itemsize > dt.itemsize:
        info = np.iinfo(dt)
        ok = (a >= info.min) & (a <= info.max)
        return np.where(ok, a, 0).astype(dt), ok
    if out.name == "string" and a.dtype.kind == "b":
        return np.where(a, "true", "false").astype(dt)
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes ±inf, as in Polars
        return a.astype(dt)


def _pl_cast(out: Type, a):
    return a.cast(polars_dtype(out), strict=False)


def _ref_cast(out: Type, a):
    if out.is_integer:
        if isinstance(a, float) and not math.isfinite(a):
            return None
        return int(a)
    if out.is_float:
        return float(a)
    if out.name == "string":
        return ("true" if a else "false") if isinstance(a, bool) else str(a)
    if out.name == "bool":
        return bool(a)
    return a



register(ScalarOp(
    name="cast", arity=(1, 1), infer=lambda args: args[0], reference=_ref_cast,
    polars=_pl_cast, numpy=_np_cast,
    doc="expr as T; float -> int truncates toward zero; null for NaN, infinities and values out of range",
))


from astra.ops import transforms as _transforms  # noqa: E402, F401  (registers the fitted transforms' operators)
