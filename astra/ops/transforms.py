"""Fitted transforms: what the language's `standard_scale(x)`, `quantile_bucketize(x, 10)`,
`ordinal(x)`, `impute(x, mean)` ... compute once their statistics are known.

A fitted call is checked into an unbound placeholder, `Apply(op="fit:NAME")`, which no engine
runs.  `astra fit` computes the statistics over a training spine and `astra.plan.fit.bind`
rewrites each placeholder into one of the four engine operators below, the statistics becoming
literal arguments.  Like every operator they carry a type rule, a plain-Python reference, a
Polars and a numpy lowering side by side, so the offline and online engines apply a fit
identically.  Their names are not identifiers, so `.feat` text cannot call them.

Each transform's `fit` works on the pre-transform values as a Polars Series (nulls included) and
returns its statistics as plain JSON data; `apply` turns them into the bound IR expression.
"""

from __future__ import annotations

import bisect
import functools
import math

import attrs

from astra.lang.types import FLOAT64, INT32, Type, widen
from astra.ops.dtypes import numpy_dtype, polars_dtype
from astra.ops.registry import LazyModule, ScalarOp, TypeRuleError, Vec, register

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time

PLACEHOLDER = "fit:"  # prefix of an unbound fitted call's op name
IMPUTE_METHODS = ("mean", "median", "mode")
QUANTILE_INTERPOLATION = "linear"  # numpy.quantile's default, as scikit-learn's RobustScaler uses
UNSEEN = -1  # `ordinal(x)` of a category the fit never saw (OrdinalEncoder's unknown_value=-1)
MAX_BINS = 1000
MAX_ONE_HOT = 1000  # categories a fitted one_hot may learn (each row holds one item per category)


def pl():
    import polars

    return polars


class FitDataError(Exception):
    """Training values a transform cannot be fitted on (none at all, infinities); one line."""


# --------------------------------------------------------------------------- engine operators


def _infer_scale(args):
    return FLOAT64.nullable(args[0].optional)


# (x - center) * (1 / scale), the reciprocal taken once in Python: Polars divides a column by a
# scalar as a multiplication by its reciprocal, so a true division would differ by an ulp offline
def _ref_scale(out, x, center, scale):
    return (float(x) - center) * (1.0 / scale)


def _pl_scale(out, x, center, scale):
    return (x.cast(pl().Float64) - center) * (1.0 / scale)


def _np_scale(out, x, center, scale):
    with np.errstate(over="ignore", invalid="ignore"):  # past float64 is ±inf, inf - inf NaN, as in Polars
        return (x.astype(np.float64) - center) * (1.0 / scale)


def _one_scale(out, center, scale):
    r = 1.0 / scale  # the same reciprocal `_np_scale` multiplies by

    def scale_one(x):
        return (float(x) - center) * r
    return scale_one


def _inline_scale(out, x, xf, const, center, scale):
    return f"({xf} - {const(float(center))}) * {const(1.0 / scale)}"  # the reciprocal `_np_scale` multiplies by


register(ScalarOp(
    name="fitted.scale", arity=(3, 3), infer=_infer_scale, reference=_ref_scale, polars=_pl_scale,
    numpy=_np_scale, literal_args=(1, 2), one=_one_scale, inline=_inline_scale,
    doc="(x - center) * (1 / scale) in float64: a fitted standard_scale, min_max_scale or robust_scale"))


def _infer_bins(args):
    return INT32.nullable(args[0].optional or args[0].is_float)


def _ref_bins(out, x, edges):
    x = float(x)
    return None if x != x else bisect.bisect_right(edges, x)


def _pl_bins(out, x, edges):
    x = x.cast(pl().Float64)
    # the number of inner edges <= x; a comparison per edge keeps the rule the reference's bisect has
    count = pl().sum_horizontal([(x >= e).cast(pl().Int32) for e in edges]) if edges else pl().lit(0)
    return pl().when(x.is_nan()).then(None).otherwise(count.cast(pl().Int32))


@functools.lru_cache(maxsize=256)
def _edges_array(edges: tuple):
    return np.asarray(edges, dtype=np.float64)  # one array per fitted edge list, not one per query


def _np_bins(out, x, edges):
    x = x.astype(np.float64)
    nan = np.isnan(x)
    index = np.searchsorted(_edges_array(tuple(edges)), np.where(nan, 0.0, x), side="right")
    return index.astype(np.int32), ~nan


