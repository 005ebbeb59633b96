"""Vector functions over `vector<float32, N>`: similarity, distance, norm and element-wise arithmetic.

Each function is declared once, like the scalar functions of `astra.ops.functions`: a type rule, a
plain-Python reference and one numpy kernel that both engines run (the Polars lowering hands its
columns to the same kernel through `map_batches`), so offline and online agree to the bit.

The arithmetic rule (docs/language.md, "Vectors"): every element is widened to float64; products,
differences and squares are taken in float64; sums run left to right over the elements in float64
(index 0 first, no pairwise or BLAS reordering), so the plain-Python reference repeats them exactly.
Scalar results (`dot`, `cosine`, `euclidean`, `manhattan`, `norm`) are float64; vector results
(`normalize`, `+ - *`, scalar multiply) are rounded once to float32 at the end.  A product of two
float32 values is exact in float64 and a float32 square cannot overflow it, so huge (1e30) and tiny
(1e-30) elements neither overflow nor vanish before the final rounding.

A null vector makes every function of it null (strict).  Elements are never null, and a vector
entering the store or read from a source file must have finite elements (`vector_error`).
"""

from __future__ import annotations

import math

from astra.lang.types import FLOAT64, Type
from astra.ops.registry import LazyModule, ScalarOp, TypeRuleError, register

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time

# rows per block of the left-to-right sums, so one block of float64 partial sums stays small
_BLOCK_ELEMENTS = 1 << 22

# The element-wise operators spell as symbols in the language and are routed by the checker
# (`routed`): their registry names are no identifiers, so they cannot be called by name.
ELEMENTWISE = {"+": "vector+", "-": "vector-", "*": "vector*"}
LENGTH_CODE = "E0220"  # the checker's code for vectors of different lengths
SCALE = "number*vector"  # a number times a vector (either order is written; the number comes first here)


def _vec(t: Type) -> bool:
    return t.name == "vector"


def _expect_vector(args: tuple[Type, ...], i: int, fn: str) -> None:
    if not _vec(args[i]):
        raise TypeRuleError(f"`{fn}` expects a vector as argument {i + 1}, got `{args[i]}`", arg=i,
                            help="vector columns are declared `vector<float32, N>`")


def _same_length(args: tuple[Type, ...], fn: str) -> None:
    a, b = args
    if a.size != b.size:
        raise TypeRuleError(f"`{fn}` needs vectors of one length, got `{a.non_null()}` and `{b.non_null()}`",
                            arg=1, help=f"both vectors must have {a.size} elements", code=LENGTH_CODE)


def _opt(args: tuple[Type, ...]) -> bool:
    return any(a.optional for a in args)


def _infer_pair(fn: str, nullable: bool = False):
    def infer(args):
        _expect_vector(args, 0, fn)
        _expect_vector(args, 1, fn)
        _same_length(args, fn)
        return FLOAT64.nullable(nullable or _opt(args))

    return infer


def _infer_one(fn: str, vector_result: bool = False, nullable: bool = False):
    def infer(args):
        _expect_vector(args, 0, fn)
        out = args[0].non_null() if vector_result else FLOAT64
        return out.nullable(nullable or _opt(args))

    return infer


def _infer_elementwise(sym: str):
    def infer(args):
        _expect_vector(args, 0, sym)
        _expect_vector(args, 1, sym)
        _same_length(args, sym)
        return args[0].non_null().nullable(_opt(args))

    return infer


def _infer_scale(args):
    s, v = args
    if not s.is_numeric:
        raise TypeRuleError(f"`*` multiplies a vector by a number, got `{s}`", arg=0)
    _expect_vector(args, 1, "*")
    return v.non_null().nullable(_opt(args))


# --------------------------------------------------------------------------- numpy kernels


def _f64(a):
    """A batch of vectors (n, N) (or a column of numbers) as float64."""
    return np.asarray(a, dtype=np.float64)


