"""Sparse vectors: the index/value form a `vector<float32, N>` may arrive in, made dense where it enters.

A sparse vector names its non-zero elements: `{"indices": [3, 17], "values": [0.5, -2.0]}` is the
vector of N elements that is 0.5 at 3, -2.0 at 17 and +0.0 everywhere else.  A source file holds it
as a struct column of two lists (Parquet or Arrow `struct<indices: list<int>, values: list<number>>`),
a push or a query as that JSON object (or a Python dict).  Both engines store and compute on the
dense vector, so a sparse column answers exactly what the same vectors written densely answer.

The rules (docs/language.md, "Sparse vectors"): `indices` and `values` have the same length; every
index is an integer in [0, N) and appears at most once (in any order); every value is a finite number
within float32's range, rounded to float32 like a dense element; empty lists are the zero vector; a
null struct is a null vector.  Anything else is an error naming the row, so a vector is never
guessed.  The conversion is vectorised: one scatter of every row's pairs into an N-wide array.
"""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl

FIELDS = ("indices", "values")


class SparseError(ValueError):
    """A sparse vector that breaks the rules; the message says which row (of a column) and why."""


def is_sparse_dtype(dtype: pl.DataType) -> bool:
    """A struct of exactly `indices` and `values` lists: the sparse form of a vector column."""
    return (isinstance(dtype, pl.Struct) and sorted(f.name for f in dtype.fields) == sorted(FIELDS)
            and all(isinstance(f.dtype, pl.List) for f in dtype.fields))


def is_sparse_value(value: object) -> bool:
    """A dict with the keys `indices` and `values` (a pushed or queried sparse vector)."""
    return isinstance(value, dict) and set(value) == set(FIELDS)


def dtype_problem(dtype: pl.DataType) -> str | None:
    """Why a struct column cannot hold sparse vectors, or None when it can."""
    if not is_sparse_dtype(dtype):
        return f"a sparse vector column is a struct of `indices` and `values` lists, found {dtype}"
    fields = {f.name: f.dtype.inner for f in dtype.fields}
    # lists that are all empty (or null) infer no element type: pl.Null is fine for either
    if not (fields["indices"].is_integer() or fields["indices"] == pl.Null):
        return f"sparse `indices` must be integers, found {fields['indices']}"
    if not (fields["values"].is_numeric() or fields["values"] == pl.Null):
        return f"sparse `values` must be numbers, found {fields['values']}"
    return None


def densify(s: pl.Series, size: int) -> pl.Series:
    """The sparse column `s` as dense vectors (`pl.Array(pl.Float32, size)`), nulls kept; a broken row
    raises `SparseError` naming the first such row."""
    why = dtype_problem(s.dtype)
    if why is not None:
        raise SparseError(why)
    n = len(s)
    valid = s.is_not_null().to_numpy()
    frame = pl.DataFrame({"valid": valid, "i": s.struct.field("indices"), "v": s.struct.field("values")})
    # the fields of a null struct are ignored, whatever a writer left in them
    frame = frame.with_columns(pl.when("valid").then(pl.col(c)).alias(c) for c in ("i", "v"))
    for c, name in (("i", "indices"), ("v", "values")):
        missing = valid & frame[c].is_null().to_numpy()
        if missing.any():
            raise SparseError(f"row {_first(missing)}: `{name}` is null in a non-null sparse vector")
    counts = frame["i"].list.len().fill_null(0).to_numpy()
    value_counts = frame["v"].list.len().fill_null(0).to_numpy()
    if (counts != value_counts).any():
        j = _first(counts != value_counts)
        raise SparseError(f"row {j}: {counts[j]} indices but {value_counts[j]} values")
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    flat_i = frame["i"].explode(empty_as_null=False, keep_nulls=False)
    flat_v = frame["v"].explode(empty_as_null=False, keep_nulls=False)
    for flat, name in ((flat_i, "an index"), (flat_v, "a value")):
        if flat.null_count():
            raise SparseError(f"row {rows[_first(flat.is_null().to_numpy())]}: {name} is null")
    huge = flat_i.cast(pl.Int64, strict=False).is_null().to_numpy()  # a uint64 beyond int64
    if huge.any():
        k = _first(huge)
        raise SparseError(f"row {rows[k]}: index {flat_i[k]} is outside [0, {size})")
    idx = flat_i.cast(pl.Int64).to_numpy()
    vals = flat_v.cast(pl.Float64).to_numpy()
    out_of_range = (idx < 0) | (idx >= size)
    if out_of_range.any():
        k = _first(out_of_range)
        raise SparseError(f"row {rows[k]}: index {idx[k]} is outside [0, {size})")
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isfinite(vals.astype(np.float32))  # NaN, infinite, or beyond float32 once rounded
    if bad.any():
        k = _first(bad)
        raise SparseError(f"row {rows[k]}: value {float(vals[k])!r} at index {idx[k]} is not a finite float32 number")
    flat = rows * size + idx  # one int64 per (row, index); equal neighbours after sorting are duplicates
    order = np.sort(flat)
    dup = order[1:] == order[:-1]
    if dup.any():
        where = order[1:][dup][0]
        raise SparseError(f"row {where // size}: index {where % size} appears more than once")
    dense = np.zeros((n, size), np.float32)
    dense[rows, idx] = vals.astype(np.float32)
    out = pl.Series(s.name, dense, dtype=pl.Array(pl.Float32, size)) if n else \
        pl.Series(s.name, [], dtype=pl.Array(pl.Float32, size))
    return out if valid.all() else pl.select(pl.when(pl.lit(pl.Series(valid))).then(out)).to_series().alias(s.name)


