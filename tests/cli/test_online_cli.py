"""`astra materialize` and `astra parity` as a user runs them."""

from __future__ import annotations

import math
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


def _agree(a, b) -> bool:
    """Equal; floats within 1e-9 relative (NaN equals NaN); lists item by item."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_agree(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return a == b


def test_materialize_writes_a_state_that_answers_like_a_backfill(demo: Path, tmp_path: Path) -> None:
    """The loaded state answers every service as the backfill does over the same rows (those
    before --until), at query times from its horizon on."""
    import polars as pl

    from astra.online import Store
    from astra.project import Project

    r = astra("materialize", "features", "--data-root", demo, "--until", "2026-02-15", "--state", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "materialized" in r.stdout and "queries from" in r.stdout
    project = Project.load(ROOT / "features")
    store = Store.load(max((tmp_path / "s").glob("snap-*")), project.plan)  # a state directory, as serve reads it
    until = pl.datetime(2026, 2, 15)
    before = tmp_path / "before"  # the sources as the store saw them
    before.mkdir()
    for src in project.plan.sources:
        pl.read_parquet(demo / src.path).filter(pl.col(src.time) < until).write_parquet(before / src.path)
    spine = pl.read_parquet(demo / "spine.parquet").sort("ts")
    spine = spine.filter(pl.col("ts").dt.epoch("us") >= (store.horizon or 0)).head(300)
    assert spine.height > 100
    compared = 0
    for svc in project.plan.services:
        keys = list(dict.fromkeys(k for e in svc.entities for k, _ in project.plan.entity(e).keys))
        fields = [f for req in project.plan.requests if req.name in svc.requests for f, _ in req.fields]
        expected = project.backfill(spine, service=svc.id, data_root=before)
        at = spine["ts"].dt.epoch("us").to_list()
        got = store.get(svc.id, spine.select(keys).to_dicts(), at=at,
                        request=spine.select(fields).to_dicts() if fields else None).to_polars()
        for o in svc.outputs:
            for i, (g, e) in enumerate(zip(got[o.name].to_list(), expected[o.name].to_list())):
                assert _agree(g, e), f"{svc.id} {o.name} row {i}: materialized store {g!r}, backfill {e!r}"
                compared += 1
    assert compared > 1000


def test_materialize_rejects_bad_times_and_projects(demo: Path, tmp_path: Path) -> None:
    bad = astra("materialize", "features", "--data-root", demo, "--until", "yesterday", "--state", tmp_path / "s")
    assert bad.returncode == 2 and "is not a date" in bad.stderr
    missing = astra("materialize", tmp_path / "nowhere", "--data-root", demo)
    # a missing project is the user's to fix (1), as in compile, not a usage error (2)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr and "no project at" in missing.stderr


def test_parity_exits_one_on_unknown_service(demo: Path) -> None:
    r = astra("parity", "features", "--service", "fraud_model@v9", "--spine", demo / "spine.parquet",
              "--data-root", demo)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "v1" in (r.stderr + r.stdout)
