"""Command-line value types shared by the commands: durations and timestamps."""

from __future__ import annotations

import datetime as dt
import re

import click

_UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
          "w": 7 * 86_400_000_000}


def parse_duration(text: str) -> int:
    """`1d`, `6h`, `30m`, `15s`, `2w`, `500ms`, or a plain number of µs -> microseconds."""
    if text.strip().isdigit():
        return int(text)
    m = re.fullmatch(r"\s*(\d+)\s*(us|ms|s|m|h|d|w)\s*", text)
    if m is None:
        raise click.BadParameter(f"`{text}` is not a duration; write e.g. 1d, 6h, 30m, 15s")
    return int(m.group(1)) * _UNITS[m.group(2)]


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
