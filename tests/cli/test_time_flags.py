"""Time flags (`--start`, `--end`, `--until`): ISO dates and datetimes, UTC unless they say
otherwise, or µs since the epoch (docs/cli.md, "Durations and times"); anything else is a usage
error naming the value, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from astra.cli.options import parse_time

DAY = 86_400_000_000


@pytest.mark.parametrize(("text", "us"), [
    ("2026-03-01", 1_772_323_200_000_000), ("2026-03-01T12:00", 1_772_323_200_000_000 + DAY // 2),
    ("2026-03-01T02:00:00+02:00", 1_772_323_200_000_000), ("1772323200000000", 1_772_323_200_000_000),
    ("-5", -5), ("0001-01-01", -62_135_596_800_000_000), ("9999-12-31T23:59:59.999999Z", 253_402_300_799_999_999),
    ("1969-12-31T23:59:59.999999", -1),
])
def test_accepted_times(text, us):
    assert parse_time(text) == us


@pytest.mark.parametrize("text", ["--5", "²", "١٢", "1e6", "5.0", "", "2026-03-01T25:00", "tomorrow",
                                  "99999999999999999999999999", "0001-01-01T00:00:00+01:00",
                                  "9999-12-31T23:59:59-00:01", "253402300800000000"])
def test_refused_times_are_usage_errors(text):
    with pytest.raises(click.BadParameter) as exc:
        parse_time(text)
    assert f"`{text}`" in exc.value.message


def test_a_bad_time_flag_exits_two_with_one_line():
    r = subprocess.run([sys.executable, "-m", "astra.cli.main", "backfill", "features", "--service", "x",
                        "--every", "1d", "--start=--5", "--end", "2026-03-02", "--out", "x.parquet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: Invalid value for '--start': `--5`"), r.stderr
