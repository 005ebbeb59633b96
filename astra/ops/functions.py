"""Built-in functions: math, strings and time.  Same shape as `astra.ops.scalars`."""

from __future__ import annotations

import math

from astra.lang.types import BOOL, FLOAT64, INT32, INT64, STRING, Type, widen
from astra.ops.dtypes import numpy_dtype, polars_dtype
from astra.ops.registry import LazyModule, ScalarOp, TypeRuleError, register
from astra.ops.scalars import in_precision, int64_backed, pl, wrap_int64

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time

US_PER_S = 1_000_000


def _expect(args: tuple[Type, ...], i: int, ok: bool, what: str, fn: str) -> None:
    if not ok:
        raise TypeRuleError(f"`{fn}` expects {what} as argument {i + 1}, got `{args[i]}`", arg=i)


def _opt(args: tuple[Type, ...]) -> bool:
    return any(a.optional for a in args)


def function(name: str, arity: tuple[int, int], infer, reference, polars, numpy, doc: str) -> None:
    """Register a strict built-in function."""
    register(ScalarOp(name=name, arity=arity, infer=infer, reference=reference, polars=polars,
                      numpy=numpy, doc=doc))


# --------------------------------------------------------------------------- math


def _infer_abs(args):
    _expect(args, 0, args[0].is_numeric or args[0].name == "duration", "a number", "abs")
    return INT64.nullable(args[0].optional) if args[0].is_integer else args[0]


function("abs", (1, 1), _infer_abs, lambda out, a: wrap_int64(abs(a)) if int64_backed(out) else abs(a),
         lambda out, a: a.cast(polars_dtype(out)).abs(), lambda out, a: np.abs(a.astype(numpy_dtype(out))),
         "absolute value; integers in int64 (abs(-2**63) wraps to -2**63)")


def _float_result(fn: str, optional: bool):
    def infer(args):
        _expect(args, 0, args[0].is_numeric, "a number", fn)
        return FLOAT64.nullable(optional or _opt(args))

    return infer


# NaN is in the domain (NaN in, NaN out); it is the IEEE comparisons that would leave it out
def _np_log(out, a):
    a = a.astype(np.float64)
    ok = (a > 0) | np.isnan(a)
    return np.log(np.where(ok, a, 1.0)), ok


def _np_sqrt(out, a):
    a = a.astype(np.float64)
    ok = (a >= 0) | np.isnan(a)
    return np.sqrt(np.where(ok, a, 0.0)), ok


def _pl_domain(fn, lower_ok):
    def lower(out, a):
        a = a.cast(pl().Float64)
        return pl().when(lower_ok(a) | a.is_nan()).then(fn(a))

    return lower


function("log", (1, 1), _float_result("log", True),
         lambda out, a: math.log(a) if a > 0 or a != a else None,
         _pl_domain(lambda a: a.log(), lambda a: a > 0), _np_log,
         "natural logarithm; null for x <= 0, NaN for NaN")
function("sqrt", (1, 1), _float_result("sqrt", True),
         lambda out, a: math.sqrt(a) if a >= 0 or a != a else None,
         _pl_domain(lambda a: a.sqrt(), lambda a: a >= 0), _np_sqrt,
         "square root; null for x < 0, NaN for NaN")


def _ref_exp(out, a):
    try:
        return math.exp(a)
    except OverflowError:
        return math.inf


def _np_exp(out, a):
    with np.errstate(over="ignore"):  # overflow is +inf, as documented: not worth a warning per query
        return np.exp(a.astype(np.float64))


function("exp", (1, 1), _float_result("exp", False), _ref_exp,
         lambda out, a: a.cast(pl().Float64).exp(), _np_exp, "e to the power x; +inf past about 709.78")


# log1p and expm1 run numpy's kernels in every engine, the reference included: numpy's SIMD
# log1p differs from the C library's (and Polars') in the last bit for about 1 value in 25
def _np_log1p(out, a):
    a = a.astype(np.float64)
    ok = (a > -1) | np.isnan(a)
    return np.log1p(np.where(ok, a, 0.0)), ok


def _np_expm1(out, a):
    with np.errstate(over="ignore"):  # overflow is +inf, as for exp
        return np.expm1(a.astype(np.float64))


def _numpy_kernel(fn):
    """A Polars lowering that runs the numpy lowering `fn(out, a)` (values, or values and a
    validity mask) on each batch of the argument as float64."""
    def lower(out, a):
        def kernel(s):
            got = fn(out, s.to_numpy())
            values, ok = got if isinstance(got, tuple) else (got, None)
            series = pl().Series(s.name, values, dtype=pl().Float64)
            return series if ok is None else series.scatter(np.flatnonzero(~ok), None)

        return a.cast(pl().Float64).map_batches(kernel, return_dtype=pl().Float64, is_elementwise=True)

    return lower


