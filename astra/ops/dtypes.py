"""How each astra type is stored in Polars and in numpy, in one place."""

from __future__ import annotations

from astra.lang.types import Type


def polars_dtype(t: Type):
    """The Polars dtype that stores values of `t`."""
    import polars as pl

    simple = {
        "bool": pl.Boolean, "int32": pl.Int32, "int64": pl.Int64, "float32": pl.Float32,
        "float64": pl.Float64, "string": pl.String, "timestamp": pl.Datetime("us"),
        "duration": pl.Duration("us"), "null": pl.Null,
    }
    if t.name in simple:
        return simple[t.name]
    if t.name == "list":
        return pl.List(polars_dtype(t.item))
    if t.name == "vector":
        return pl.Array(polars_dtype(t.item), t.size)
    raise TypeError(f"no Polars dtype for {t}")


def numpy_dtype(t: Type):
    """The numpy dtype that stores values of `t` (timestamps and durations as int64 µs)."""
    import numpy as np

    simple = {
        "bool": np.dtype(np.bool_), "int32": np.dtype(np.int32), "int64": np.dtype(np.int64),
        "float32": np.dtype(np.float32), "float64": np.dtype(np.float64),
        "string": np.dtypes.StringDType(), "timestamp": np.dtype(np.int64),
        "duration": np.dtype(np.int64), "null": np.dtype(np.bool_),
    }
    if t.name in simple:
        return simple[t.name]
    # lists (last_k) are object arrays of tuples; a vector is one opaque N * 4-byte value (its
    # float32 elements), so tables and kernels move it as one item (`astra.ops.vectors.unpack`)
    if t.name == "vector":
        return np.dtype((np.void, 4 * t.size))
    return np.dtype(object)


def filler(t: Type):
    """The harmless value stored in null slots."""
    return {"bool": False, "string": ""}.get(t.name, 0)
