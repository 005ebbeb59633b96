"""Reading and validating the engine's inputs: table files, source tables and the spine.

Every problem with an input becomes a `DataError` (`BackfillError`) that names the file or column, what was
expected and what was found.  Timestamps leave this module as int64 microseconds (UTC).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from astra.errors import DataError as BackfillError
from astra.lang.types import Type
from astra.ops.dtypes import polars_dtype
from astra.plan import ir
from astra.row_counts import count_rows, recording, source_entities
from astra.sparse import SparseError, densify, is_sparse_dtype

TIME = "__t"  # the int64 µs time column of a loaded source
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".arrow": "ipc", ".ipc": "ipc", ".feather": "ipc"}


def table_format(path: str | Path) -> str:
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise BackfillError(f"{path}: unknown table format; expected one of {', '.join(sorted(_FORMATS))}")
    return fmt


def scan_table(path: str | Path) -> pl.LazyFrame:
    """A lazy scan of a Parquet, CSV or Arrow IPC file (chosen by extension)."""
    fmt = table_format(path)
    if fmt == "parquet":
        return pl.scan_parquet(path)
    if fmt == "csv":
        return pl.scan_csv(path, try_parse_dates=True)
    return pl.scan_ipc(path)


def read_table(path: str | Path) -> pl.DataFrame:
    """A whole table file; a missing, corrupt or unreadable file is a `BackfillError`."""
    if not Path(path).exists():
        raise BackfillError(f"{path}: no such file")
    try:
        return scan_table(path).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BackfillError(f"{path}: cannot read it as {table_format(path)}: {' '.join(str(exc).split())}") from None


def write_table(df: pl.DataFrame, path: str | Path) -> None:
    """Write a table in the format its extension names; a failed write is a `BackfillError`."""
    fmt = table_format(path)
    if fmt == "csv":
        nested = [c for c, d in df.schema.items() if d.is_nested()]
        if nested:
            raise BackfillError(f"{path}: CSV cannot hold list columns ({', '.join(nested)}); "
                                "write .parquet or .arrow instead")
    try:
        if fmt == "parquet":
            # snappy: 2-3x faster to write than zstd; no min/max statistics: 15% faster, unused by readers of a backfill
            df.write_parquet(path, compression="snappy", statistics=False)
        elif fmt == "csv":
            df.write_csv(path)
        else:
            df.write_ipc(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BackfillError(f"{path}: cannot write it: {' '.join(str(exc).split())}") from None


# --------------------------------------------------------------------------- dtypes

_INTS = {
    "int32": (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16),
    "int64": (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32),
}


def compatible(found: pl.DataType, declared: Type) -> bool:
    """Can a column stored as `found` be read losslessly as `declared`?"""
    name = declared.name
    if name == "timestamp":
        return isinstance(found, pl.Datetime)
    if name == "duration":
        return isinstance(found, pl.Duration)
    if name in _INTS:
        return any(found == d for d in _INTS[name])
    if name == "float64":
        return found in (pl.Float32, pl.Float64)
    if name == "float32":
        return found == pl.Float32
    if name == "string":
        return found == pl.String or isinstance(found, pl.Categorical | pl.Enum)
    if name == "bool":
        return found == pl.Boolean
    if name == "list":
        return isinstance(found, pl.List) and compatible(found.inner, declared.item)
    if name == "vector":  # dense (a fixed-size or plain list) or sparse (a struct of indices and values)
        return isinstance(found, pl.Array | pl.List) or is_sparse_dtype(found)
    return False


def as_declared(col: str, declared: Type) -> pl.Expr:
    """The column converted to the engine's representation of `declared`."""
    e = pl.col(col)
    if declared.name == "timestamp":
        return micros_expr(e).cast(pl.Datetime("us")).alias(col)
    return e.cast(polars_dtype(declared)).alias(col)


def micros_expr(e: pl.Expr) -> pl.Expr:
    """A Datetime expression (any unit or zone) as int64 µs since the epoch (UTC)."""
    return e.dt.epoch("us")


# --------------------------------------------------------------------------- sources


def source_path(source: ir.Source, data_root: str | Path | None) -> Path:
    p = Path(source.path)
    return p if p.is_absolute() or data_root is None else Path(data_root) / p


