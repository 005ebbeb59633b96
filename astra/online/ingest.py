"""Pushed rows -> validated columns (`Vec`s in each column's numpy dtype) and int64 µs times.

Rows may be a list of dicts (checked value by value, errors name the row and column) or a
Polars DataFrame (checked column by column).  The rules (docs/semantics.md, "Nulls in source
data"): the time must be non-null; a key column may be null, as long as the row has a complete
key for at least one of the source's entities (it counts for those); a column declared without
`?` (other than keys and the time) must be present and non-null; optional columns a row omits
are null; columns the source does not declare are errors.
"""

from __future__ import annotations

import datetime as dt
import functools

import attrs
import numpy as np
import polars as pl

from astra.lang.types import Type
from astra.online.errors import SchemaError
from astra.ops.dtypes import filler, numpy_dtype, polars_dtype
from astra.ops.registry import Vec
from astra.ops.vectors import pack, vector_error
from astra.plan import ir
from astra.row_counts import SourceRows, counting_rows, source_entities
from astra.sparse import SparseError, dense_value, densify, is_sparse_value
from astra.times import value_micros


def _ok(v, t: Type) -> bool:
    if isinstance(v, bool | np.bool_):
        return t.name == "bool"
    if isinstance(v, int | np.integer):
        return t.is_numeric or t.name in ("timestamp", "duration")
    if isinstance(v, float | np.floating):
        return t.is_float
    if isinstance(v, str):
        return t.name == "string"
    if isinstance(v, dt.datetime):
        return t.name == "timestamp"
    if isinstance(v, dt.timedelta):
        return t.name == "duration"
    return False


def _required(source: ir.Source) -> set[str]:
    """Columns every row must hold: the time and the non-optional columns that are not keys."""
    keys = _key_columns(source)
    return {source.time} | {c for c, t in source.columns if not t.optional and c not in keys}


def _key_columns(source: ir.Source) -> set[str]:
    return {c for k in source.keys for c in k.columns}


def _missing_message(source: ir.Source, row: int, column: str) -> str:
    if column == source.time:
        return (f"row {row} pushed to `{source.name}` has no `{column}` (the time column); a row without a "
                f"time is visible to no query")
    t = source.column_type(column)
    return (f"row {row} pushed to `{source.name}` has no `{column}` (declared `{t}`, not optional); declare it "
            f"`{t.nullable()}` if it may be null")


def _no_key_message(source: ir.Source, row: int) -> str:
    keys = "; ".join(f"{e}: {', '.join(k.columns)}" for e, k in zip(source.entities, source.keys))
    return (f"row {row} pushed to `{source.name}` has a null in the key of every entity it is for ({keys}); "
            f"it would be visible to none, so it is rejected")


def _fast_kinds(t: Type) -> frozenset:
    """Python types a column accepts without per-value checks (None is handled separately)."""
    if t.name == "bool":
        return frozenset({bool})
    if t.is_integer or t.name in ("timestamp", "duration"):
        return frozenset({int})
    if t.is_float:
        return frozenset({float, int})
    if t.name == "string":
        return frozenset({str})
    return frozenset()


@functools.lru_cache(maxsize=256)
def _schema(source: ir.Source) -> tuple[frozenset, tuple]:
    """A source's column names, and per column (name, numpy dtype, fast kinds, no nulls allowed,
    filler).  Key columns allow no nulls on the fast path: a partly-null key takes the checked one."""
    strict = _required(source) | _key_columns(source)
    return frozenset(c for c, _ in source.columns), tuple(
        (c, numpy_dtype(t), _fast_kinds(t), c in strict, filler(t)) for c, t in source.columns)


