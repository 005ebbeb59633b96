"""`GET /v1/experiments` lists the plan's experiments as declared, and served `assignment(...)`
features give the documented arm, the same as a backfill."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plan"))

from experiment_project import DECLARED, documented_arm, write
from serve_harness import launch

import astra


def test_experiments_and_assignment_over_http(tmp_path):
    root = write(tmp_path / "features")
    subprocess.run([sys.executable, "-m", "astra.cli.main", "compile", str(root), "--lock"], check=True,
                   capture_output=True, timeout=120)
    server = launch(root, tmp_path / "state", "--data-root", str(root))
    try:
        status, _, body = server.client.get("/v1/experiments")
        assert status == 200 and body == {"experiments": [DECLARED]}
        keys = [f"user-{i}" for i in range(64)] + ["a", "b"]
        at = "2026-01-02T00:00:00"
        status, _, body = server.client.post("/v1/features", {"service": "svc", "version": 1, "at": at,
                                                              "entities": [{"user_id": k} for k in keys]})
        assert status == 200, body
        arm = [f["name"] for f in body["features"]].index("arm")
        served = [r["values"][arm] for r in body["results"]]
        assert served == [documented_arm(k) for k in keys]
    finally:
        server.stop()
    spine = pl.DataFrame({"user_id": keys, "ts": [dt.datetime(2026, 1, 2)] * len(keys)})
    offline = astra.Project.load(root).backfill(spine, service="svc@v1", data_root=root)
    assert offline["arm"].to_list() == served