def load_source(source: ir.Source, data_root: str | Path | None, columns: set[str],
                key_columns: set[str], drop_null_keys: bool = True, where: pl.Expr | None = None) -> pl.DataFrame:
    """The needed columns of a source in file order, without rows whose key or time is null.

    Such rows can never be visible; dropping them keeps file order, which is all the
    tie-break needs (with `drop_null_keys=False` only null times are dropped: a source read
    by several entities keeps a row for those whose key it has).  The time becomes int64 µs in
    column `TIME`.  A declared non-optional column (other than a key or the time) holding
    nulls fails the whole file, whether or not the query reads the column (`check_declared_nulls`).
    Inside `counting_rows()`, what was read and left out is recorded.  `where` (an expression
    of the file's columns) keeps only the rows it selects, filtered while the file is read.
    """
    path = source_path(source, data_root)
    if not path.exists():
        raise BackfillError(f"source `{source.name}`: file {path.resolve()} does not exist")
    lf = scan_table(path)
    try:
        schema = lf.collect_schema()
    except Exception as exc:  # a corrupt or unreadable file
        raise BackfillError(f"source `{source.name}`: cannot read {path}: {exc}") from exc
    declared = dict(source.columns)
    declared.setdefault(source.time, Type("timestamp"))
    need = sorted(columns | key_columns | {source.time})
    missing = [c for c in need if c not in schema]
    if missing:
        raise BackfillError(f"source `{source.name}` ({path}): missing column(s) {', '.join(missing)}; "
                            f"the file has {', '.join(schema.names())}")
    for c in need:
        t = declared.get(c)
        if t is None:
            continue
        if c == source.time and t.is_integer and schema[c].is_integer():
            continue
        if not compatible(schema[c], t):
            raise BackfillError(f"source `{source.name}` ({path}): column `{c}` should be {t.non_null()} "
                                f"({polars_dtype(t.non_null())}), found {schema[c]}")
    try:
        frame = (lf.select(need) if where is None else lf.select(need).filter(where)).collect()
    except pl.exceptions.PolarsError as exc:
        raise BackfillError(f"source `{source.name}`: cannot read {path}: {exc}") from None
    frame, checked = dense_vectors(source, path, frame)
    try:
        check_declared_nulls(source, path, lf, frame, schema)
    except BackfillError:
        if where is None:
            raise
        # the rows read are a part of the file: report the whole file's null count and rows
        check_declared_nulls(source, path, lf, frame.clear().select(), schema)
        raise
    check_vectors(source, path, frame, skip=checked)
    counts = recording()
    if counts is not None:
        counts[source.name] = count_rows(source, frame, source_entities(source, key_columns))
    # drop invisible rows only when there are any (a filter copies every column)
    must = (*sorted(key_columns if drop_null_keys else ()), source.time)
    if any(frame[c].null_count() for c in must):
        frame = frame.filter(pl.all_horizontal([pl.col(c).is_not_null() for c in must]))
    time = pl.col(source.time)
    time = time.cast(pl.Int64) if schema[source.time].is_integer() else micros_expr(time)
    convert = [as_declared(c, declared[c]) for c in need if c != source.time and c in declared
               and frame.schema[c] != _engine_dtype(declared[c])]
    return frame.with_columns(*convert, time.alias(TIME)).drop(
        [] if source.time in columns else [source.time])


def check_declared_nulls(source: ir.Source, path: Path, lf: pl.LazyFrame, frame: pl.DataFrame,
                         schema: pl.Schema) -> None:
    """Fail on nulls in a declared non-optional column of the file, other than keys and the time.

    Reading them as nulls would break the type checker's proof that the column is never null;
    keys and times may be null (such rows are invisible, docs/semantics.md rule 1)."""
    keys = {c for k in source.keys for c in k.columns}
    strict = [c for c, t in source.columns if not t.optional and c != source.time and c not in keys and c in schema]
    if not strict:
        return
    unread = [c for c in strict if c not in frame.columns]
    nulls = dict(zip(unread, lf.select(pl.col(c).null_count() for c in unread).collect().row(0))) if unread else {}
    nulls.update({c: frame[c].null_count() for c in strict if c in frame.columns})
    for c in strict:
        if nulls[c]:
            col = frame[c] if c in frame.columns else lf.select(c).collect().to_series()
            rows = col.is_null().arg_true().head(3).to_list()
            t = dict(source.columns)[c]
            raise BackfillError(f"source `{source.name}` ({path}): column `{c}` is declared `{t}` but holds "
                                f"{nulls[c]} null value(s), first at row(s) {', '.join(map(str, rows))}; "
                                f"declare it `{t.nullable()}` if it may be null")


def dense_vectors(source: ir.Source, path: Path, frame: pl.DataFrame) -> tuple[pl.DataFrame, set[str]]:
    """Sparse vector columns (index/value structs, `astra.sparse`) made dense, and their names (checked
    on the way: `check_vectors` need not scan them again); a broken one fails the file."""
    done = set()
    for c, t in source.columns:
        if t.name == "vector" and c in frame.columns and isinstance(frame.schema[c], pl.Struct):
            try:
                frame = frame.with_columns(densify(frame[c], t.size))
            except SparseError as exc:
                raise BackfillError(f"source `{source.name}` ({path}): sparse column `{c}` "
                                    f"(`{t.non_null()}`): {exc}") from None
            done.add(c)
    return frame, done


