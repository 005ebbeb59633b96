"""Command-line value types shared by the commands: durations and timestamps."""

from __future__ import annotations

import datetime as dt

import click

_INT64_MAX = 2**63 - 1


def parse_duration(text: str) -> int:
    """A duration written as in `.feat` files (`7d`, `6h`, `30m`, `15s`, `2w`), also `500ms` and
    `250us`, or a plain number of µs -> microseconds.  The Python API's parser
    (`astra.times.duration_micros`) is the one source of truth; this adds the plain number."""
    from astra.times import duration_micros

    try:
        value = int(text) if text.strip().isdigit() else duration_micros(text, "duration")
    except ValueError:
        raise click.BadParameter(f"`{text}` is not a duration; write it as in .feat files, e.g. 1d, 6h, 30m, "
                                 "15s (or 500ms, 250us)") from None
    if value > _INT64_MAX:
        raise click.BadParameter(f"`{text}` is out of range (at most about 292,000 years)")
    return value


def parse_time(text: str) -> int:
    """An ISO date or datetime (UTC unless it says otherwise), or µs since the epoch -> µs."""
    if text.strip().lstrip("-").isdigit():
        return int(text)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"`{text}` is not a date or datetime (e.g. 2026-03-01 or 2026-03-01T12:00)") \
            from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp()) * 1_000_000 + value.microsecond


class Duration(click.ParamType):
    """A click option type for durations, converted to µs."""

    name = "duration"

    def convert(self, value, param, ctx):
        return value if isinstance(value, int) else parse_duration(str(value))


class Timestamp(click.ParamType):
    """A click option type for points in time, converted to µs since the epoch."""

    name = "timestamp"

    def convert(self, value, param, ctx):
        return value if isinstance(value, int) else parse_time(str(value))


def format_time(us: int | None) -> str:
    """µs since the epoch as an ISO datetime in UTC ("-" for None)."""
    if us is None:
        return "-"
    return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC).replace(tzinfo=None).isoformat()
