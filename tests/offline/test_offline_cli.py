"""`astra backfill` end to end: the example project on generated data, and its error output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from astra.cli.backfill import backfill, parse_duration, parse_time

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT.parent / "shared" / "bench"


def test_parse_duration_and_time():
    assert parse_duration("1d") == 86_400_000_000 and parse_duration("15s") == 15_000_000
    assert parse_time("1970-01-02") == 86_400_000_000


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    if not (BENCH / "gen_data.py").exists():
        pytest.skip(f"the shared benchmark kit is not at {BENCH}")
    out = tmp_path_factory.mktemp("data")
    subprocess.run([sys.executable, BENCH / "gen_data.py", out, "--events", "3000", "--labels", "300",
                    "--users", "100"], check=True)
    return out


def _project_compiles() -> bool:
    try:
        from astra.project import Project

        Project.load(ROOT / "features")
        return True
    except Exception:
        return False


def _run(*args):
    return CliRunner().invoke(backfill, [str(a) for a in args])


@pytest.mark.parametrize("ext", ["parquet", "csv", "arrow"])
def test_backfill_formats(tmp_path, data, ext):
    if not _project_compiles():
        pytest.skip("features/ does not compile right now")
    spine = tmp_path / f"spine.{ext}"
    labels = pl.read_parquet(data / "labels.parquet")
    {"parquet": labels.write_parquet, "csv": labels.write_csv, "arrow": labels.write_ipc}[ext](spine)
    out = tmp_path / f"out.{ext}"
    r = _run(ROOT / "features", "--service", "fraud_model@v1", "--spine", spine, "--out", out, "--data-root", data)
    assert r.exit_code == 0, r.output
    result = {"parquet": pl.read_parquet, "csv": pl.read_csv, "arrow": pl.read_ipc}[ext](out)
    assert result.height == labels.height and result.width == labels.width + 22


def test_errors_are_one_line(tmp_path, data):
    if not _project_compiles():
        pytest.skip("features/ does not compile right now")
    spine = tmp_path / "spine.parquet"
    pl.read_parquet(data / "labels.parquet").drop("user_id").write_parquet(spine)
    r = _run(ROOT / "features", "--service", "fraud_model@v1", "--spine", spine, "--out", tmp_path / "o.parquet",
             "--data-root", data)
    assert r.exit_code == 1 and "\nerror: spine is missing key column(s) user_id" in r.output  # after progress lines
    r = _run(ROOT / "features", "--service", "nope@v1", "--spine", spine, "--out", tmp_path / "o.parquet")
    assert r.exit_code == 1 and r.output.startswith("error: ") and "Traceback" not in r.output
    r = _run(ROOT / "features", "--service", "fraud_model@v1", "--spine", spine, "--out", tmp_path / "o.txt")
    assert r.exit_code == 1 and "unknown table format" in r.output


def test_the_astra_process_exits_with_its_output_written(tmp_path, data):
    """The `astra` process ends without the interpreter's teardown after a backfill: its exit
    code, its error message and its output file must all still be there."""
    if not _project_compiles():
        pytest.skip("features/ does not compile right now")
    out = tmp_path / "out.csv"
    run = [sys.executable, "-m", "astra.cli.main", "backfill", ROOT / "features", "--service", "fraud_model@v1",
           "--spine", data / "labels.parquet", "--data-root", data]
    done = subprocess.run([*run, "--out", out], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pl.read_csv(out).height == pl.read_parquet(data / "labels.parquet").height
    failed = subprocess.run([*run[:6], "nope@v1", *run[7:], "--out", out], capture_output=True, text=True,
                            timeout=120)
    assert failed.returncode == 1 and failed.stderr.startswith("error: unknown service `nope`")
