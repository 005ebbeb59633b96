"""Online/offline parity on the shared benchmark data (small), for the fraud_model@v1 service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from astra.parity import run_parity

SHARED = Path(__file__).resolve().parents[3] / "shared" / "bench"


def _plan():
    from astra.project import Project

    return Project.load(Path(__file__).resolve().parents[2] / "features").plan


@pytest.mark.skipif(not (SHARED / "gen_data.py").exists(), reason="../shared/bench/gen_data.py is absent")
def test_parity_on_benchmark_data(tmp_path):
    subprocess.run([sys.executable, str(SHARED / "gen_data.py"), str(tmp_path), "--events", "20000",
                    "--labels", "1500", "--users", "500"], check=True)
    spine = pl.read_parquet(tmp_path / "labels.parquet")
    report = run_parity(_plan(), "fraud_model", 1, spine, tmp_path)
    assert report.ok, report.table()
    assert all(f.rows == 1500 for f in report.features)
