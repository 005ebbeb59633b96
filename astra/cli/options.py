"""Command-line value types shared by the commands: durations and timestamps."""

from __future__ import annotations

import datetime as dt

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
