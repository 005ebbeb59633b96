"""Python values to the API's JSON and answers back to typed Polars frames, shared by `Online`
and `Client` so both send the same bodies and build the same frames.

Out: `datetime`/`date` and `timedelta` become µs integers, numpy scalars Python ones, and a
non-finite float the string `"NaN"`, `"Infinity"` or `"-Infinity"` (the protobuf JSON mapping;
plain JSON has no such numbers and orjson would silently write `null`).  In: every column gets
the Polars dtype of its declared type (timestamps `Datetime("us")`, durations `Duration("us")`,
lists, fixed-size vectors), and float values written as those strings become floats again, so
answers decode the same whether the server writes non-finite floats as strings or not.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_REF = re.compile(r"([A-Za-z_]\w*)@v(\d+)")


@attrs.frozen
class PushAck:
    """What a push stored: `accepted` rows; `rejected` the late ones (`{"index", "reason",
    "time", "bound", "message"}` each); the source's `watermark` (µs) after it; `durable` when the
    rows were on disk before the answer (always False in process: `Online` keeps no log)."""

    source: str
    accepted: int
    rejected: tuple[dict, ...]
    watermark: int | None
    durable: bool

    @classmethod
    def from_answer(cls, doc: dict) -> PushAck:
        """The acknowledgement from `/v1/push`'s answer document."""
        return cls(doc["source"], int(doc["accepted"]), tuple(doc.get("rejected") or ()), doc.get("watermark"),
                   bool(doc.get("durable")))


# ------------------------------------------------------------------ out: Python -> JSON values


def jsonable(v: Any) -> Any:
    """A Python value as the API writes it (see the module docstring); containers recursively."""
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):  # beyond 64 bits JSON parsers (the server's orjson) read a float; so do we
        return v if -(2**63) <= v < 2**64 else float(v)
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dt.datetime | dt.timedelta):
        from astra.times import value_micros

        return value_micros(v)
    if isinstance(v, dt.date):
        from astra.times import micros

        return micros(v)
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if hasattr(v, "item") and getattr(v, "shape", None) == ():  # a numpy scalar
        import numpy as np

        if isinstance(v, np.datetime64 | np.timedelta64):
            unit = "datetime64[us]" if isinstance(v, np.datetime64) else "timedelta64[us]"
            return None if np.isnat(v) else int(v.astype(unit).astype(np.int64))
        return jsonable(v.item())
    if hasattr(v, "tolist"):  # a numpy array or a Series
        return jsonable(v.tolist())
    raise TypeError(f"cannot send a {type(v).__name__} value ({v!r:.60}); send numbers, strings, booleans, "
                    f"datetimes, timedeltas or lists of them")


def rows_of(data: Any, what: str) -> list[dict]:
    """Rows as JSON-ready dicts, from a list of dicts or a Polars or pandas DataFrame."""
    if isinstance(data, Mapping):
        return [jsonable(data)]
    if hasattr(data, "columns") and hasattr(data, "shape"):  # a DataFrame
        import polars as pl

        frame = data if isinstance(data, pl.DataFrame) else pl.from_pandas(data)
        casts = []
        for name, dtype in frame.schema.items():
            if isinstance(dtype, pl.Datetime):  # as µs since the epoch, in UTC
                col = pl.col(name)
                if dtype.time_zone is not None:
                    col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                casts.append(col.dt.cast_time_unit("us").cast(pl.Int64))
            elif isinstance(dtype, pl.Duration):
                casts.append(pl.col(name).dt.cast_time_unit("us").cast(pl.Int64))
            elif isinstance(dtype, pl.Date):
                casts.append(pl.col(name).cast(pl.Datetime("us")).cast(pl.Int64))
        if casts:
            frame = frame.with_columns(casts)
        return [_sparse_on_the_wire(jsonable(r)) for r in frame.to_dicts()]
    if isinstance(data, list | tuple):
        out = []
        for j, r in enumerate(data):
            if not isinstance(r, Mapping):
                raise TypeError(f"{what}[{j}]: expected a dict of column -> value, got {type(r).__name__}")
            out.append(_sparse_on_the_wire(jsonable(r)))
        return out
    raise TypeError(f"{what}: expected a list of dicts or a Polars or pandas DataFrame, got {type(data).__name__}")