def dense_value(value: dict, size: int) -> np.ndarray:
    """One sparse vector given as {"indices": [...], "values": [...]} (the Python form) as N float32; a
    broken one raises `SparseError` saying why."""
    idx, vals = value["indices"], value["values"]
    for name, seq in (("indices", idx), ("values", vals)):
        if isinstance(seq, str | bytes | dict) or not hasattr(seq, "__len__"):
            raise SparseError(f"sparse `{name}` must be a list, got {type(seq).__name__}")
    if len(idx) != len(vals):
        raise SparseError(f"{len(idx)} indices but {len(vals)} values")
    out = np.zeros(size, np.float32)
    seen = set()
    for j, (i, x) in enumerate(zip(idx, vals)):
        if i is None or x is None:
            raise SparseError(f"{'indices' if i is None else 'values'}[{j}] is null")
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise SparseError(f"indices[{j}] is {i!r}, not an integer")
        if not 0 <= i < size:
            raise SparseError(f"indices[{j}]: index {i} is outside [0, {size})")
        if i in seen:
            raise SparseError(f"indices[{j}]: index {i} appears more than once")
        seen.add(i)
        if (why := _value_problem(x)) is not None:
            raise SparseError(f"values[{j}] is {x!r}, not a number" if why == NOT_A_NUMBER
                              else f"values[{j}]: {x!r} is {why}")
        out[i] = x
    return out


# --------------------------------------------------------------------------- the JSON form
# Over HTTP a sparse vector is an object from index to value, {"3": 0.5, "17": -2.0}: object keys are
# distinct, so a JSON Schema (`index_map_schema`) states every rule and accepts exactly what
# `from_index_map` does.  Python callers may use either form; `to_index_map` writes the JSON one.

_INDEX = re.compile(r"0|[1-9][0-9]*")


def from_index_map(value: dict, size: int) -> np.ndarray:
    """An index -> value object (keys decimal strings, or ints from Python) as N float32."""
    out = np.zeros(size, np.float32)
    for k, x in value.items():
        if isinstance(k, bool) or not (isinstance(k, int) or (isinstance(k, str) and _INDEX.fullmatch(k))):
            raise SparseError(f"key {str(k)[:32]!r} is not an index (a decimal integer from 0 to {size - 1})")
        i = int(k)
        if not 0 <= i < size:
            raise SparseError(f"index {i} is outside [0, {size})")
        if (why := _value_problem(x)) is not None:
            raise SparseError(f"the value at index {i} is {str(x)[:32]!r}, not a number" if why == NOT_A_NUMBER
                              else f"the value at index {i} is {x!r}: {why}")
        out[i] = x
    return out


def to_index_map(value: dict) -> dict[str, float]:
    """{"indices", "values"} (lists or arrays) as the JSON index -> value object."""
    return {str(int(i)): float(x) for i, x in zip(np.asarray(value["indices"]).tolist(),
                                                    np.asarray(value["values"]).tolist())}


def index_pattern(size: int) -> str:
    """A regular expression matching exactly the decimal integers 0 to size - 1 (no leading zeros)."""
    top = str(size - 1)
    alts = {"0"}
    for digits in range(1, len(top)):  # every number shorter than the largest
        alts.add("[1-9]" + (f"[0-9]{{{digits - 1}}}" if digits > 1 else ""))
    for i, ch in enumerate(top):  # as long as the largest: a smaller digit at i after its prefix
        lo, d, rest = (1 if i == 0 else 0), int(ch), len(top) - i - 1
        if d > lo:
            alts.add(top[:i] + f"[{lo}-{d - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alts.add(top)
    return "^(" + "|".join(sorted(alts)) + ")$"


def index_map_schema(size: int, value: dict) -> dict:
    return {"type": "object", "propertyNames": {"pattern": index_pattern(size)}, "additionalProperties": value,
            "description": f"a sparse vector: index (\"0\" to \"{size - 1}\") -> value; every other element is 0"}


NOT_A_NUMBER = "not a number"


def _value_problem(x) -> str | None:
    """Why one value of a sparse vector (either form) is refused, or None (rule 3)."""
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        return NOT_A_NUMBER
    with np.errstate(over="ignore", invalid="ignore"):
        if not (math.isfinite(x) and np.isfinite(np.float32(x))):
            return "not a finite float32 number"
    return None


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])
