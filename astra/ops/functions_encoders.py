"""Stateless encoders: fixed-bin `bucketize`, and `ordinal` and `one_hot` over an explicit list of
categories.  Their parameters are literals written in the feature, so nothing is fitted and
every engine reads the same numbers (fitted transforms, whose parameters come from data, are
elsewhere).  Same shape as `astra.ops.functions`: type rule, literal checks, reference, Polars
and numpy lowerings side by side.

Values compare as the language's `==` and `>=` compare (docs/semantics.md): an integer meets a
float as float64, and NaN is above every number.
"""

from __future__ import annotations

import functools

from astra.lang.types import INT32, INT64, STRING, Type
from astra.ops.registry import LazyModule, ScalarOp, TypeRuleError, register
from astra.ops.scalars import pl

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time

BOUNDS_CODE = "E0212"  # bucketize's boundaries
CATEGORIES_CODE = "E0213"  # ordinal's and one_hot's categories, and ordinal's unseen code
INT32_RANGE = (-(2**31), 2**31 - 1)


def _is_number(t: Type) -> bool:
    return t.name in ("int64", "float64")  # the types a number literal has


def _float_compare(x_type_is_integer: bool, values) -> bool:
    """Whether x meets these literals as float64 (a float on either side) or as int64."""
    return not x_type_is_integer or any(isinstance(v, float) for v in values)


# --------------------------------------------------------------------------- bucketize


def _infer_bucketize(args: tuple[Type, ...]) -> Type:
    x, bounds = args
    if not x.is_numeric:
        raise TypeRuleError(f"`bucketize` expects a number as argument 1, got `{x}`", arg=0)
    if bounds.name == "list" and bounds.item.is_null:
        raise TypeRuleError("`bucketize` needs at least one boundary", arg=1, code=BOUNDS_CODE,
                            help="e.g. `bucketize(x, [0, 10, 100])`")
    if bounds.name != "list" or not _is_number(bounds.item):
        raise TypeRuleError("`bucketize` needs a non-empty list of number literals as its boundaries, "
                            "e.g. `bucketize(x, [0, 10, 100])`", arg=1, code=BOUNDS_CODE)
    return INT32.nullable(x.optional)


def _check_bounds(values: dict[int, object]) -> None:
    bounds = values[1]
    as_float = any(isinstance(b, float) for b in bounds)  # ints in a list with a float are float64
    edges = [float(b) if as_float else b for b in bounds]
    for i in range(1, len(edges)):
        if not edges[i - 1] < edges[i]:
            word = "repeats" if edges[i - 1] == edges[i] else "is below"
            raise TypeRuleError(f"the boundaries of `bucketize` must be strictly increasing: item {i + 1} "
                                f"({bounds[i]!r}) {word} item {i} ({bounds[i - 1]!r})", arg=1, code=BOUNDS_CODE,
                                help="list each boundary once, smallest first")


def _edges(x_is_integer: bool, bounds: tuple):
    dtype = np.float64 if _float_compare(x_is_integer, bounds) else np.int64
    return np.array(bounds, dtype=dtype)


def _np_bucketize(out: Type, x, bounds: tuple):
    edges = _edges(x.dtype.kind in "iub", bounds)
    # side="right": a value equal to a boundary goes above it; numpy sorts NaN last, so NaN is n
    return np.searchsorted(edges, x.astype(edges.dtype), side="right").astype(np.int32)


def _pl_bucketize(out: Type, x, bounds: tuple):
    # the number of boundaries at or below x; Polars' `>=` puts NaN above every number too
    dtype = pl().Float64 if any(isinstance(b, float) for b in bounds) else None
    if dtype is not None:
        x = x.cast(dtype)
    at_or_below = [(x >= pl().lit(b, dtype=dtype or pl().Int64)).cast(pl().Int32) for b in bounds]
    return pl().sum_horizontal(at_or_below).cast(pl().Int32)


def _ref_bucketize(out: Type, x, bounds: tuple) -> int:
    if x != x:  # NaN is above every number
        return len(bounds)
    if _float_compare(not isinstance(x, float), bounds):
        x, bounds = float(x), [float(b) for b in bounds]
    return sum(1 for b in bounds if x >= b)


register(ScalarOp(
    name="bucketize", arity=(2, 2), infer=_infer_bucketize, reference=_ref_bucketize, polars=_pl_bucketize,
    numpy=_np_bucketize, literal_args=(1,), check_literals=_check_bounds,
    doc="bucketize(x, boundaries): how many of the literal boundaries [b1, ..., bn] are <= x, 0..n "
        "(numpy.digitize); NaN is n",
))

# --------------------------------------------------------------------------- categories


