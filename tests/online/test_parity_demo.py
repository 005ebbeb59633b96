"""Parity on the example project's every service, over the demo data: no ../shared needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from astra.demo_data import generate
from astra.parity import run_parity
from astra.project import Project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, events=30_000, users=800, labels=3_000)
    return out


@pytest.mark.parametrize("service", ["fraud_model@v1", "fraud_model@v2", "profile_lookup@v1", "fraud_scores@v1",
                                     "fraud_scores@v2"])
def test_online_replay_equals_backfill(demo: Path, service: str) -> None:
    project = Project.load(ROOT / "features")
    svc = project.service(service)
    report = run_parity(project.plan, svc.name, svc.version, pl.read_parquet(demo / "spine.parquet"), demo)
    assert report.ok, report.table()
    assert all(f.rows == 3_000 for f in report.features)


def test_parity_cli_reports_and_exits_zero(demo: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "astra.cli.main", "parity", "features", "--service", "fraud_model@v2",
                        "--spine", str(demo / "spine.parquet"), "--data-root", str(demo)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout and "recent_categories" in r.stdout