def _sparse_on_the_wire(row: dict) -> dict:
    """Sparse vectors given as {"indices", "values"} (as files and `Store.push` take them) in the
    JSON form the API takes, an index -> value object (docs/language.md, "Sparse vectors")."""
    from astra.sparse import is_sparse_value, to_index_map

    return {k: to_index_map(v) if is_sparse_value(v) else v for k, v in row.items()}


def _length_error(field: str, got: str, n: int):
    from astra.clients.errors import InvalidRequestError

    one = "one time" if field == "at" else "one object"
    return InvalidRequestError("invalid_value", f"{field}: {got} for {n} entities; give {one} or one per entity",
                               status=422, location=field)


def features_body(service: str, entities: Any, at: Any = None, *, request: Any = None, features: Any = None,
                  version: int | None = None) -> dict:
    """The `/v1/features` body for a call of `get` (`service` is `name@vN`, or `name` with `version`)."""
    body: dict[str, Any] = {}
    m = _REF.fullmatch(service.strip()) if isinstance(service, str) else None
    if m is not None:
        body["service"], body["version"] = m.group(1), int(m.group(2))
    else:  # the validator says what is wrong with it, the same way for both clients
        body["service"] = service
        if version is not None:
            body["version"] = version
    ents = body["entities"] = rows_of(entities, "entities")
    if at is not None:
        from astra.times import query_times

        times = query_times(at)
        if isinstance(times, int):
            body["at"] = times
        else:  # one time per entity: each entity carries its own
            times = times.tolist() if hasattr(times, "tolist") else list(times)
            if len(times) != len(ents):
                raise _length_error("at", f"{len(times)} times", len(ents))
            body["entities"] = ents = [{**e, "at": t} for e, t in zip(ents, times)]
    if isinstance(request, Mapping):
        body["request"] = jsonable(request)
    elif request is not None:  # one object per entity, carried by the entity
        rows = rows_of(request, "request")
        if len(rows) != len(ents):
            raise _length_error("request", f"{len(rows)} rows", len(ents))
        body["entities"] = [{**e, "request": r} for e, r in zip(ents, rows)]
    if features is not None:
        try:
            want = body["features"] = [features] if isinstance(features, str) else list(features)
        except TypeError:
            raise TypeError(f"features: expected a feature name or a list of them, got "
                            f"{type(features).__name__}") from None
        seen = set()
        for j, f in enumerate(want):  # the server would answer it twice; a frame holds one column per name
            if isinstance(f, str):
                if f in seen:
                    from astra.clients.errors import InvalidRequestError

                    raise InvalidRequestError("invalid_value", f"features[{j}]: `{f}` is asked for twice; "
                                              f"name each feature once", status=422, location=f"features[{j}]")
                seen.add(f)
    return body


# ------------------------------------------------------------------ in: answers -> typed frames


def _decode_floats(v: Any) -> Any:
    if isinstance(v, str):
        return NON_FINITE.get(v, v)
    if isinstance(v, list | tuple):
        return [_decode_floats(x) for x in v]
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _has_float(t) -> bool:
    return t.is_float or (t.item is not None and _has_float(t.item))


def _storage(t):
    """The Polars dtype values of `t` arrive in: timestamps and durations as Int64 µs."""
    import polars as pl

    from astra.ops.dtypes import polars_dtype

    if t.name in ("timestamp", "duration"):
        return pl.Int64
    if t.name == "list":
        return pl.List(_storage(t.item))
    if t.name == "vector":
        return pl.Array(_storage(t.item), t.size)
    return polars_dtype(t)


def column(name: str, type_name: str, values: list):
    """One typed Series from the answer's values of a column declared `type_name` (`float64?`)."""
    import polars as pl

    from astra.lang.types import parse_type
    from astra.ops.dtypes import polars_dtype

    t = parse_type(type_name)
    if _has_float(t):
        values = [_decode_floats(v) for v in values]
    elif t.is_integer:  # an integral float (`1.0`) is the integer 1 to the server as well
        values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
    if t.name in ("list", "vector"):
        values = [None if v is None else list(v) for v in values]
    storage, final = _storage(t), polars_dtype(t)
    s = pl.Series(name, values, dtype=storage)
    return s if storage == final else s.cast(final)


def service_keys(registry: dict, name: str, version: int) -> list[tuple[str, str]] | None:
    """(key column, type) of a service, from a registry document; None when it lists no such service."""
    for s in registry.get("services", ()):
        if s["name"] == name and s["version"] == version:
            return [(k["name"], k["type"]) for k in s["keys"]]
    return None