def from_dicts(source: ir.Source, rows: list[dict]) -> tuple[np.ndarray, dict[str, Vec]]:
    """Validate a list of row dicts; returns (times, {column: Vec}) for every declared column.

    Column by column when every value has a plain Python type the column accepts; anything
    else (or an error) takes the value-by-value path, whose messages name the row and column."""
    names, schema = _schema(source)
    n = len(rows)
    if n and not (rows[0].keys() <= names if n == 1 else set().union(*rows) <= names):
        return _from_dicts_checked(source, rows)
    cols = {}
    ones = np.ones(n, bool)  # shared by the columns without nulls (never mutated)
    for c, dtype, fast, required, fill in schema:
        if dtype.kind == "V":  # a vector column: every element is checked (`vector_error`)
            return _from_dicts_checked(source, rows)
        vals = [r.get(c) for r in rows]
        kinds = set(map(type, vals))
        has_null = type(None) in kinds
        if has_null:
            kinds.discard(type(None))
        if not kinds <= fast or (has_null and required):
            return _from_dicts_checked(source, rows)
        if has_null:
            valid = np.fromiter((v is not None for v in vals), bool, count=n)
            vals = [fill if v is None else v for v in vals]
        else:
            valid = ones
        cols[c] = Vec(np.array(vals, dtype=dtype) if n else np.zeros(0, dtype), valid)
    return cols[source.time].values.astype(np.int64), cols


def _from_dicts_checked(source: ir.Source, rows: list[dict]) -> tuple[np.ndarray, dict[str, Vec]]:
    types = dict(source.columns)
    required = _required(source)
    n = len(rows)
    values: dict[str, list] = {c: [None] * n for c in types}
    for j, row in enumerate(rows):
        for c, v in row.items():
            t = types.get(c)
            if t is None:
                raise SchemaError(f"row {j} pushed to `{source.name}` has column `{c}`, which the source does not "
                                  f"declare; columns: {', '.join(types)}")
            if v is None:
                continue
            if t.name == "vector":
                if is_sparse_value(v):  # {"indices": [...], "values": [...]}
                    try:
                        v = dense_value(v, t.size)
                    except SparseError as exc:
                        raise SchemaError(f"row {j} pushed to `{source.name}`: sparse `{c}`: {exc}") from None
                why = vector_error(v, t)
                if why is not None:
                    raise SchemaError(f"row {j} pushed to `{source.name}`: `{c}` {why}")
            elif not _ok(v, t):
                raise SchemaError(f"row {j} pushed to `{source.name}`: `{c}` = {v!r} is not a `{t.non_null()}`")
            values[c][j] = value_micros(v)
        for c in required:
            if row.get(c) is None:
                raise SchemaError(_missing_message(source, j, c))
        if source.keys and not any(all(row.get(c) is not None for c in k.columns) for k in source.keys):
            raise SchemaError(_no_key_message(source, j))
    cols = {}
    for c, t in types.items():
        vs = values[c]
        valid = np.fromiter((v is not None for v in vs), bool, count=n)
        if t.name == "vector":  # rows of a 2-D float32 array; a null vector's row is zeros
            cols[c] = Vec(vector_rows(vs, t), valid)
            continue
        f = filler(t)
        cols[c] = Vec(np.array([f if v is None else v for v in vs], dtype=numpy_dtype(t)), valid)
    return cols[source.time].values.astype(np.int64), cols