def _numpy_reference(fn):
    """A reference running the numpy lowering on one value (numpy's scalar and array loops agree)."""
    def reference(out, a):
        got = fn(out, np.array([a], dtype=np.float64))
        values, ok = got if isinstance(got, tuple) else (got, None)
        return float(values[0]) if ok is None or ok[0] else None

    return reference


function("log1p", (1, 1), _float_result("log1p", True), _numpy_reference(_np_log1p), _numpy_kernel(_np_log1p),
         _np_log1p, "log1p(x): log(1 + x), accurate for tiny x; null for x <= -1, NaN for NaN")
function("expm1", (1, 1), _float_result("expm1", False), _numpy_reference(_np_expm1),
         _numpy_kernel(_np_expm1), _np_expm1, "expm1(x): e**x - 1, accurate for tiny x; +inf past about 709.78")


def _infer_clip(args):
    for i in range(3):
        _expect(args, i, args[i].is_numeric, "a number", "clip")
    return widen(widen(args[0], args[1]), args[2])


def _np_clip(out, x, lo, hi):
    dt = numpy_dtype(out)
    return np.minimum(np.maximum(x.astype(dt), lo.astype(dt)), hi.astype(dt))


def _pl_clip(out, x, lo, hi):
    dt = polars_dtype(out)
    x, lo, hi = x.cast(dt), lo.cast(dt), hi.cast(dt)
    clipped = pl().min_horizontal(pl().max_horizontal(x, lo), hi)
    if not out.is_float:
        return clipped
    # a NaN anywhere gives NaN, as numpy's maximum/minimum do (Polars' horizontal min/max skip it)
    return pl().when(x.is_nan() | lo.is_nan() | hi.is_nan()).then(pl().lit(math.nan, dtype=dt)).otherwise(clipped)


def _ref_clip(out, x, lo, hi):
    if any(v != v for v in (x, lo, hi)):
        return math.nan
    x, lo, hi = (in_precision(out, v) for v in (x, lo, hi))
    # numpy's maximum/minimum (and Polars'): on a tie the second argument wins (clip(-0.0, 0.0, 1.0) is 0.0)
    above = x if x > lo else lo
    return above if above < hi else hi


function("clip", (3, 3), _infer_clip, _ref_clip, _pl_clip, _np_clip,
         "clip(x, lo, hi): x limited to [lo, hi]; NaN if any argument is NaN")


def _infer_round(args):
    _expect(args, 0, args[0].is_numeric, "a number", "round")
    if len(args) == 2:
        _expect(args, 1, args[1].is_integer, "an integer number of decimals", "round")
    return args[0].nullable(_opt(args))


def _ref_round(out, x, digits=0):
    return x if out.is_integer else float(round(float(x), digits))


def _np_round(out, x, digits=0):
    if out.is_integer:
        return x
    from astra.ops import rounding  # numpy-only: `astra compile` must not load numpy

    return rounding.round_half_even(x, digits).astype(numpy_dtype(out), copy=False)


def _pl_round(out, x, digits=0):
    if out.is_integer:
        return x
    from astra.ops import rounding

    # one kernel for both engines: Polars' own `round` scales first, so it misrounds 0.35 to 0.4
    kernel = lambda s: pl().Series(s.name, rounding.round_half_even(s.to_numpy(), digits))  # noqa: E731
    return x.map_batches(kernel, return_dtype=pl().Float64, is_elementwise=True).cast(polars_dtype(out))


def _check_round(values: dict[int, object]) -> None:
    if values.get(1, 0) < 0:  # a negative literal is folded to one constant: refused as a non-literal was
        raise TypeRuleError("the number of decimals of `round` must be a literal >= 0", arg=1, code="E0207")


register(ScalarOp(name="round", arity=(1, 2), infer=_infer_round, reference=_ref_round,
                  polars=_pl_round, numpy=_np_round, literal_args=(1,), check_literals=_check_round,
                  doc="round(x, n = 0): the exact value rounded to n decimals, half to even; n is a literal >= 0"))


def _float_same(fn: str):
    def infer(args):
        _expect(args, 0, args[0].is_numeric, "a number", fn)
        return args[0]

    return infer


def _whole(fn):
    """A reference for floor/ceil: IEEE's, which keeps NaN, infinities and the sign of a zero."""
    def reference(out, a):
        if out.is_integer or not math.isfinite(a):
            return a
        return math.copysign(float(fn(a)), a)  # ceil(-0.5) is -0.0

    return reference


function("floor", (1, 1), _float_same("floor"), _whole(math.floor),
         lambda out, a: a if out.is_integer else a.floor(),
         lambda out, a: a if out.is_integer else np.floor(a), "largest whole number <= x")
