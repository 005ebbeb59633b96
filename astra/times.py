"""Points in time and durations from Python values, as the engines' int64 microseconds.

The Python API takes what a caller has at hand: integers (µs since the epoch, or µs), `datetime`
and `date` (naive means UTC, as everywhere in astra), numpy `datetime64`/`timedelta64`, ISO 8601
strings, `timedelta`, and durations written as in `.feat` files (`1d`, `6h`, `30m`).  Errors are
`TypeError`/`ValueError` whose message names the argument.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

_EPOCH = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)
_UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
          "w": 7 * 86_400_000_000}


def value_micros(value: object) -> object:
    """A `datetime` (naive means UTC) or `timedelta` as int µs; any other value unchanged."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return (value - _EPOCH) // _US
    if isinstance(value, dt.timedelta):
        return value // _US
    return value


def micros(value: object, what: str = "time") -> int:
    """One point in time as µs since the epoch (naive `datetime`, `date` and ISO strings mean UTC)."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not an ISO 8601 date or datetime (e.g. 2026-03-01T12:00)") \
                from None
    if isinstance(value, dt.datetime):
        return value_micros(value)
    if isinstance(value, dt.date):
        return (dt.datetime(value.year, value.month, value.day) - _EPOCH) // _US
    raise TypeError(f"{what}: expected a datetime, date, ISO 8601 string or int (µs since the epoch), "
                    f"got {type(value).__name__}")


def query_times(at: object, what: str = "at"):
    """`at` for `Store.get`: one time or one per entity, as int µs (a list or int64 array for several).

    Integers and integer arrays come back unchanged, so the server's path costs one type check."""
    if at is None or type(at) is int:
        return at
    if isinstance(at, np.ndarray):
        if at.dtype.kind in "iu":
            return at
        if at.dtype.kind == "M":
            return at.astype("datetime64[us]").astype(np.int64)
        return [micros(v, f"{what}[{j}]") for j, v in enumerate(at.tolist())]
    if isinstance(at, list | tuple):
        arr = np.asarray(at) if at else np.zeros(0, np.int64)
        if arr.dtype.kind in "iu" and arr.ndim == 1:
            return at if isinstance(at, list) else list(at)
        return [micros(v, f"{what}[{j}]") for j, v in enumerate(at)]
    if hasattr(at, "to_numpy") and hasattr(at, "dtype"):  # a Polars or pandas Series
        return query_times(at.to_numpy(), what)
    return micros(at, what)


def duration_micros(value: object, what: str = "every") -> int:
    """A duration as µs: an int (µs), a `timedelta`, a numpy `timedelta64`, or text such as `1d`, `6h`."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, dt.timedelta):
        return value // _US
    if isinstance(value, np.timedelta64):
        return int(value.astype("timedelta64[us]").astype(np.int64))
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*(us|ms|s|m|h|d|w)\s*", value)
        if m is None:
            raise ValueError(f"{what}: {value!r} is not a duration; write e.g. '1d', '6h', '30m', '15s' "
                             f"or pass a timedelta")
        return int(m.group(1)) * _UNITS[m.group(2)]
    raise TypeError(f"{what}: expected a timedelta, a duration string such as '1d', or int µs, "
                    f"got {type(value).__name__}")