def unpack(values):
    """The online form of a batch of vectors (one void item of N float32 each) as (n, N) float32."""
    if values.dtype.kind != "V":
        return values
    n = len(values)
    return np.ascontiguousarray(values).view(np.float32).reshape(n, values.dtype.itemsize // 4)


def pack(rows):
    """(n, N) float32 rows as the online form: one void item per vector."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return rows.view(np.dtype((np.void, 4 * rows.shape[1]))).reshape(len(rows))


def row_sums(x):
    """Each row's sum, left to right in float64 (the order the reference adds in), block by block."""
    x = _f64(x)
    n, width = x.shape
    out = np.empty(n, np.float64)
    step = max(1, _BLOCK_ELEMENTS // max(width, 1))
    for lo in range(0, n, step):
        out[lo:lo + step] = np.add.accumulate(x[lo:lo + step], axis=1)[:, -1]
    return out + 0.0  # a sum that starts from 0.0, as the reference's: never -0.0


def _f32(x):
    with np.errstate(over="ignore"):  # past float32's range is +-inf (IEEE), as in the reference
        return x.astype(np.float32)


def _dot(out, a, b):
    return row_sums(_f64(a) * _f64(b))


def _norm(out, a):
    a = _f64(a)
    return np.sqrt(row_sums(a * a))


def _euclidean(out, a, b):
    d = _f64(a) - _f64(b)
    return np.sqrt(row_sums(d * d))


def _manhattan(out, a, b):
    return row_sums(np.abs(_f64(a) - _f64(b)))


def _cosine(out, a, b):
    a, b = _f64(a), _f64(b)
    aa, bb = row_sums(a * a), row_sums(b * b)
    ok = (aa > 0) & (bb > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = row_sums(a * b) / (np.sqrt(aa) * np.sqrt(bb))
    return np.clip(np.where(ok, c, 0.0), -1.0, 1.0), ok


def _normalize(out, a):
    a = _f64(a)
    n = np.sqrt(row_sums(a * a))
    ok = n > 0
    return _f32(a / np.where(ok, n, 1.0)[:, None]), ok


def _elementwise(fn):
    def kernel(out, a, b):
        return _f32(fn(_f64(a), _f64(b)))

    return kernel


def _scale(out, s, v):
    with np.errstate(invalid="ignore"):  # nan or inf times 0 is NaN, as IEEE says
        return _f32(_f64(s)[:, None] * _f64(v))


# --------------------------------------------------------------------------- references


def _ref_sum(xs) -> float:
    s = 0.0
    for x in xs:
        s += x
    return s


def _r32(x: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.float32(x))


def _ref_dot(out, a, b):
    return _ref_sum(float(x) * float(y) for x, y in zip(a, b))


def _ref_norm(out, a):
    return math.sqrt(_ref_sum(float(x) * float(x) for x in a))


def _ref_euclidean(out, a, b):
    return math.sqrt(_ref_sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)))


def _ref_manhattan(out, a, b):
    return _ref_sum(abs(float(x) - float(y)) for x, y in zip(a, b))


def _ref_cosine(out, a, b):
    aa, bb = _ref_sum(float(x) * float(x) for x in a), _ref_sum(float(y) * float(y) for y in b)
    if aa == 0 or bb == 0:
        return None
    return min(1.0, max(-1.0, _ref_dot(out, a, b) / (math.sqrt(aa) * math.sqrt(bb))))


def _ref_normalize(out, a):
    n = _ref_norm(out, a)
    return None if n == 0 else tuple(_r32(float(x) / n) for x in a)


def _ref_elementwise(fn):
    return lambda out, a, b: tuple(_r32(fn(float(x), float(y))) for x, y in zip(a, b))


def _ref_scale(out, s, v):
    s = float(s)
    return tuple(_r32(s * float(x)) for x in v)


# --------------------------------------------------------------------------- Polars: the same kernels


def _pl():
    import polars

    return polars


def _as_numpy(s, vector: bool):
    """A Polars column as the kernels take it: an Array column as (n, N) float32 (null rows NaN, never
    read: the strict wrapper nulls them), a number column as float64."""
    return s.to_numpy() if vector else s.cast(_pl().Float64).to_numpy()


def _polars(kernel, kinds: tuple[bool, ...]):
    """A Polars lowering running `kernel` on whole columns (a literal broadcast to their length)."""
    def lower(out, *exprs):
        from astra.ops.dtypes import polars_dtype

        pl = _pl()
        dtype = polars_dtype(out.non_null())

        def run(series):
            n = max(len(s) for s in series)
            arrays = []
            for s, vector in zip(series, kinds):
                a = _as_numpy(s, vector)
                arrays.append(np.broadcast_to(a, (n, *a.shape[1:])) if len(a) != n else a)
            with np.errstate(invalid="ignore", over="ignore"):
                got = kernel(out, *arrays)
            values, ok = got if isinstance(got, tuple) else (got, None)
            result = pl.Series("v", values, dtype=dtype)
            return result if ok is None else pl.select(pl.when(pl.Series(ok)).then(result)).to_series()

        return pl.map_batches(list(exprs), run, return_dtype=dtype, is_elementwise=True)

    return lower


def _numpy(kernel):
    """The numpy lowering: the kernel on unpacked vectors, a vector result packed again."""
    def lower(out, *args):
        got = kernel(out, *(unpack(a) for a in args))
        if out.name != "vector":
            return got
        return (pack(got[0]), got[1]) if isinstance(got, tuple) else pack(got)

    return lower


def _register(name: str, arity: int, infer, reference, kernel, kinds: tuple[bool, ...], doc: str) -> None:
    """`kinds`: per argument, True for a vector, False for a number."""
    register(ScalarOp(name=name, arity=(arity, arity), infer=infer, reference=reference,
                      polars=_polars(kernel, kinds), numpy=_numpy(kernel), doc=doc))


_register("dot", 2, _infer_pair("dot"), _ref_dot, _dot, (True, True),
          "dot(a, b): sum of a[i] * b[i], in float64, left to right")
_register("norm", 1, _infer_one("norm"), _ref_norm, _norm, (True,),
          "norm(v): the Euclidean length sqrt(dot(v, v))")
_register("euclidean", 2, _infer_pair("euclidean"), _ref_euclidean, _euclidean, (True, True),
          "euclidean(a, b): sqrt of the sum of (a[i] - b[i])^2")
_register("manhattan", 2, _infer_pair("manhattan"), _ref_manhattan, _manhattan, (True, True),
          "manhattan(a, b): sum of |a[i] - b[i]|")
_register("cosine", 2, _infer_pair("cosine", nullable=True), _ref_cosine, _cosine, (True, True),
          "cosine(a, b): cosine similarity dot(a, b) / (norm(a) * norm(b)) in [-1, 1]; null if either is zero")
_register("normalize", 1, _infer_one("normalize", vector_result=True, nullable=True), _ref_normalize,
          _normalize, (True,), "normalize(v): v / norm(v) as float32; null for the zero vector")
for _sym, _fn in (("+", lambda x, y: x + y), ("-", lambda x, y: x - y), ("*", lambda x, y: x * y)):
    _register(ELEMENTWISE[_sym], 2, _infer_elementwise(_sym), _ref_elementwise(_fn), _elementwise(_fn),
              (True, True), f"a {_sym} b of two vectors, element by element (float64, rounded to float32)")
_register(SCALE, 2, _infer_scale, _ref_scale, _scale, (False, True),
          "s * v (or v * s): every element times the number s (float64, rounded to float32)")


def routed(op: str, types: tuple[Type, ...]) -> tuple[str, tuple[int, ...]] | None:
    """The vector operator a `+ - *` over vector operands means, with the order its arguments take
    (`v * 2.0` is `number*vector(2.0, v)`); None when no operand is a vector."""
    if op not in ELEMENTWISE or not any(_vec(t) for t in types):
        return None
    a, b = types
    if op == "*" and _vec(a) != _vec(b):
        return (SCALE, (0, 1)) if _vec(b) else (SCALE, (1, 0))
    return ELEMENTWISE[op], (0, 1)


# --------------------------------------------------------------------------- values entering the engines


def vector_error(value, t: Type) -> str | None:
    """Why `value` is not a valid `t` (a vector: N finite numbers), or None when it is."""
    if isinstance(value, str | bytes | dict) or not hasattr(value, "__len__"):
        return f"is not a `{t.non_null()}` (a list of {t.size} numbers)"
    if len(value) != t.size:
        return f"has {len(value)} elements, expected {t.size} (`{t.non_null()}`)"
    for i, x in enumerate(value):
        if isinstance(x, bool) or (not isinstance(x, int | float) and not _is_np_number(x)):
            return f"element {i} is {x!r}, not a number"
        if not math.isfinite(x):
            return f"element {i} is {x!r}: vector elements must be finite"
        if abs(x) > 3.4028234663852886e38 and not math.isfinite(_r32(x)):
            return f"element {i} is {x!r}, beyond float32's range"
    return None


def _is_np_number(x) -> bool:
    return isinstance(x, np.integer | np.floating)


# --------------------------------------------------------------------------- mean of vectors over a window
# `mean(events.vector_column, window)`: declared by the `mean` aggregation (astra.ops.aggregations.sums),
# which hands vector columns to these; the checker puts N in the aggregate's `param` so each engine's
# kernel knows a vector mean from a number mean without looking at the data.


def mean_type(column: Type) -> Type:
    """The result of `mean` over a vector column: a vector of the same length, null for an empty window."""
    return column.non_null().nullable()


def mean_reference(values, width: int):
    """The element-wise mean of the non-null vectors, in (time, position) order: each element summed
    in float64 from 0.0, one row after another, divided by the count, rounded once to float32."""
    rows = [v for v in values if v is not None]
    if not rows:
        return None
    acc = [0.0] * width
    for row in rows:
        for i, x in enumerate(row):
            acc[i] += float(x)
    return tuple(_r32(s / len(rows)) for s in acc)


def segment_means(rows, offsets):
    """Each segment's element-wise mean of `rows` ((n_rows, N), the segments' rows in order, CSR
    `offsets`): the reference's order (row after row, float64 from 0.0), one vectorised step per row
    of the longest segment.  Returns ((n_segments, N) float32 means, non-empty flags)."""
    rows = np.asarray(rows, np.float64)
    offsets = np.asarray(offsets, np.int64)
    counts = np.diff(offsets)
    acc = np.zeros((len(counts), rows.shape[1]), np.float64)
    for k in range(int(counts.max(initial=0))):
        live = np.flatnonzero(counts > k)
        acc[live] += rows[offsets[live] + k]
    ok = counts > 0
    return _f32(acc / np.maximum(counts, 1)[:, None]), ok


def offline_mean(w, column: str, width: int):
    """The offline kernel: a Polars Array column of each query's mean (null when its window is empty)."""
    pl = _pl()
    seg = w.segments(column)
    rows = np.asarray(seg.values, np.float32).reshape(-1, width)
    means, ok = segment_means(rows, seg.offsets)
    result = pl.Series("mean", means, dtype=pl.Array(pl.Float32, width))
    return pl.select(pl.when(pl.Series(ok)).then(result)).to_series()


def online_mean(w, width: int):
    """The online kernel: the means as a `Vec` of packed vectors."""
    from astra.ops.registry import Vec

    seg = w.segments()
    rows = unpack(seg.values) if len(seg.values) else np.zeros((0, width), np.float32)
    means, ok = segment_means(rows, seg.offsets)
    return Vec(pack(means), ok)
