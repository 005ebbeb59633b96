"""`astra materialize` and `astra parity` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from astra.demo_data import generate

ROOT = Path(__file__).resolve().parents[2]


def astra(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, events=20_000, users=500, labels=1_000)
    return out


def test_materialize_writes_a_state_that_loads(demo: Path, tmp_path: Path) -> None:
    from astra.online import Store
    from astra.project import Project

    r = astra("materialize", "features", "--data-root", demo, "--until", "2026-02-15", "--state", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "materialized" in r.stdout and "queries from" in r.stdout
    store = Store.load(tmp_path / "s", Project.load(ROOT / "features").plan)
    assert store.nbytes() > 0


def test_materialize_rejects_bad_times_and_projects(demo: Path, tmp_path: Path) -> None:
    bad = astra("materialize", "features", "--data-root", demo, "--until", "yesterday", "--state", tmp_path / "s")
    assert bad.returncode == 2 and "is not a date" in bad.stderr
    missing = astra("materialize", tmp_path / "nowhere", "--data-root", demo)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_parity_exits_one_on_unknown_service(demo: Path) -> None:
    r = astra("parity", "features", "--service", "fraud_model@v9", "--spine", demo / "spine.parquet",
              "--data-root", demo)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "v1" in (r.stderr + r.stdout)