def from_frame(source: ir.Source, df: pl.DataFrame, skip_invisible: bool = False
               ) -> tuple[np.ndarray, dict[str, Vec]]:
    """Validate a DataFrame.  Rows with a null time or no complete key are errors; with
    `skip_invisible` (files read by the store, whose columns `read_source` chose) they are left
    out, and columns the frame lacks are null."""
    types = dict(source.columns)
    extra = [c for c in df.columns if c not in types]
    if extra:
        raise SchemaError(f"columns {extra} pushed to `{source.name}` are not declared; columns: {', '.join(types)}")
    keys = [k.columns for k in source.keys if all(c in df.columns for c in k.columns)]
    if not skip_invisible:
        missing = sorted(c for c in _required(source) if c not in df.columns)
        if missing:
            raise SchemaError(f"rows pushed to `{source.name}` lack column(s) {', '.join(missing)} (the time "
                              f"and the columns declared without `?` are required)")
        for c in sorted(_required(source)):
            if df[c].null_count():
                raise SchemaError(_missing_message(source, int(df[c].is_null().arg_true()[0]), c))
    visible = pl.col(source.time).is_not_null()
    if source.keys:
        visible &= pl.any_horizontal([pl.all_horizontal([pl.col(c).is_not_null() for c in k]) for k in keys]
                                     if keys else [pl.lit(False)])
    hidden = df.select((~visible).arg_true()).to_series()
    if len(hidden):
        if not skip_invisible:
            raise SchemaError(_no_key_message(source, int(hidden[0])))
        df = df.filter(visible)
    cols = {}
    for c, t in types.items():
        if c not in df.columns:
            cols[c] = Vec(np.full(len(df), filler(t), dtype=numpy_dtype(t)), np.zeros(len(df), bool))
            continue
        s = df[c]
        if t.name in ("timestamp", "duration"):
            if isinstance(s.dtype, pl.Datetime | pl.Duration):
                s = s.dt.cast_time_unit("us").cast(pl.Int64)
            elif s.dtype.is_integer():
                s = s.cast(pl.Int64)
            else:
                raise SchemaError(f"`{source.name}.{c}` is {s.dtype}, expected {t}")
        else:
            if t.name == "vector" and isinstance(s.dtype, pl.Struct):  # sparse: indices and values
                try:
                    s = densify(s, t.size)
                except SparseError as exc:
                    raise SchemaError(f"rows pushed to `{source.name}`: sparse `{c}`: {exc}") from None
            try:
                s = s.cast(polars_dtype(t), strict=True)
            except Exception as exc:
                raise SchemaError(f"`{source.name}.{c}` is {s.dtype}, expected {t}: {exc}") from None
        if t.name == "vector":
            cols[c] = _vector_column(source, c, s)
            continue
        valid = s.is_not_null().to_numpy()
        vals = s.fill_null(filler(t)).to_numpy()
        cols[c] = Vec(vals.astype(numpy_dtype(t)), valid)
    return cols[source.time].values.astype(np.int64), cols


def vector_rows(values: list, t) -> np.ndarray:
    """Checked vectors (None: null) in the online form (`astra.ops.vectors.pack`), zeros in null rows."""
    out = np.zeros((len(values), t.size), np.float32)
    for j, v in enumerate(values):
        if v is not None:
            out[j] = dense_value(v, t.size) if is_sparse_value(v) else v
    return pack(out)


def _vector_column(source: ir.Source, c: str, s: pl.Series) -> Vec:
    """An Array column in the online form (zeros where null); a non-finite element is an error."""
    valid = s.is_not_null().to_numpy()
    vals = s.to_numpy().reshape(len(s), -1) if len(s) else np.zeros((0, s.dtype.size), np.float32)
    bad = valid & ~np.isfinite(vals).all(axis=1)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise SchemaError(f"row {j} pushed to `{source.name}`: `{c}` holds a non-finite element; vector elements "
                          f"must be finite")
    return Vec(pack(np.where(valid[:, None], vals, 0)), valid)


def read_source(source: ir.Source, data_root, columns: set[str], key_columns: set[str]
                ) -> tuple[np.ndarray, dict[str, Vec], SourceRows]:
    """A source file as the store ingests it: `columns` and the key columns of the entities the
    store keeps, validated like the offline engine reads it (`astra.io.load_source`).

    Rows with a null time, or a null in the key of every entity read (`key_columns`), are left
    out and counted in the returned `SourceRows`; rows with some entity's key are kept."""
    from astra import io

    with counting_rows() as counts:
        df = io.load_source(source, data_root, columns | {source.time}, key_columns, drop_null_keys=False)
    read = source_entities(source, key_columns)  # the visibility test is over the entities read
    hide = attrs.evolve(source, entities=tuple(e for e, _ in read), keys=tuple(k for _, k in read))
    times, cols = from_frame(hide, df.drop(io.TIME), skip_invisible=True)
    return times, cols, counts[source.name]
