"""An independent oracle: a row-by-row evaluation of a plan written from docs/semantics.md and
docs/language.md alone.

`astra.plan.reference` evaluates operators through the registry's own `reference` functions, the
same module that holds the engines' lowerings, so a wrong rule written once there is wrong
everywhere and no comparison sees it.  This module shares no operator code with astra: each
operator, aggregation and widening rule is spelled out again here, slowly and exactly (sums and
variances in rational arithmetic, then rounded once).

Integers wrap around modulo 2^64 (rule 11), casts null what falls outside their target (rule 15),
floats compare in a total order with NaN above every number (rule 16), and sums, means and
variances follow "Floating point" (exactly rounded, NaN and infinities as IEEE special values).
"""

from __future__ import annotations

import math
import warnings
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

from astra.lang.types import Type, widen
from astra.plan import ir

US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1),
             "timestamp": (-(2**63), 2**63 - 1), "duration": (-(2**63), 2**63 - 1)}
KLEENE = {"and", "or", "??", "if", "is_null"}  # the operators that see nulls (semantics rule 8)
# What this oracle spells out, by registry name: each is a case of `scalar` or `aggregate` below.
# tests/differential/test_registry_coverage.py checks every registered operator the random programs
# can draw is here, so a new one fails at once until it is written out again here, independently.
SCALAR_OPS = frozenset({
    "+", "-", "*", "/", "%", "neg", "==", "!=", "<", "<=", ">", ">=", "in", "and", "or", "not", "??", "if",
    "is_null", "cast", "abs", "floor", "ceil", "round", "log", "sqrt", "exp", "clip", "log1p", "expm1",
    "bucketize", "ordinal", "one_hot", "lower", "upper", "length", "list_length", "contains", "starts_with",
    "ends_with", "seconds", "minutes", "hours", "days", "hour_of_day", "day_of_week"})
AGGREGATION_OPS = frozenset({
    "count", "sum", "mean", "min", "max", "first", "last", "count_distinct", "variance", "stddev", "last_k",
    "first_k", "top_k", "bottom_k", "median", "percentile", "skew", "kurtosis", "exp_decay_sum",
    "approx_count_distinct", "approx_percentile", "mode", "histogram"})
# how many integer results wrapped around (rule 11), for the fuzzer's report
wraps = 0


