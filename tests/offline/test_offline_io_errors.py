"""`astra backfill` turns unreadable inputs and unwritable outputs into one `error:` line, exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from astra.cli.main import cli
from astra.demo_data import generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, events=2_000, users=100, labels=100)
    return out


def _backfill(spine: Path, data_root: Path, out: Path):
    return CliRunner().invoke(cli, ["backfill", str(ROOT / "features"), "--service", "fraud_model@v1", "--spine",
                                    str(spine), "--data-root", str(data_root), "--out", str(out)])


def _one_error_line(r, *words: str) -> None:
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    lines = [line for line in r.output.strip().splitlines() if not line.startswith("backfill: ")]  # progress
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert all(w in lines[0] for w in words), lines[0]


def test_corrupt_spine(demo, tmp_path):
    (tmp_path / "spine.parquet").write_bytes(b"not a parquet file")
    _one_error_line(_backfill(tmp_path / "spine.parquet", demo, tmp_path / "o.parquet"), "spine.parquet",
                    "cannot read")


def test_corrupt_source(demo, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(demo, root)
    (root / "profiles.parquet").write_bytes(b"PAR1")
    _one_error_line(_backfill(demo / "spine.parquet", root, tmp_path / "o.parquet"), "profiles", "cannot read")


def test_unwritable_output(demo, tmp_path):
    _one_error_line(_backfill(demo / "spine.parquet", demo, tmp_path / "no_such_dir" / "o.parquet"),
                    "o.parquet", "cannot write")