def _infer_categories(fn: str, args: tuple[Type, ...], at: int, many: bool) -> None:
    """x a string or an integer, and the literal(s) at `at` of its kind."""
    x, given = args[0], args[at]
    if not (x.name == "string" or x.is_integer):
        raise TypeRuleError(f"`{fn}` expects a string or an integer as argument 1, got `{x}`", arg=0)
    want = STRING if x.name == "string" else INT64
    item = given.item if many and given.name == "list" else given
    if many and item.is_null and given.name == "list":
        raise TypeRuleError(f"`{fn}` needs at least one category", arg=at, code=CATEGORIES_CODE)
    fits = item.name == "string" if want == STRING else item.is_integer  # a literal beside int32 x is int32
    if (given.name != "list") == many or not fits:
        kind = "`string`" if want == STRING else "integer"
        shape = f"a non-empty list of {kind} literals" if many else f"{'a' if want == STRING else 'an'} {kind} literal"
        example = ('["a", "b"]' if many else '"a"') if want == STRING else ("[1, 2]" if many else "1")
        raise TypeRuleError(f"`{fn}` of `{x.non_null()}` values needs {shape} as argument {at + 1}", arg=at,
                            code=CATEGORIES_CODE, help=f"e.g. `{fn}(x, {example})`")


def _infer_ordinal(args: tuple[Type, ...]) -> Type:
    _infer_categories("ordinal", args, 1, many=True)
    if len(args) == 3 and args[2].name not in ("int64", "int32"):
        raise TypeRuleError(f"the unseen code of `ordinal` must be an integer literal, got `{args[2]}`", arg=2,
                            code=CATEGORIES_CODE)
    return INT32.nullable(args[0].optional or len(args) == 2)


def _check_ordinal(values: dict[int, object]) -> None:
    categories = values[1]
    for i, c in enumerate(categories):
        if c in categories[:i]:
            raise TypeRuleError(f"category {c!r} is listed twice in `ordinal`", arg=1, code=CATEGORIES_CODE,
                                help="each category gets one code, its position in the list")
    unseen = values.get(2)
    if unseen is not None and not (INT32_RANGE[0] <= unseen <= INT32_RANGE[1]):
        raise TypeRuleError(f"the unseen code {unseen} of `ordinal` is not an int32", arg=2, code=CATEGORIES_CODE)
    if unseen is not None and 0 <= unseen < len(categories):
        raise TypeRuleError(f"the unseen code {unseen} of `ordinal` is the code of {categories[unseen]!r}", arg=2,
                            code=CATEGORIES_CODE,
                            help=f"codes 0..{len(categories) - 1} are the categories'; -1 is a common unseen code")


def _np_codes(x, categories: tuple):
    """Each row's position among the distinct categories, -1 where it is none of them, in one pass
    (not one `==` per category): integers by a binary search, strings by a dict.  Both are the
    language's `==` for these types (integers exactly, strings by code point)."""
    if x.dtype.kind in "iu":
        listed = np.array(categories, dtype=np.int64)
        order = np.argsort(listed)
        ordered, values = listed[order], x.astype(np.int64)
        at = np.minimum(np.searchsorted(ordered, values), len(listed) - 1)
        return np.where(ordered[at] == values, order[at], -1).astype(np.int32)
    lookup = _lookup(categories)
    return np.fromiter((lookup.get(v, -1) for v in x.tolist()), dtype=np.int32, count=len(x))


@functools.lru_cache(maxsize=256)  # a plan's category lists are few and fixed: built once each
def _lookup(categories: tuple) -> dict:
    return {c: i for i, c in enumerate(categories)}


def _np_ordinal(out: Type, x, categories: tuple, unseen: int | None = None):
    codes = _np_codes(x, categories)
    found = codes >= 0
    return np.where(found, codes, unseen).astype(np.int32) if unseen is not None else (codes, found)


def _pl_ordinal(out: Type, x, categories: tuple, unseen: int | None = None):
    if not isinstance(categories[0], str):
        x = x.cast(pl().Int64)  # an int32 x meets int64 categories without narrowing them
    return x.replace_strict(list(categories), list(range(len(categories))), return_dtype=pl().Int32,
                            default=pl().lit(unseen, dtype=pl().Int32))


def _ref_ordinal(out: Type, x, categories: tuple, unseen: int | None = None) -> int | None:
    return next((i for i, c in enumerate(categories) if x == c), unseen)


register(ScalarOp(
    name="ordinal", arity=(2, 3), infer=_infer_ordinal, reference=_ref_ordinal, polars=_pl_ordinal,
    numpy=_np_ordinal, literal_args=(1, 2), check_literals=_check_ordinal,
    doc="ordinal(x, categories[, unseen]): the position of x in the literal list [c0, c1, ...] (int32); "
        "a value not in it gives `unseen`, or null without one; null stays null",
))


def _infer_one_hot(args: tuple[Type, ...]) -> Type:
    _infer_categories("one_hot", args, 1, many=False)
    return INT32.nullable(args[0].optional)


register(ScalarOp(
    name="one_hot", arity=(2, 2), infer=_infer_one_hot,
    reference=lambda out, x, c: int(x == c),
    polars=lambda out, x, c: (x == pl().lit(c)).cast(pl().Int32),
    numpy=lambda out, x, c: (_np_codes(x, (c,)) == 0).astype(np.int32), literal_args=(1,),
    doc="one_hot(x, c): 1 when x == c, else 0 (int32; an unseen value is 0 in every column); null stays null",
))