def _one_bins(out, edges):
    edges, cut = tuple(float(e) for e in edges), bisect.bisect_right  # the float64 edges `_np_bins` searches

    def bins_one(x):
        x = float(x)
        return None if x != x else cut(edges, x)
    return bins_one


def _inline_bins(out, x, xf, const, edges):
    edges = tuple(float(e) for e in edges)
    return f"None if {x} != {x} else {const(bisect.bisect_right)}({const(edges)}, {xf})"  # x != x: NaN


register(ScalarOp(
    name="fitted.bins", arity=(2, 2), infer=_infer_bins, reference=_ref_bins, polars=_pl_bins,
    numpy=_np_bins, literal_args=(1,), one=_one_bins, inline=_inline_bins,
    doc="the number of inner bin edges <= x (a fitted quantile_bucketize); null for NaN"))


def _infer_vocab(args):
    return INT32.nullable(args[0].optional)


def _key(v):
    return int(v) if isinstance(v, bool) else v  # bools are looked up as 0 / 1, as stored in a fit


def _ref_vocab(out, x, categories):
    return {c: i for i, c in enumerate(categories)}.get(_key(x), UNSEEN)


def _pl_vocab(out, x, categories):
    if not categories:
        return pl().lit(UNSEEN, dtype=pl().Int32)
    if isinstance(categories[0], str):
        old = pl().Series(categories, dtype=pl().String)
    else:
        x, old = x.cast(pl().Int64), pl().Series(categories, dtype=pl().Int64)
    return x.replace_strict(old, pl().Series(range(len(categories)), dtype=pl().Int32), default=UNSEEN,
                            return_dtype=pl().Int32)


@functools.lru_cache(maxsize=256)
def _vocab_index(categories: tuple) -> dict:
    return {c: i for i, c in enumerate(categories)}  # one dict per fitted vocabulary, not one per query


def _np_vocab(out, x, categories):
    index = _vocab_index(tuple(categories))
    return np.fromiter((index.get(_key(v), UNSEEN) for v in x.tolist()), dtype=np.int32, count=len(x))


def _one_vocab(out, categories):
    get, generic = _vocab_index(tuple(categories)).get, np.generic

    def vocab_one(x):
        if isinstance(x, generic):  # as `_np_vocab` reads values (`tolist`)
            x = x.item()
        return get(_key(x), UNSEEN)
    return vocab_one


def _inline_vocab(out, x, xf, const, categories):
    # a numpy scalar (np.int64, np.str_, np.bool_) hashes and compares as its Python value, and a
    # bool as 0 / 1, so the dict finds it without `_key` or `.item()`
    return f"{const(_vocab_index(tuple(categories)).get)}({x}, {UNSEEN})"


register(ScalarOp(
    name="fitted.vocab", arity=(2, 2), infer=_infer_vocab, reference=_ref_vocab, polars=_pl_vocab,
    numpy=_np_vocab, literal_args=(1,), one=_one_vocab, inline=_inline_vocab,
    doc="the position of x in a fitted vocabulary (a fitted ordinal); -1 for a category not in it"))


def _infer_one_hot(args):
    return Type.list_of(INT32, optional=args[0].optional)


@functools.lru_cache(maxsize=256)
def _one_hot_rows(categories: tuple) -> tuple[dict, tuple]:
    """The position of each category, and the k + 1 rows a value can give: one 1 at category i's
    position (row i), and the all-zero row (row k) for a category the fit never saw."""
    k = len(categories)
    rows = tuple(tuple(int(i == j) for j in range(k)) for i in range(k + 1))
    return {c: i for i, c in enumerate(categories)}, rows


def _ref_one_hot(out, x, categories):
    index, rows = _one_hot_rows(tuple(categories))
    return list(rows[index.get(_key(x), len(categories))])


def _pl_one_hot(out, x, categories):
    if not categories:
        hot = pl().lit(pl().Series([], dtype=pl().Int32)).implode()
    else:
        key = x if isinstance(categories[0], str) else x.cast(pl().Int64)
        hot = pl().concat_list([(key == c).cast(pl().Int32) for c in categories])
    return pl().when(x.is_null()).then(None).otherwise(hot)


