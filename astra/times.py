"""Points in time and durations from Python values, as the engines' int64 microseconds.

The Python API takes what a caller has at hand: integers (µs since the epoch, or µs), `datetime`
and `date` (naive means UTC, as everywhere in astra), numpy `datetime64`/`timedelta64`, ISO 8601
strings, `timedelta`, and durations written as in `.feat` files (`1d`, `6h`, `30m`).  Errors are
`TypeError`/`ValueError` whose message names the argument.

The duration syntax is defined here once (`DURATION_UNITS`, `parse_duration`, `format_duration`)
for the language (its lowering and the formatter), the CLI flags and the Python API; the grammar's
DURATION token is the same pattern (`DURATION_PATTERN`, a test holds the two equal).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

_EPOCH = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)
INT64_MAX = 2**63 - 1
# a whole number of one unit: `7d`, `6h`, `30m`, `15s`, `500ms`, `250us`, `2w`; no sign, space or fraction
DURATION_UNITS = {"w": 7 * 86_400_000_000, "d": 86_400_000_000, "h": 3_600_000_000, "m": 60_000_000,
                  "s": 1_000_000, "ms": 1_000, "us": 1}
DURATION_PATTERN = "[0-9]+(?:us|ms|[smhdw])"
_DURATION = re.compile("([0-9]+)(us|ms|[smhdw])")  # DURATION_PATTERN, with its parts as groups
_EXAMPLES = "7d, 6h, 30m, 15s, 500ms, 250us or 2w"


class DurationError(ValueError):
    """Text that is not a duration, or one too long for int64 µs; the message is the same wherever
    durations are written (the compiler's E0008, a CLI flag, the Python API)."""


def parse_duration(text: str) -> int:
    """A duration literal as written in `.feat` files -> µs."""
    m = _DURATION.fullmatch(text)
    if m is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise DurationError(f"`{shown}` is not a duration: write a whole number and a unit, as in .feat files "
                            f"({_EXAMPLES})")
    digits, unit = m.group(1), m.group(2)
    size = DURATION_UNITS[unit]
    limit = INT64_MAX // size
    # int() of a very long digit string is refused by Python (and slow): the length decides first
    count = int(digits) if len(digits) <= len(str(limit)) else limit + 1
    if count > limit:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise DurationError(f"duration `{shown}` is out of range: at most {limit}{unit} (about 292,000 years)")
    return count * size


def format_duration(us: int) -> str:
    """µs (>= 0) as a duration literal in the largest of d, h, m, s, ms, us that holds it exactly
    (`w` is left to the writer: `14d` stays `14d`); 0 is `0s`.  `parse_duration` reads it back."""
    if us == 0:
        return "0s"
    for unit in ("d", "h", "m", "s", "ms"):
        if us % DURATION_UNITS[unit] == 0:
            return f"{us // DURATION_UNITS[unit]}{unit}"
    return f"{us}us"


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
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise DurationError(f"{what}: {exc} (or pass a timedelta)") from None
    raise TypeError(f"{what}: expected a timedelta, a duration string such as '1d', or int µs, "
                    f"got {type(value).__name__}")