def check_vectors(source: ir.Source, path: Path, frame: pl.DataFrame, skip: set[str] = frozenset()) -> None:
    """Fail on a vector of the wrong length or with a null or non-finite element (vectors are dense and
    finite wherever they enter: docs/language.md, "Vectors"); a null vector is a null value.  `skip`:
    columns already checked."""
    for c, t in source.columns:
        if t.name != "vector" or c not in frame.columns or c in skip:
            continue
        col = frame[c]
        where = f"source `{source.name}` ({path}): column `{c}` (`{t.non_null()}`)"
        if not col.dtype.inner.is_numeric():
            raise BackfillError(f"{where} should hold vectors of numbers, found {col.dtype}")
        if isinstance(col.dtype, pl.Array) and col.dtype.size != t.size:
            raise BackfillError(f"{where} holds vectors of {col.dtype.size} elements, expected {t.size}")
        if not len(col):
            continue
        if isinstance(col.dtype, pl.List):
            wrong = (col.list.len() != t.size).fill_null(False)
            if wrong.any():
                j = int(wrong.arg_true()[0])
                raise BackfillError(f"{where} has a vector of {col[j].len()} elements at row {j}, expected {t.size}")
        values = col.cast(pl.Array(pl.Float32, t.size), strict=False)
        with np.errstate(invalid="ignore"):
            bad = values.is_not_null().to_numpy() & ~np.isfinite(values.to_numpy().reshape(len(values), -1)).all(axis=1)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise BackfillError(f"{where} holds a null, non-finite or out-of-range element at row {j}; vector "
                                f"elements must be finite float32 numbers")


def _engine_dtype(t: Type) -> pl.DataType:
    return pl.Datetime("us") if t.name == "timestamp" else polars_dtype(t)


# --------------------------------------------------------------------------- spine


def spine_times(spine: pl.DataFrame, time_column: str) -> np.ndarray:
    """The spine's query times as int64 µs, after checking the column exists, has a time dtype
    and no nulls."""
    if time_column not in spine.columns:
        raise BackfillError(f"spine has no time column `{time_column}`; its columns are "
                            f"{', '.join(spine.columns)} (choose another with --time-column)")
    s = spine[time_column]
    if isinstance(s.dtype, pl.Datetime):
        s = s.dt.epoch("us")
    elif s.dtype.is_integer():
        s = s.cast(pl.Int64)
    else:
        raise BackfillError(f"spine column `{time_column}` should be a datetime (or int64 µs), found {s.dtype}")
    check_no_nulls(s, f"spine column `{time_column}`")
    return s.to_numpy()


def check_no_nulls(s: pl.Series, what: str) -> None:
    n = s.null_count()
    if n:
        rows = s.is_null().arg_true().head(5).to_list()
        raise BackfillError(f"{what} has {n} null value(s), first at row(s) {', '.join(map(str, rows))}")


def spine_keys(spine: pl.DataFrame, entity: ir.Entity) -> pl.DataFrame:
    """The entity's key columns from the spine, checked and cast to the declared types."""
    names = [k for k, _ in entity.keys]
    missing = [k for k in names if k not in spine.columns]
    if missing:
        raise BackfillError(f"spine is missing key column(s) {', '.join(missing)} of entity `{entity.name}`; "
                            f"expected {', '.join(names)}, the spine has {', '.join(spine.columns)}")
    for k, t in entity.keys:
        if not compatible(spine.schema[k], t):
            raise BackfillError(f"spine column `{k}` should be {t.non_null()} ({polars_dtype(t.non_null())}), "
                                f"found {spine.schema[k]}")
        check_no_nulls(spine[k], f"spine key column `{k}`")
    return spine.select(as_declared(k, t.non_null()) for k, t in entity.keys)


def request_column(spine: pl.DataFrame, field: str, t: Type) -> pl.Series:
    if field not in spine.columns:
        raise BackfillError(f"spine is missing request-input column `{field}`; the spine has "
                            f"{', '.join(spine.columns)}")
    if not compatible(spine.schema[field], t):
        raise BackfillError(f"spine column `{field}` should be {t.non_null()} ({polars_dtype(t.non_null())}), "
                            f"found {spine.schema[field]}")
    if t.name == "vector" and isinstance(spine.schema[field], pl.Struct):  # sparse vectors, made dense
        try:
            return densify(spine[field], t.size)
        except SparseError as exc:
            raise BackfillError(f"spine column `{field}` (sparse `{t.non_null()}`): {exc}") from None
    return spine.select(as_declared(field, t.non_null())).to_series()