def _np_one_hot(out, x, categories):
    index, rows = _one_hot_rows(tuple(categories))
    k = len(categories)
    return np.fromiter((rows[index.get(_key(v), k)] for v in x.tolist()), dtype=object, count=len(x))


def _inline_one_hot(out, x, xf, const, categories):
    index, rows = _one_hot_rows(tuple(categories))
    return f"{const(rows)}[{const(index.get)}({x}, {len(categories)})]"


register(ScalarOp(
    name="fitted.one_hot", arity=(2, 2), infer=_infer_one_hot, reference=_ref_one_hot, polars=_pl_one_hot,
    numpy=_np_one_hot, literal_args=(1,), inline=_inline_one_hot,
    doc="one 0/1 indicator per category of a fitted vocabulary (a fitted one_hot); all 0 for an unseen category"))


def _infer_impute(args):
    out = widen(args[0].non_null(), args[1].non_null())
    if out is None:
        raise TypeRuleError(f"`impute` needs a value of the column's type: `{args[0]}` vs `{args[1]}`", arg=1)
    return out


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _ref_impute(out, x, value):
    return value if _missing(x) else x


def _pl_impute(out, x, value):
    dt = polars_dtype(out)
    x = x.cast(dt)
    missing = x.is_null() | x.is_nan() if out.is_float else x.is_null()
    return pl().when(missing).then(pl().lit(value, dtype=dt)).otherwise(x)


def _np_impute(out, x: Vec, value) -> Vec:
    values = x.values.astype(numpy_dtype(out), copy=False)
    missing = ~x.valid | np.isnan(values) if out.is_float else ~x.valid
    # the batch plan hands a custom operator its literal as a broadcast column, the single plan as a value
    filled = value.values.astype(values.dtype) if isinstance(value, Vec) else np.full(len(values), value, values.dtype)
    return Vec(np.where(missing, filled, values), np.ones(len(values), dtype=bool))


def _one_impute(out, value):
    def impute_one(x):
        return value if x is None or x != x else x  # x != x: NaN, of any float type
    return impute_one


def _inline_impute(out, x, xf, const, value):
    if out.name != "float64":  # another type's Python form is not spelt inline: `one`, then its converter
        return None
    return f"{const(float(value))} if {x} is None or {x} != {x} else {xf}"


register(ScalarOp(
    name="fitted.impute", arity=(2, 2), infer=_infer_impute, reference=_ref_impute, polars=_pl_impute,
    numpy=_np_impute, literal_args=(1,), null_policy="custom", one=_one_impute, inline=_inline_impute,
    doc="x, or the fitted (or given) value where x is null or NaN: a fitted impute"))


# --------------------------------------------------------------------------- fitting


def training_values(s):
    """The values a fit learns from: nulls and NaN dropped (scikit-learn treats NaN as missing)."""
    s = s.drop_nulls()
    if s.dtype.is_float():
        s = s.filter(~s.is_nan())
    return s


def _finite(s, what: str):
    s = training_values(s)
    if len(s) == 0:
        raise FitDataError(f"{what}: no non-null values in the training range to fit on")
    if s.dtype.is_float() and bool(s.is_infinite().any()):
        raise FitDataError(f"{what}: infinite values in the training range (scale statistics would be inf)")
    return s.cast(pl().Float64)


def _quantile(s, q: float) -> float:
    return float(s.quantile(q, interpolation=QUANTILE_INTERPOLATION))


def _nonzero(scale: float) -> float:
    return 1.0 if scale == 0.0 else scale


def fit_standard(s, what: str, params: tuple) -> dict:
    """Mean and population standard deviation (ddof=0, as StandardScaler); scale 1 for a column
    whose variance is within rounding error of 0, by scikit-learn's test: var <= n*eps*var + (n*eps*mean)^2."""
    s = _finite(s, what)
    n, mean, var = len(s), float(s.mean()), float(s.var(ddof=0))
    eps = float(np.finfo(np.float64).eps)
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    return {"center": mean, "scale": 1.0 if constant else math.sqrt(var)}


def fit_min_max(s, what: str, params: tuple) -> dict:
    """Minimum and range (scale 1 when max == min, as MinMaxScaler)."""
    s = _finite(s, what)
    lo, hi = float(s.min()), float(s.max())
    return {"center": lo, "scale": _nonzero(hi - lo)}