class _Layout:
    """How the answers of one column list decode: the Polars schema values arrive in, the casts
    to the declared dtypes (timestamps, durations), and which columns may hold float strings."""

    def __init__(self, columns: tuple[tuple[str, str], ...]):
        import polars as pl

        from astra.lang.types import parse_type
        from astra.ops.dtypes import polars_dtype

        types = [parse_type(t) for _, t in columns]
        self.schema = pl.Schema({name: _storage(t) for (name, _), t in zip(columns, types)})
        self.with_status = pl.Schema({**self.schema, "_missing": pl.List(pl.String), "_stale": pl.List(pl.String)})
        self.casts = {name: polars_dtype(t) for (name, _), t in zip(columns, types)
                      if polars_dtype(t) != self.schema[name]}
        self.floats = [j for j, t in enumerate(types) if _has_float(t)]
        self.integers = [j for j, t in enumerate(types) if t.is_integer]


_LAYOUTS: dict[tuple, _Layout] = {}

try:  # Polars' own row builder, without the Python-side schema handling of `pl.DataFrame(rows)`
    from polars._plr import PyDataFrame as _PyDataFrame
except ImportError:  # another Polars layout: the public constructor, a few times slower per call
    _PyDataFrame = None


def from_rows(rows: list[list], schema, fast: bool = True):
    """`pl.DataFrame(rows, schema=schema, orient="row")`, through Polars' row builder when it can:
    on a one-entity answer the public constructor costs more than the store's lookup."""
    import polars as pl

    if fast and _PyDataFrame is not None:
        try:
            return pl.DataFrame._from_pydf(_PyDataFrame.from_rows(rows, schema=schema))
        except (AttributeError, TypeError):  # the private API moved: the public constructor
            pass
    return pl.DataFrame(rows, schema=schema, orient="row")


def _layout(columns: tuple[tuple[str, str], ...]) -> _Layout:
    got = _LAYOUTS.get(columns)
    if got is None:
        if len(_LAYOUTS) > 256:  # a long-lived process asking for ever new subsets
            _LAYOUTS.clear()
        got = _LAYOUTS[columns] = _Layout(columns)
    return got


class DeprecatedServiceWarning(FutureWarning):
    """The service pins a deprecated feature group version; the message says why (shown by default,
    as the server's `Deprecation` header is meant to be seen)."""


def warn_deprecated(answer: dict) -> None:
    """Warn when the answer says its service is deprecated (its `deprecated` field)."""
    note = answer.get("deprecated")
    if note:
        import warnings

        warnings.warn(f"{answer['service']}@v{answer['version']}: {note}", DeprecatedServiceWarning, stacklevel=3)


def answer_frame(answer: dict, keys: list[tuple[str, str]], entities: list[dict], status: bool = False):
    """A `/v1/features` answer as a DataFrame: the key columns (as sent), then the features in
    answer order, typed as declared; with `status`, `_missing` and `_stale` (lists of the
    entity's missing and stale feature names).

    Built in one step from rows (a Series per column costs more than the lookup itself); the
    result is the frame `column` would build column by column."""
    columns = (*keys, *((f["name"], f["type"]) for f in answer["features"]))
    results = ((r["values"], r["missing"], r["stale"]) for r in answer["results"])
    return rows_frame(_layout(columns), [k for k, _ in keys], entities, results, status)


def rows_frame(lay: _Layout, names: list[str], entities: list[dict], results, status: bool = False):
    """`answer_frame` from its parts: the layout of the key and feature columns, the key column
    `names`, and per entity its (values, missing names, stale names).  `Online` calls it with a
    layout it keeps per service and selection, and no answer document in between."""
    import polars as pl

    rows = []
    for e, (values, missing, stale) in zip(entities, results):
        row = [e.get(k) for k in names]
        row.extend(values)
        for j in lay.floats:  # "NaN" and friends, lists of them
            v = row[j]
            if type(v) is str or type(v) is list:
                row[j] = _decode_floats(v)
        for j in lay.integers:  # an integral float (`1.0`) is the integer 1 to the server as well
            v = row[j]
            if type(v) is float and v.is_integer():
                row[j] = int(v)
        if status:
            row.append(list(missing))
            row.append(list(stale))
        rows.append(row)
    frame = from_rows(rows, lay.with_status if status else lay.schema)
    if lay.casts:
        frame = frame.with_columns(pl.col(n).cast(t) for n, t in lay.casts.items())
    return frame
