"""Starting `astra serve` on what is on disk: source files the engines reject, and a state
directory saved for another plan (docs/serving.md, "Durability and restart" and "Plan changes").

A problem is a one-line error and a non-zero exit, never a traceback nor a live port in front of
a dead worker; a plan change migrates the store and keeps every acknowledged push."""

from __future__ import annotations

import shutil
import subprocess

import polars as pl
import pytest
from serve_harness import FEATURES, launch

EXIT_TIMEOUT = 90


def _project(tmp_path, name="features"):
    proj = tmp_path / name
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build", "astra.lock"))
    return proj


def _data(tmp_path, demo):
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    return data


def _refused(proj, state, *args):
    """Run `astra serve` expecting it to refuse to start; returns its output."""
    s = launch(proj, state, *args, wait=False)
    try:
        s.proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        s.kill9()
        pytest.fail(f"astra serve did not exit:\n{s.stderr()}")
    out = s.stderr()
    assert s.proc.returncode not in (0, None), out
    assert "Traceback" not in out, out
    return out


def _null_category(data):
    df = pl.read_parquet(data / "transactions.parquet")
    df.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("category"))
                    .alias("category")).write_parquet(data / "transactions.parquet")


@pytest.mark.parametrize("damage", ["null", "corrupt", "missing"])
def test_rejected_source_file_is_one_line_error(tmp_path, demo, damage):
    data = _data(tmp_path, demo)
    if damage == "null":
        _null_category(data)
        want = "column `category` is declared `string` but holds 1 null"
    elif damage == "corrupt":
        (data / "transactions.parquet").write_bytes(b"PAR1 not a parquet file at all")
        want = "transactions"
    else:
        (data / "transactions.parquet").unlink()
        want = "transactions.parquet"
    out = _refused(_project(tmp_path), tmp_path / "state", "--data-root", str(data))
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and want in errors[0], out


# --------------------------------------------------------------------------- plan changes

USER = 10**9 + 5
NEW_GROUP = """import "common/"

features big_spend v1 for user {
    big_1d: int64 = count(transactions where amount > 5000.0, 1d)
}

service big_model v1 {
    big_spend@v1.*
    user_spend@v1.tx_count_1h
}
"""
NEW_SERVICE = """import "spend.feat"

service spend_only v1 {
    user_spend@v1.tx_count_1h
    user_spend@v1.tx_max_1h
}
"""


def _push_some(server):
    """Push two rows of a new user after the data's end; returns the time to query at."""
    c = server.client
    wm = c.get("/readyz")[2]["watermark"]["transactions"]
    rows = [{"user_id": USER, "merchant_id": 3, "amount": 6000.0 + j, "category": "cat_01",
             "ts": wm + 1_000_000 * (j + 1)} for j in range(2)]
    status, _, ack = c.post("/v1/push", {"source": "transactions", "rows": rows})
    assert status == 200 and ack["accepted"] == 2, ack
    return wm + 10_000_000


def _get(server, service, at, features=None):
    body = {"service": service[0], "version": service[1], "entities": [{"user_id": USER}], "at": at}
    if features:
        body["features"] = features
    status, _, got = server.client.post("/v1/features", body)
    assert status == 200, got
    return got["results"][0]["values"]


def test_added_service_keeps_the_store_and_every_push(tmp_path, demo, servers):
    proj, state = _project(tmp_path), tmp_path / "state"
    s = servers(proj, state, "--data-root", str(demo))
    at = _push_some(s)
    before = _get(s, ("fraud_model", 1), at)
    s.stop()  # a clean stop: the pushes are in the snapshot, not in the log
    (proj / "extra.feat").write_text(NEW_SERVICE)
    s = servers(proj, state, "--data-root", str(demo))
    assert _get(s, ("fraud_model", 1), at) == before
    assert _get(s, ("spend_only", 1), at) == [2, 6001.0]
    assert "migrated snapshot" in s.stderr() and "rebuilt 0" in s.stderr(), s.stderr()