def fit_robust(s, what: str, params: tuple) -> dict:
    """Median and interquartile range (q75 - q25, linear interpolation; scale 1 when 0), as RobustScaler."""
    s = _finite(s, what)
    return {"center": _quantile(s, 0.5), "scale": _nonzero(_quantile(s, 0.75) - _quantile(s, 0.25))}


def fit_quantile_bins(s, what: str, params: tuple) -> dict:
    """The inner edges of `n` quantile bins (quantiles k/n, k = 1..n-1, linear interpolation),
    repeated edges kept once, so fewer bins remain when the data has heavy ties."""
    (n,) = params
    s = _finite(s, what)
    return {"edges": sorted({_quantile(s, k / n) for k in range(1, n)})}


def fit_vocab(s, what: str, params: tuple) -> dict:
    """The sorted distinct non-null values (OrdinalEncoder's categories_ order)."""
    s = s.drop_nulls()
    if s.dtype == pl().Boolean:
        s = s.cast(pl().Int64)
    return {"categories": sorted(s.unique().to_list())}


def fit_one_hot(s, what: str, params: tuple) -> dict:
    """The vocabulary of `fit_vocab`, refused past MAX_ONE_HOT categories: every row's list has
    one item per category, so a key-like column would make every value as long as the data."""
    stats = fit_vocab(s, what, params)
    if len(stats["categories"]) > MAX_ONE_HOT:
        raise FitDataError(f"{what}: {len(stats['categories']):,} distinct values in the training range, "
                           f"more than one_hot's {MAX_ONE_HOT:,} columns (use ordinal(x) or target_encode)")
    return stats


def fit_impute(s, what: str, params: tuple) -> dict:
    """The replacement of missing values: mean, median (linear) or mode (the smallest of the most
    frequent values, as SimpleImputer's most_frequent)."""
    (method,) = params
    if method == "mode":
        v = training_values(s)
        if len(v) == 0:
            raise FitDataError(f"{what}: no non-null values in the training range to fit on")
        counts = v.value_counts()
        top = counts.filter(pl().col("count") == pl().col("count").max())
        value = top.get_column(v.name).min()
        return {"value": value.item() if hasattr(value, "item") else value}
    s = _finite(s, what)
    return {"value": float(s.mean()) if method == "mean" else _quantile(s, 0.5)}


@attrs.frozen
class Transform:
    """One fitted transform of the language: its statistics and the bound expression they give."""

    name: str
    fit: object  # (values: pl.Series, what: str, params: tuple) -> dict
    engine_op: str
    doc: str


TRANSFORMS = {t.name: t for t in (
    Transform("standard_scale", fit_standard, "fitted.scale",
              "(x - mean) / std, population std (ddof=0); std 0 gives scale 1"),
    Transform("min_max_scale", fit_min_max, "fitted.scale", "(x - min) / (max - min); max == min gives scale 1"),
    Transform("robust_scale", fit_robust, "fitted.scale",
              "(x - median) / (q75 - q25), linear quantiles; an IQR of 0 gives scale 1"),
    Transform("quantile_bucketize", fit_quantile_bins, "fitted.bins",
              "the quantile bin of x, 0 .. n-1 (right-open bins); NaN gives null"),
    Transform("ordinal", fit_vocab, "fitted.vocab",
              "the position of x in the sorted training vocabulary; unseen gives -1, null gives null"),
    Transform("impute", fit_impute, "fitted.impute", "x, or the training mean / median / mode where x is missing"),
    Transform("one_hot", fit_one_hot, "fitted.one_hot",
              "a list of one 0/1 indicator per sorted training category; unseen gives all 0, null gives null"),
)}


def bound_args(name: str, stats: dict) -> tuple:
    """The literal arguments of the engine operator, after the transformed value, from a fit's statistics."""
    if TRANSFORMS[name].engine_op == "fitted.scale":
        return (float(stats["center"]), float(stats["scale"]))
    if name == "quantile_bucketize":
        return (tuple(float(e) for e in stats["edges"]),)
    if name in ("ordinal", "one_hot"):
        return (tuple(stats["categories"]),)
    return (stats["value"],)


from astra.ops import target_encode  # noqa: E402,F401  (registers fitted.target and the `target_encode` transform)
