"""Command-line value types shared by the commands: durations and timestamps."""

from __future__ import annotations

import datetime as dt
import re

import click

_INT64_MAX = 2**63 - 1


def parse_duration(text: str) -> int:
    """A duration written as in `.feat` files (`7d`, `6h`, `30m`, `15s`, `500ms`, `250us`, `2w`) ->
    microseconds, by the language's own definition (`astra.times.parse_duration`): the same strings
    are accepted, with the same error text.  A plain number, read as µs, is still taken (deprecated:
    it warns, since `600` looks like seconds)."""
    from astra.times import DurationError, format_duration
    from astra.times import parse_duration as parse

    if text.isascii() and text.isdigit():
        value = int(text) if len(text) <= 19 else _INT64_MAX + 1
        if value > _INT64_MAX:
            raise click.BadParameter(f"`{text[:40]}` is out of range (at most about 292,000 years)")
        click.echo(f"warning: `{text}` has no unit and is read as microseconds (deprecated); write "
                   f"{format_duration(value)} as in .feat files", err=True)
        return value
    try:
        return parse(text)
    except DurationError as exc:
        raise click.BadParameter(str(exc)) from None


# The times a timestamp holds, as the server's validator has them: 0001-01-01 to 9999-12-31 UTC.
_TIME_LO, _TIME_HI = -62_135_596_800_000_000, 253_402_300_799_999_999
_INTEGER = re.compile(r"-?[0-9]{1,20}")


def parse_time(text: str) -> int:
    """An ISO date or datetime (UTC unless it says otherwise), or µs since the epoch -> µs, within
    the years 1-9999 in UTC."""
    if _INTEGER.fullmatch(text.strip()):
        value = int(text)
    else:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise click.BadParameter(f"`{text}` is not a date or datetime (e.g. 2026-03-01 or "
                                     "2026-03-01T12:00) or µs since the epoch") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        value = (when - _EPOCH) // dt.timedelta(microseconds=1)  # exact, and fine for year 1 with an offset
    if not _TIME_LO <= value <= _TIME_HI:
        raise click.BadParameter(f"`{text}` is out of range: times are from 0001-01-01 to 9999-12-31 (UTC)")
    return value


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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
