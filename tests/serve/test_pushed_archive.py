"""Reclaiming the disk `STATE/pushed` takes (docs/operations.md, "The push log kept for plan
changes"): its segments may be moved elsewhere, even while the server runs, without changing
what it serves; a plan change that needs them is then refused (one line, exit 1, nothing
changed) until they are put back, and afterwards migrates with every acknowledged row."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from serve_harness import FEATURES, launch
from test_faults import LATE, NEW_GROUP, present, row


def push(server, ids: range) -> None:
    status, _, ack = server.client.post("/v1/push", {"source": "transactions", "rows": [row(i) for i in ids]})
    assert status == 200 and ack["accepted"] == len(ids), ack


def test_archived_pushes_refuse_a_plan_change_until_put_back(servers, tmp_path, demo):
    proj = tmp_path / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build", "astra.lock"))
    state, archive = tmp_path / "state", tmp_path / "archive"
    archive.mkdir()
    s = servers(proj, state, *LATE, "--data-root", str(demo), "--snapshot-interval", "0.2")
    for k in range(6):  # pushes across several background snapshots: each moves a segment to pushed/
        push(s, range(10 * k, 10 * k + 10))
        time.sleep(0.4)
    deadline = time.monotonic() + 60
    while not list((state / "pushed").glob("*.log")):
        assert time.monotonic() < deadline, f"no segment reached STATE/pushed:\n{s.stderr()}"
        time.sleep(0.2)
    for seg in (state / "pushed").glob("*.log"):  # while the server runs
        shutil.move(seg, archive / seg.name)
    push(s, range(60, 70))
    assert present(s.client, list(range(70))) == {}
    s.stop()
    assert s.proc.returncode == 0, s.stderr()
    for seg in (state / "pushed").glob("*.log"):  # the clean stop's snapshot moved the rest
        shutil.move(seg, archive / seg.name)
    assert list(archive.glob("*.log"))

    s = servers(proj, state, *LATE, "--data-root", str(demo))  # the same plan needs none of them
    assert present(s.client, list(range(70))) == {}, s.stderr()
    s.stop()

    (proj / "big.feat").write_text(NEW_GROUP)  # a new table over `transactions`: rebuilt from every push
    before = sorted(p.name for p in state.rglob("*"))
    bad = launch(proj, state, *LATE, "--data-root", str(demo), wait=False)
    try:
        bad.proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        bad.kill9()
        pytest.fail(f"astra serve did not refuse the plan change:\n{bad.stderr()}")
    out = bad.stderr()
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert bad.proc.returncode == 1 and len(errors) == 1 and "Traceback" not in out, out
    assert "neither in the source files nor in the pushes the state directory keeps" in errors[0], out
    assert sorted(p.name for p in state.rglob("*")) == before  # nothing changed

    for seg in archive.glob("*.log"):
        shutil.move(seg, state / "pushed" / seg.name)
    s = servers(proj, state, *LATE, "--data-root", str(demo))
    assert present(s.client, list(range(70))) == {}, s.stderr()
    big = [i for i in range(70) if float(i % 50) + 0.25 > 40.0]
    status, _, got = s.client.post("/v1/features", {"service": "big_model", "version": 1, "at": row(69)["ts"] + 1,
                                                    "entities": [{"user_id": 20_000_000 + i} for i in big]})
    assert status == 200 and all(r["values"] == [1] for r in got["results"]), got