function("ceil", (1, 1), _float_same("ceil"), _whole(math.ceil),
         lambda out, a: a if out.is_integer else a.ceil(),
         lambda out, a: a if out.is_integer else np.ceil(a), "smallest whole number >= x")

# --------------------------------------------------------------------------- strings


def _string_fn(fn: str, result: Type, n: int = 1):
    def infer(args):
        for i in range(n):
            _expect(args, i, args[i].name == "string", "a string", fn)
        return result.nullable(_opt(args))

    return infer


def _as_str(a):
    return a.astype(np.dtypes.StringDType(), copy=False)


function("lower", (1, 1), _string_fn("lower", STRING), lambda out, a: a.lower(),
         lambda out, a: a.str.to_lowercase(), lambda out, a: np.strings.lower(_as_str(a)),
         "lower-case a string")
function("upper", (1, 1), _string_fn("upper", STRING), lambda out, a: a.upper(),
         lambda out, a: a.str.to_uppercase(), lambda out, a: np.strings.upper(_as_str(a)),
         "upper-case a string")


def _infer_length(args):
    _expect(args, 0, args[0].name == "string", "a string", "length")
    return INT64.nullable(_opt(args))


function("length", (1, 1), _infer_length, lambda out, a: len(a),
         lambda out, a: a.str.len_chars().cast(pl().Int64),
         lambda out, a: np.strings.str_len(_as_str(a)).astype(np.int64),
         "number of characters in a string")


def _infer_list_length(args):
    _expect(args, 0, args[0].name == "list", "a list", "length")
    return INT64.nullable(_opt(args))


# `length` of a list: the checker picks this op by the argument's type
function("list_length", (1, 1), _infer_list_length, lambda out, a: len(a),
         lambda out, a: a.list.len().cast(pl().Int64),
         lambda out, a: np.fromiter((len(v) for v in a), dtype=np.int64, count=len(a)),
         "number of items in a list")

for _name, _pl_fn, _np_fn, _py_fn in (
    ("contains", lambda a, b: a.str.contains(b, literal=True),
     lambda a, b: np.strings.find(_as_str(a), _as_str(b)) >= 0, lambda a, b: b in a),
    ("starts_with", lambda a, b: a.str.starts_with(b),
     lambda a, b: np.strings.startswith(_as_str(a), _as_str(b)), lambda a, b: a.startswith(b)),
    ("ends_with", lambda a, b: a.str.ends_with(b),
     lambda a, b: np.strings.endswith(_as_str(a), _as_str(b)), lambda a, b: a.endswith(b)),
):
    function(_name, (2, 2), _string_fn(_name, BOOL, 2),
             (lambda f: lambda out, a, b: f(a, b))(_py_fn),
             (lambda f: lambda out, a, b: f(a, b))(_pl_fn),
             (lambda f: lambda out, a, b: f(a, b))(_np_fn),
             f"{_name}(s, part): true when s {_name.replace('_', ' ')} part")

# --------------------------------------------------------------------------- time


def _duration_to(fn: str, per_unit_s: int):
    per_us = per_unit_s * US_PER_S

    def infer(args):
        _expect(args, 0, args[0].name == "duration", "a duration", fn)
        return FLOAT64.nullable(_opt(args))

    function(fn, (1, 1), infer, lambda out, d: d / per_us,
             lambda out, d: d.dt.total_microseconds().cast(pl().Float64) / per_us,
             lambda out, d: d.astype(np.float64) / per_us,
             f"{fn}(d): the duration as a float number of {fn}")


for _fn, _s in (("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86400)):
    _duration_to(_fn, _s)


def _ts_part(fn: str):
    def infer(args):
        _expect(args, 0, args[0].name == "timestamp", "a timestamp", fn)
        return INT32.nullable(_opt(args))

    return infer


_US_PER_DAY = 86400 * US_PER_S

function("hour_of_day", (1, 1), _ts_part("hour_of_day"),
         lambda out, ts: (ts % _US_PER_DAY) // (3600 * US_PER_S),
         lambda out, ts: ts.dt.hour().cast(pl().Int32),
         lambda out, ts: ((ts % _US_PER_DAY) // (3600 * US_PER_S)).astype(np.int32),
         "hour of the day, 0-23 (UTC)")
# 1970-01-01 was a Thursday (ISO weekday 4)
function("day_of_week", (1, 1), _ts_part("day_of_week"),
         lambda out, ts: (ts // _US_PER_DAY + 3) % 7 + 1,
         lambda out, ts: ts.dt.weekday().cast(pl().Int32),
         lambda out, ts: ((ts // _US_PER_DAY + 3) % 7 + 1).astype(np.int32),
         "ISO day of the week, Monday = 1 ... Sunday = 7 (UTC)")
# the modules that register `assignment`, the encoders (bucketize, ordinal, one_hot) and the vector functions
from astra.ops import assignment, functions_encoders, vectors  # noqa: E402,F401