def test_added_group_is_rebuilt_with_the_logged_pushes(tmp_path, demo, servers):
    proj, state = _project(tmp_path), tmp_path / "state"
    s = servers(proj, state, "--data-root", str(demo))
    at = _push_some(s)
    before = _get(s, ("fraud_model", 1), at)
    s.kill9()  # the pushes are in the log only
    (proj / "big.feat").write_text(NEW_GROUP)
    s = servers(proj, state, "--data-root", str(demo))
    log = s.stderr()
    assert "rebuilt 1 (transactions by user_id)" in log and "replayed 2 logged rows" in log, log
    assert _get(s, ("fraud_model", 1), at) == before
    assert _get(s, ("big_model", 1), at) == [2, 2]
    assert (state / "pre-migration-000000000002").is_dir()
    # restarted again: the migrated store was snapshotted, nothing is migrated twice
    s.stop()
    s = servers(proj, state, "--data-root", str(demo))
    assert "migrated" not in s.stderr() and _get(s, ("big_model", 1), at) == [2, 2]


def test_changed_table_is_rebuilt_with_the_pushes_before_the_snapshot(tmp_path, demo, servers):
    proj, state = _project(tmp_path), tmp_path / "state"
    s = servers(proj, state, "--data-root", str(demo))
    at = _push_some(s)
    before = _get(s, ("fraud_model", 1), at)
    s.stop()  # the pushes are folded into the snapshot; their log segment is kept in STATE/pushed
    assert list((state / "pushed").glob("*.log")), sorted(p.name for p in state.iterdir())
    (proj / "big.feat").write_text(NEW_GROUP)
    s = servers(proj, state, "--data-root", str(demo))
    log = s.stderr()
    assert "rebuilt 1 (transactions by user_id)" in log and "2 row(s) pushed to `transactions`" in log, log
    assert _get(s, ("fraud_model", 1), at) == before
    assert _get(s, ("big_model", 1), at) == [2, 2]  # the rebuilt table holds the pushes before the snapshot


def test_change_that_would_lose_pushes_is_refused_and_keeps_the_state(tmp_path, demo, servers):
    """A state directory whose pushes before the snapshot were not kept (from before they were)."""
    proj, state = _project(tmp_path), tmp_path / "state"
    s = servers(proj, state, "--data-root", str(demo))
    at = _push_some(s)
    before = _get(s, ("fraud_model", 1), at)
    s.stop()  # the pushes are folded into the snapshot: a rebuilt user table would lose them
    shutil.rmtree(state / "pushed")
    files = sorted(p.relative_to(state) for p in state.rglob("*") if p.name != "LOCK")
    (proj / "big.feat").write_text(NEW_GROUP)
    out = _refused(proj, state, "--data-root", str(demo))
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot migrate" in errors[0] and "2 row(s) of `transactions`" in errors[0], out
    assert sorted(p.relative_to(state) for p in state.rglob("*") if p.name != "LOCK") == files
    (proj / "big.feat").unlink()
    s = servers(proj, state, "--data-root", str(demo))
    assert _get(s, ("fraud_model", 1), at) == before


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_log_the_new_plan_cannot_replay_ends_the_server(tmp_path, demo, servers, server):
    """Found by the worker only (the log is read there): the server exits with a message."""
    proj, state = _project(tmp_path), tmp_path / "state"
    s = servers(proj, state, "--data-root", str(demo))
    at = _push_some(s)
    before = _get(s, ("fraud_model", 1), at)
    s.kill9()
    sources = proj / "common" / "sources.feat"
    original = sources.read_text()
    sources.write_text(original.replace("category: string\n", "category: string\n        channel: string\n"))
    out = _refused(proj, state, "--data-root", str(demo), "--server", server)
    assert "cannot start" in out and "channel" in out, out
    sources.write_text(original)
    s = servers(proj, state, "--data-root", str(demo))
    assert _get(s, ("fraud_model", 1), at) == before
