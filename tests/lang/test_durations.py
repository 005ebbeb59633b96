"""One duration syntax (`astra.times`): a `.feat` literal, a CLI flag (`--allowed-lateness 10m`), the
formatter and the Python API accept exactly the same strings, read them as the same µs, and reject
the others with the same message.  The one extra the CLI still takes is a plain number (µs,
deprecated, with a warning)."""

from __future__ import annotations

import datetime as dt

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.cli.options import Duration
from astra.lang import ast
from astra.lang.fmt import format_text
from astra.lang.parser import grammar_path, parse_partial
from astra.source import SourceFile
from astra.times import DURATION_PATTERN, DurationError, duration_micros, format_duration, parse_duration

FILE = "features g v1 for user {{\n    x: duration = {}\n}}\n"


def language(text: str):
    """(µs, None) when `text` is one duration literal to the compiler, else (None, its messages)."""
    parsed = parse_partial(SourceFile(path="d.feat", text=FILE.format(text)))
    if parsed.diagnostics:
        return None, [d.message for d in parsed.diagnostics]
    expr = parsed.module.decls[0].features[0].expr
    if isinstance(expr, ast.Literal) and expr.kind == "duration":
        return expr.value, None
    return None, [f"not a duration literal: {type(expr).__name__}"]


def formatter(text: str):
    """(µs read back from the formatted file, None), or (None, the error's messages)."""
    try:
        out = format_text(FILE.format(text), "d.feat")
    except Exception as exc:  # CompileError carries the diagnostics
        return None, [d.message for d in getattr(exc, "diagnostics", ())] or [str(exc)]
    return language(out.split("= ", 1)[1].split("\n", 1)[0])  # what it wrote, read again


def cli(text: str):
    try:
        return Duration().convert(text, None, None), None
    except click.BadParameter as exc:
        return None, [exc.message]


def python(text: str):
    try:
        return duration_micros(text, "every"), None
    except DurationError as exc:
        return None, [str(exc)]


def shared(text: str):
    try:
        return parse_duration(text), None
    except DurationError as exc:
        return None, [str(exc)]


_texts = st.one_of(
    st.text(alphabet="0123456789usmhdwx.-_e", max_size=8),
    st.from_regex(DURATION_PATTERN, fullmatch=True),
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 10**22), st.sampled_from(["us", "ms", "s", "m", "h", "d", "w"])),
)


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_every_place_accepts_and_rejects_the_same_strings(text):
    if text.isdigit():  # the CLI's deprecated plain number, checked below
        return
    want, why = shared(text)
    for name, (value, errors) in {"language": language(text), "formatter": formatter(text), "cli": cli(text),
                                  "python": python(text)}.items():
        assert value == want, (name, text, value, want, errors)
        if want is None and name == "cli":
            assert errors == why, (name, errors, why)  # the very message, word for word
        elif want is None and name == "python":
            assert errors == [f"every: {why[0]} (or pass a timedelta)"]


@pytest.mark.parametrize("text", ["106751992d", "99999999999999999999w", "9223372036854775808us",
                                  "153722867281m"])
def test_out_of_range_is_the_same_error_in_the_language_and_the_cli(text):
    _, why = shared(text)
    assert why and "out of range" in why[0]
    assert language(text)[1] == why and formatter(text)[1] == why and cli(text)[1] == why


@pytest.mark.parametrize("text, us", [("7d", 7 * 86_400_000_000), ("2w", 14 * 86_400_000_000), ("90m", 5_400_000_000),
                                      ("15s", 15_000_000), ("500ms", 500_000), ("250us", 250), ("0s", 0),
                                      ("007h", 7 * 3_600_000_000)])
def test_values(text, us):
    assert language(text) == formatter(text) == cli(text) == python(text) == (us, None)


@pytest.mark.parametrize("text", ["7 d", "1.5h", "7days", "-7d", "7D", "d", "7", "", "٣d", "1e3s"])
def test_not_durations(text):
    assert shared(text)[0] is None and language(text)[0] is None and formatter(text)[0] is None
    if text != "7":  # a plain number: the CLI's deprecated form
        assert cli(text)[1] == shared(text)[1]


def test_the_formatter_writes_the_largest_exact_unit_and_keeps_sub_second_values():
    assert [format_duration(us) for us in (0, 250, 1_000, 1_500_000, 60_000_000, 5_400_000_000, 14 * 86_400_000_000)] \
        == ["0s", "250us", "1ms", "1500ms", "1m", "90m", "14d"]
    out = format_text(FILE.format("1500000us"), "d.feat")
    assert "= 1500ms\n" in out and format_text(out, "d.feat") == out


def test_the_grammar_token_is_the_shared_pattern():
    assert f"DURATION.3: /{DURATION_PATTERN}(?![A-Za-z0-9_])/" in grammar_path().read_text()


def test_a_plain_number_is_still_microseconds_with_a_warning():
    from astra.cli.options import parse_duration as flag

    @click.command()
    @click.option("--lateness", type=Duration())
    def cmd(lateness):
        click.echo(lateness)

    r = CliRunner().invoke(cmd, ["--lateness", "600000000"])
    assert r.exit_code == 0 and r.stdout.strip().endswith("600000000")
    assert "no unit" in r.stderr and "10m" in r.stderr
    r = CliRunner().invoke(cmd, ["--lateness", "10 minutes"])
    assert r.exit_code == 2 and "`10 minutes` is not a duration" in r.stderr
    with pytest.raises(click.BadParameter, match="out of range"):
        flag("9" * 30)


def test_python_takes_timedeltas_and_ints_as_before():
    assert duration_micros(dt.timedelta(hours=1)) == 3_600_000_000 and duration_micros(5) == 5


def test_explain_and_the_lock_write_and_read_durations_the_same_way():
    from astra.plan.lock import token_change
    from astra.plan.pretty import duration

    for us in (0, 250, 1_500_000, 5_400_000_000, 7 * 86_400_000_000):
        assert duration(us) == format_duration(us) and parse_duration(duration(us)) == us
    assert token_change("count(e, 500ms)", "count(e, 750ms)") == "window 500ms -> 750ms"
