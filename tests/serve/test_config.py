"""Configurations `astra serve` refuses, with a message, before starting anything."""

from __future__ import annotations

import subprocess
import sys

from serve_harness import FEATURES


def run(*args: str, tmp="/") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", "serve", str(FEATURES), *args],
                          capture_output=True, text=True, timeout=60, cwd=tmp)


def test_workers_need_read_only(tmp_path):
    r = run("--workers", "2", "--state", str(tmp_path / "s"))
    assert r.returncode == 2
    assert "would give every worker process its own copy of the store" in r.stderr
    assert "--read-only --workers 2" in r.stderr


def test_read_only_needs_state(tmp_path):
    r = run("--read-only", "--state", str(tmp_path / "missing"))
    assert r.returncode == 2 and "needs an existing --state" in r.stderr


def test_second_writer_refused(servers, tmp_path):
    servers(FEATURES, tmp_path / "state")
    r = run("--state", str(tmp_path / "state"), "--port", "1")
    assert r.returncode != 0
    assert "in use by another `astra serve`" in r.stdout + r.stderr


def test_read_only_workers_serve_the_log(servers, tmp_path):
    state = tmp_path / "state"
    w = servers(FEATURES, state, "--allowed-lateness", str(30 * 86400 * 10**6))
    row = {"user_id": 7, "merchant_id": 1, "amount": 2.0, "category": "cat_02", "ts": 1_772_000_000 * 10**6}
    assert w.client.post("/v1/push", {"source": "transactions", "rows": [row]})[0] == 200
    w.stop()
    r = servers(FEATURES, state, "--read-only", "--workers", "2")
    q = {"service": "fraud_model", "version": 1, "entities": [{"user_id": 7}], "at": row["ts"] + 1,
         "features": ["tx_count_1d"]}
    for _ in range(4):
        status, _, body = r.client.post("/v1/features", q)
        assert status == 200 and body["results"][0]["values"] == [1]
        r.client.close()  # new connections, so both workers answer
    status, _, body = r.client.post("/v1/push", {"source": "transactions", "rows": [row]})
    assert status == 403 and body["error"]["code"] == "read_only"