def f32(x: float) -> float:
    """x rounded to the nearest float32 (overflow gives +-inf, as IEEE says)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.float32(x))


def wrap64(v: int) -> int:
    """v modulo 2^64 as a signed int64 (two's complement, rule 11)."""
    w = (v + 2**63) % 2**64 - 2**63
    if w != v:
        global wraps
        wraps += 1
    return w


def f32_of_int(v: int) -> float:
    """The float32 nearest the integer v, ties to even (rule 15), rounded once."""
    r = f32(float(v))
    if not math.isfinite(r) or Fraction(r) == v:
        return r
    other = float(np.nextafter(np.float32(r), np.float32(math.copysign(math.inf, v - Fraction(r)))))
    dr, do = abs(Fraction(r) - v), abs(Fraction(other) - v)
    if dr != do:
        return r if dr < do else other
    return r if int(np.float32(r).view(np.int32)) % 2 == 0 else other


def to_type(v: object, t: Type) -> object:
    """A value stored as type t: floats rounded to the type, int64-like values wrapped (rule 11)."""
    if v is None:
        return None
    name = t.name
    if name == "list":
        return tuple(to_type(x, t.item) for x in v)
    if name == "float64":
        return float(v)
    if name == "float32":
        return f32_of_int(v) if isinstance(v, int) and not isinstance(v, bool) else f32(float(v))
    if name in INT_RANGE:
        if name == "int32":
            # integer arithmetic is int64 (rule 11), so no int32 result can leave its range; if a
            # plan still types one int32, the exact value stands and a wrapped answer differs
            return int(v)
        return wrap64(int(v))
    return v


def in_range(v: int, t: Type) -> int | None:
    """v when it fits integer type t, else null (a cast's rule 15)."""
    lo, hi = INT_RANGE[t.name]
    return int(v) if lo <= v <= hi else None


def exact_float(exact: Fraction) -> float:
    """An exact rational rounded once to float64 (+-inf beyond its range)."""
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


# --------------------------------------------------------------------------- scalar operators


def _arith(op: str, out: Type, a, b):
    if out.is_numeric:
        a, b = to_type(a, out), to_type(b, out)
        if a is None or b is None:
            return None
    if op == "+":
        r = a + b
    elif op == "-":
        r = a - b
    else:
        r = a * b
    return to_type(r, out)


def _float_mod(a: float, b: float, rounding) -> float:
    """a - b * floor(a / b), each step rounded to the result type (docs/language.md)."""
    q = rounding(a / b)
    if not math.isfinite(q):
        return math.nan
    return rounding(a - rounding(b * float(math.floor(q))))


def _mod(out: Type, a, b):
    a, b = to_type(a, out), to_type(b, out)
    if a is None or b is None or b == 0:
        return None
    if out.is_float:
        return _float_mod(a, b, f32 if out.name == "float32" else float)
    return to_type(a % b, out)  # Python's % is floor modulo: the sign of the divisor


def _common(ta: Type, tb: Type) -> Type:
    return widen(ta.non_null(), tb.non_null())


def _order_key(v):
    """Floats in the total order of rule 16: NaN equals NaN and is above every number."""
    if isinstance(v, float):
        return (1, 0.0) if math.isnan(v) else (0, v)
    return v


def _compare(op: str, ta: Type, tb: Type, a, b):
    common = _common(ta, tb)
    if common is not None and common.is_numeric:
        if common.is_float and (ta.is_integer or tb.is_integer):
            common = Type("float64")  # an integer meets a float as float64 (rule 16)
        a, b = _order_key(to_type(a, common)), _order_key(to_type(b, common))
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _cast(out: Type, src: Type, a):
    to = out.name
    if to == src.name:
        return to_type(a, out)
    if to in ("int32", "int64"):
        if isinstance(a, float):
            if not math.isfinite(a):
                return None
            a = math.trunc(a)  # toward zero
        return in_range(int(a), out)
    if to in ("float32", "float64"):
        return to_type(int(a) if isinstance(a, bool) else a, out)
    if to == "string":
        return ("true" if a else "false") if isinstance(a, bool) else str(a)
    if to == "bool":
        return a != 0
    return to_type(a, out)  # int64 <-> timestamp / duration: the same microseconds


def _round(out: Type, x, digits=0):
    if out.is_integer:
        return x
    if not math.isfinite(x):
        return x
    return to_type(round(float(x), digits), out)


def _floor_ceil(fn, out: Type, x):
    if out.is_integer or not math.isfinite(x):
        return x
    r = float(fn(x))
    return to_type(math.copysign(r, x) if r == 0 else r, out)  # keeps the sign of a zero (rule 19)


def _log(x):
    x = float(x)
    if x <= 0:  # "null for x <= 0": NaN is not, and stays NaN
        return None
    return math.log(x) if x == x else x


def _sqrt(x):
    x = float(x)
    if x < 0:
        return None
    return math.sqrt(x) if x == x else x


def _exp(x):
    try:
        return math.exp(float(x))
    except OverflowError:
        return math.inf


def _log1p(x):
    x = float(x)
    if x <= -1:  # "null for x <= -1"; NaN is not, and stays NaN
        return None
    return math.log1p(x) if x == x else x


def _expm1(x):
    try:
        return math.expm1(float(x))
    except OverflowError:
        return math.inf


def _bucketize(ta: Type, tb: Type, x, bounds) -> int:
    """How many boundaries are <= x, compared as `>=` compares (NaN above every number)."""
    return sum(1 for b in bounds if _compare(">=", ta, tb.item, x, b))


def _ordinal(ta: Type, tb: Type, x, categories, unseen=None):
    """x's position among the categories (compared as `==`), else the unseen code or null."""
    return next((i for i, c in enumerate(categories) if _compare("==", ta, tb.item, x, c)), unseen)


def _clip(out: Type, x, lo, hi):
    """min(max(x, lo), hi), a tie taking the bound, NaN if any argument is NaN (rule 19)."""
    x, lo, hi = to_type(x, out), to_type(lo, out), to_type(hi, out)
    if any(isinstance(v, float) and math.isnan(v) for v in (x, lo, hi)):
        return math.nan
    m = lo if x <= lo else x
    return hi if m >= hi else m


def _in(ta: Type, items_type: Type, a, items):
    return any(_compare("==", ta, items_type.item, a, i) for i in items)


def scalar(e: ir.Apply, args: list) -> object:
    """The value of one operator application, from its argument values (None: null)."""
    op, out = e.op, e.type
    types = [a.type for a in e.args]
    if op not in KLEENE and any(a is None for a in args):
        return None  # semantics rule 8: null in, null out
    match op:
        case "+" | "-" | "*":
            return _arith(op, out, *args)
        case "/":
            a, b = float(args[0]), float(args[1])  # rule 12: float64 operands, one IEEE division
            if b == 0:
                return None
            try:
                return a / b
            except OverflowError:
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
        case "%":
            return _mod(out, *args)
        case "neg":
            return to_type(-args[0], out)
        case "==" | "!=" | "<" | "<=" | ">" | ">=":
            return _compare(op, types[0], types[1], *args)
        case "in":
            return _in(types[0], types[1], *args)
        case "and":
            a, b = args
            return False if a is False or b is False else (None if a is None or b is None else True)
        case "or":
            a, b = args
            return True if a is True or b is True else (None if a is None or b is None else False)
        case "not":
            return not args[0]
        case "??":
            return to_type(args[1] if args[0] is None else args[0], out)
        case "if":
            return to_type(args[1] if args[0] is True else args[2], out)
        case "is_null":
            return args[0] is None
        case "cast":
            return _cast(out, types[0], args[0])
        case "abs":
            return to_type(abs(args[0]), out)  # abs(-2^63) wraps to -2^63 (rule 11)
        case "floor":
            return _floor_ceil(math.floor, out, args[0])
        case "ceil":
            return _floor_ceil(math.ceil, out, args[0])
        case "round":
            return _round(out, *args)
        case "log":
            return _log(args[0])
        case "sqrt":
            return _sqrt(args[0])
        case "exp":
            return _exp(args[0])
        case "clip":
            return _clip(out, *args)
        case "log1p":
            return _log1p(args[0])
        case "expm1":
            return _expm1(args[0])
        case "bucketize":
            return _bucketize(types[0], types[1], *args)
        case "ordinal":
            return _ordinal(types[0], types[1], *args)
        case "one_hot":
            return int(_compare("==", types[0], types[1], *args))
        case "lower":
            return args[0].lower()
        case "upper":
            return args[0].upper()
        case "length" | "list_length":
            return len(args[0])
        case "contains":
            return args[1] in args[0]
        case "starts_with":
            return args[0].startswith(args[1])
        case "ends_with":
            return args[0].endswith(args[1])
        case "seconds" | "minutes" | "hours" | "days":
            per = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}[op] * US_PER_S
            return args[0] / per
        case "hour_of_day":
            return (args[0] // (3600 * US_PER_S)) % 24  # floor division: before 1970 too
        case "day_of_week":
            return (args[0] // US_PER_DAY + 3) % 7 + 1  # 1970-01-01 was a Thursday (ISO 4)
    raise NotImplementedError(f"the oracle does not know operator `{op}`")


# --------------------------------------------------------------------------- aggregations


def _rank(v: object) -> tuple:
    """Ascending order of the ordered aggregations: NaN above every number (rule 16)."""
    return (1, 0) if isinstance(v, float) and v != v else (0, v)


def _root(x: Fraction) -> Decimal:
    """sqrt of a non-negative rational to 60 digits (no float range limits)."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (Decimal(x.numerator) / Decimal(x.denominator)).sqrt()


def _shape(op: str, xs: list) -> float | None:
    """skew (G1) and kurtosis (G2) as scipy.stats with bias=False, exactly, then rounded once."""
    need = 3 if op == "skew" else 4
    if len(xs) < need:
        return None
    if any(isinstance(x, float) and not math.isfinite(x) for x in xs):
        return math.nan
    exact = [Fraction(x) for x in xs]
    n = len(exact)
    mean = sum(exact) / n
    m2, m3, m4 = (sum((x - mean) ** k for x in exact) / n for k in (2, 3, 4))
    if m2 == 0:
        return None
    if op == "kurtosis":  # scipy's form: ((n^2 - 1) m4 / m2^2 - 3 (n - 1)^2) / ((n - 2)(n - 3))
        return exact_float(((n * n - 1) * m4 / (m2 * m2) - 3 * (n - 1) ** 2) / ((n - 2) * (n - 3)))
    with localcontext() as ctx:
        ctx.prec = 60
        g1 = (_root(Fraction(n * (n - 1))) / (n - 2)) * (Decimal(m3.numerator) / Decimal(m3.denominator)) \
            / (_root(m2) ** 3)
        return float(g1)


def _quantile(xs: list, q: float) -> float | None:
    """docs/semantics.md: sorted values, h = (n - 1) q in float64, linear between x[floor h] and the next."""
    if not xs:
        return None
    ys = sorted(float(x) for x in xs)
    if any(y != y for y in ys):
        return math.nan
    h = (len(ys) - 1) * q
    lo = math.floor(h)
    a, b, g = ys[lo], ys[min(lo + 1, len(ys) - 1)], h - lo
    return a if g == 0 or a == b else (1 - g) * a + g * b


def _decayed(xs: list, ages: list, half_life: int) -> float:
    """sum x * 2^(-age / half_life): infinite values keep their sign, then the exact sum, rounded."""
    terms = [float(x) if math.isinf(x) else float(x) * math.pow(2.0, -(age / half_life)) for x, age in zip(xs, ages)]
    if any(math.isnan(v) for v in terms):
        return math.nan
    inf = {v for v in terms if math.isinf(v)}
    if inf:
        return math.nan if len(inf) == 2 else inf.pop()
    return exact_float(sum((Fraction(v) for v in terms), Fraction(0)))


_MASK64 = (1 << 64) - 1


def _hash64(v: object) -> int:
    """The sketches' hash (docs/semantics.md): the splitmix64 finalizer of an integer plus
    0x9E3779B97F4A7C15, or of the 64-bit FNV-1a of a string's UTF-8 bytes."""
    if isinstance(v, str):
        z = 0xCBF29CE484222325
        for byte in v.encode("utf-8"):
            z = ((z ^ byte) * 0x100000001B3) & _MASK64
    else:
        z = (int(v) + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _approx_distinct(xs: list) -> int:
    """HyperLogLog with 2^14 registers: the top 14 bits of the hash pick a register, which keeps
    the largest 1 + leading zeros of the other 50 bits; Ertl's improved estimator over the
    histogram of register values, rounded half to even."""
    regs: dict[int, int] = {}
    for v in set(xs):
        h = _hash64(v)
        regs[h >> 50] = max(regs.get(h >> 50, 0), 51 - (h & ((1 << 50) - 1)).bit_length())
    m = 1 << 14
    c = [0] * 52
    for r in regs.values():
        c[r] += 1
    c[0] = m - len(regs)
    x = 1.0 - c[51] / m  # tau(x)
    tau = 0.0
    if x not in (0.0, 1.0):
        y, tau = 1.0, 1.0 - x
        while True:
            x = math.sqrt(x)
            y *= 0.5
            nxt = tau - (1.0 - x) * (1.0 - x) * y
            if nxt == tau:
                break
            tau = nxt
        tau /= 3.0
    z = m * tau
    for k in range(50, 0, -1):
        z = 0.5 * (z + c[k])
    x = c[0] / m  # sigma(x)
    if x == 1.0:
        return 0
    y, sigma = 1.0, x
    while True:
        x = x * x
        nxt = sigma + x * y
        y += y
        if nxt == sigma:
            break
        sigma = nxt
    return round(0.7213475204444817 * m * m / (z + m * sigma))


def _approx_percentile(xs: list, q: float) -> float | None:
    """DDSketch's answer: the order statistic of rank floor((n - 1) q) + 1 (NaN when a value is
    NaN), replaced by the harmonic mean of the bounds of its bucket: x = m 2^e (1 <= m < 2) is in
    (2^e (1 + (j - 1)/50), 2^e (1 + j/50)], j = ceil(50 (m - 1)), or (0.99 2^e, 2^e] when m = 1."""
    if not xs:
        return None
    ys = sorted(float(x) for x in xs)
    if any(y != y for y in ys):
        return math.nan
    x = ys[math.floor((len(ys) - 1) * q)]
    if x == 0 or math.isinf(x):
        return x
    m, e = math.frexp(abs(x))
    m, e = 2 * m, e - 1
    j = math.ceil(50 * (m - 1))
    a, b = (1 + (j - 1) / 50, 1 + j / 50) if j else (0.99, 1.0)
    return math.copysign(math.ldexp(2 * a * b / (a + b), e), x)


def aggregate(op: str, values: list, param: int | None, out: Type, times: list | None = None,
              t: int | None = None) -> object:
    """An aggregation over the values of the visible rows in (time, file position) order (`times`:
    the rows' times, for exp_decay_sum, at query time t)."""
    if op == "exp_decay_sum":
        kept = [(v, t - ti) for v, ti in zip(values, times) if v is not None]
        return _decayed([v for v, _ in kept], [a for _, a in kept], param)
    xs = [v for v in values if v is not None]  # semantics rule 3
    match op:
        case "first_k":
            return tuple(xs[:param])
        case "top_k":
            return tuple(sorted(xs, key=_rank, reverse=True)[:param])  # stable: ties in row order
        case "bottom_k":
            return tuple(sorted(xs, key=_rank)[:param])
        case "median":
            return _quantile(xs, 0.5)
        case "percentile":
            return _quantile(xs, param)
        case "approx_count_distinct":
            return _approx_distinct(xs)
        case "approx_percentile":
            return _approx_percentile(xs, param)
        case "skew" | "kurtosis":
            return _shape(op, xs)
        case "histogram":  # per listed value, how many values equal it (true is no 1); an empty window: zeros
            return tuple(len([x for x in xs if x == v and isinstance(x, bool) is isinstance(v, bool)]) for v in param)
        case "mode":  # the most frequent value; ties: the smallest
            if not xs:
                return None
            most = max(xs.count(x) for x in xs)
            return min(x for x in xs if xs.count(x) == most)
    floats = [x for x in xs if isinstance(x, float)]
    if op in ("variance", "stddev") and len(xs) < 2:
        return None  # rule 4: they need two values, whatever the values are
    if op in ("sum", "mean", "variance", "stddev", "min", "max") and any(math.isnan(x) for x in floats):
        return math.nan  # an aggregation over a NaN is NaN
    infinite = {x for x in floats if math.isinf(x)}
    if infinite and op in ("sum", "mean"):
        return math.nan if len(infinite) == 2 else infinite.pop()
    if infinite and op in ("variance", "stddev"):
        return math.nan
    match op:
        case "count":
            return len(xs)
        case "sum":
            if out.is_integer:
                return wrap64(sum(xs))  # wraps like int64 arithmetic
            return exact_float(sum((Fraction(x) for x in xs), Fraction(0)))
        case "mean":
            return exact_float(sum(Fraction(x) for x in xs) / len(xs)) if xs else None
        case "min":
            return min(xs) if xs else None
        case "max":
            return max(xs) if xs else None
        case "first":
            return xs[0] if xs else None
        case "last":
            return xs[-1] if xs else None
        case "count_distinct":
            return len(set(xs))
        case "variance" | "stddev":
            if len(xs) < 2:
                return None
            exact = [Fraction(x) for x in xs]
            mean = sum(exact) / len(exact)
            var = sum((x - mean) ** 2 for x in exact) / (len(exact) - 1)
            return exact_float(var) if op == "variance" else math.sqrt(exact_float(var))
        case "last_k":
            return tuple(reversed(xs[-param:])) if param else ()
    raise NotImplementedError(f"the oracle does not know aggregation `{op}`")


# --------------------------------------------------------------------------- plans


class _Query:
    """One (entity key, query time) pair of one spine row."""

    def __init__(self, plan: ir.Plan, tables: dict[str, list[dict]], row: dict, t: int, done: dict):
        self.plan, self.tables, self.row, self.t, self.done = plan, tables, row, t, done

    def visible(self, key: ir.SourceKey, entity_key: tuple) -> list[dict]:
        """Rows with this key and a time < t, in (time, file position) order (rules 1 and 5)."""
        src = self.plan.source(key.source)
        if any(k is None for k in entity_key):
            return []
        rows = [r for r in self.tables.get(key.source, [])
                if r.get(src.time) is not None and r[src.time] < self.t
                and tuple(r.get(c) for c in key.columns) == entity_key]
        return sorted(rows, key=lambda r: r[src.time])  # a stable sort keeps file order on ties

    def eval(self, e: ir.Expr, entity_key: tuple, src_row: dict | None = None) -> object:
        match e:
            case ir.Const(value=v, type=t):
                return v if t.name == "list" else to_type(v, t)
            case ir.Now():
                return self.t
            case ir.Column(name=n, type=t):
                return to_type(src_row.get(n), t)
            case ir.RequestInput(field=f, type=t):
                return to_type(self.row.get(f), t)
            case ir.FeatureRef(feature=f):
                return self.done[f]
            case ir.AsOf(key=k, column=c, type=t):
                rows = self.visible(k, entity_key)
                return to_type(rows[-1].get(c), t) if rows else None  # rule 6: that row's value, null included
            case ir.Aggregate():
                return self.aggregate(e, entity_key)
            case ir.Apply(op="and" | "or"):
                return scalar(e, [self.eval(a, entity_key, src_row) for a in e.args])
            case ir.Apply():
                return scalar(e, [self.eval(a, entity_key, src_row) for a in e.args])
        raise TypeError(f"unknown node {type(e).__name__}")

    def aggregate(self, e: ir.Aggregate, entity_key: tuple) -> object:
        src = self.plan.source(e.key.source)
        end = self.t if e.hop is None else self.t - self.t % e.hop  # rule W1: the hop boundary (% floors)
        rows = [r for r in self.visible(e.key, entity_key)
                if r[src.time] < end and (e.window is None or r[src.time] >= end - e.window)  # rule 2: [t - w, t)
                and (e.where is None or self.eval(e.where, entity_key, r) is True)]
        if e.gap is not None and rows:  # rule W3: number the sessions forward, keep the last one's rows
            number = [0]
            for k in range(1, len(rows)):
                number.append(number[-1] + (rows[k][src.time] - rows[k - 1][src.time] >= e.gap))
            rows = [r for r, k in zip(rows, number) if k == number[-1]]
        if e.column is None:
            values = [True] * len(rows)  # count(source) counts rows
        else:
            column_type = src.column_type(e.column)
            values = [to_type(r.get(e.column), column_type) for r in rows]
        at = self.t if e.hop is None else self.t - self.t % e.hop  # exp_decay_sum: ages from where the window ends
        return to_type(aggregate(e.op, values, e.param, e.type, [r[src.time] for r in rows], at), e.type)


def evaluate(plan: ir.Plan, service: str, version: int, spine: list[dict], tables: dict[str, list[dict]],
             time_column: str = "ts") -> list[dict]:
    """Each spine row's service outputs (by output name), computed from the documents' rules."""
    svc = plan.service(service, version)
    features = plan.closure(tuple(o.feature for o in svc.outputs))
    out = []
    for row in spine:
        done: dict[str, object] = {}
        q = _Query(plan, tables, row, row[time_column], done)
        for f in features:
            entity_key = tuple(row.get(k) for k, _ in plan.entity(f.entity).keys)
            v = to_type(q.eval(f.expr, entity_key), f.type)
            done[f.id] = f.default if v is None and f.default is not None else v  # rule 9
        out.append({o.name: done[o.feature] for o in svc.outputs})
    return out
