"""Read-only servers follow a live writer's log: record by record, across segments, and from a
fresh snapshot when they fell behind the writer's snapshots."""

from __future__ import annotations

import time

import pytest
from serve_harness import FEATURES

from astra.serve.wal import Behind, Follower, Log, StateDir, encode


def rec(i: int) -> dict:
    return {"source": "s", "rows": [{"i": i}]}


def test_follower_reads_complete_records_across_segments(tmp_path):
    state = StateDir(tmp_path)
    log = Log(state, 1, fsync="never")
    f = Follower(state, 1, 0)
    assert f.poll() == []
    log.append("s", [{"i": 1}])
    log.append("s", [{"i": 2}])
    assert f.poll() == [rec(1), rec(2)] and f.poll() == []
    # a record being written: nothing until it is whole
    whole = encode("s", [{"i": 3}])
    with open(state.segment(1), "ab") as out:
        out.write(whole[:5])
        out.flush()
        assert f.poll() == []
        out.write(whole[5:])
    assert f.poll() == [rec(3)]
    # the writer seals segment 1 (after one more record) and goes on in segment 2
    log.append("s", [{"i": 4}])
    log.rotate()
    log.append("s", [{"i": 5}])
    assert f.poll() == [rec(4), rec(5)] and (f.segment, f.offset) == (2, len(encode("s", [{"i": 5}])))
    log.close()


def test_follower_behind_a_deleted_segment_must_reload(tmp_path):
    state = StateDir(tmp_path)
    log = Log(state, 1, fsync="never")
    log.append("s", [{"i": 1}])
    f = Follower(state, 1, 0)
    log.rotate()  # segment 2, then 3; a snapshot at 3 deletes 1 and 2
    log.append("s", [{"i": 2}])
    log.rotate()
    state.segment(2).unlink()
    with pytest.raises(Behind):  # segment 1 is read to its end, but 2 is gone: only a snapshot has it
        f.poll()
    g = Follower(state, 1, 0)
    state.segment(1).unlink()
    with pytest.raises(Behind):
        g.poll()
    log.close()


def test_follower_reads_a_record_larger_than_its_budget(tmp_path):
    state = StateDir(tmp_path)
    log = Log(state, 1, fsync="never")
    rows = [{"i": i, "pad": "x" * 50} for i in range(200)]
    log.append("s", rows)
    log.append("s", [{"i": -1}])
    f = Follower(state, 1, 0)
    got = []
    for _ in range(5):
        got += f.poll(max_bytes=64)
    assert got == [{"source": "s", "rows": rows}, rec(-1)]
    log.close()


def _answer(server, user: int, at: int) -> list:
    q = {"service": "fraud_model", "version": 1, "entities": [{"user_id": user}], "at": at,
         "features": ["tx_count_1d", "tx_sum_1d", "tx_count_30d"]}
    status, _, body = server.client.post("/v1/features", q)
    assert status == 200, body
    return body["results"][0]["values"]


def _eventually(read, want, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while (got := read()) != want:
        assert time.monotonic() < deadline, f"the follower still answers {got}, the writer {want}"
        time.sleep(0.1)


def test_read_only_server_follows_a_live_writer(servers, tmp_path):
    state = tmp_path / "state"
    lateness = ("--allowed-lateness", str(30 * 86400 * 10**6))
    writer = servers(FEATURES, state, *lateness)
    reader = servers(FEATURES, state, "--read-only", "--follow-interval", "0.05")
    t = 1_772_000_000 * 10**6
    at = t + 3600 * 10**6
    assert _answer(reader, 7, at) == [0, 0.0, 0]
    for k in range(3):
        row = {"user_id": 7, "merchant_id": 1, "amount": 2.5 + k, "category": "cat_02", "ts": t + k}
        assert writer.client.post("/v1/push", {"source": "transactions", "rows": [row]})[0] == 200
    want = _answer(writer, 7, at)
    assert want == [3, 10.5, 3]
    _eventually(lambda: _answer(reader, 7, at), want)
    # the writer restarts: a snapshot seals its segment, new pushes go to the next one
    writer.stop()
    writer = servers(FEATURES, state, *lateness)
    row = {"user_id": 7, "merchant_id": 2, "amount": 1.5, "category": "cat_03", "ts": t + 10}
    assert writer.client.post("/v1/push", {"source": "transactions", "rows": [row]})[0] == 200
    want = _answer(writer, 7, at)
    assert want == [4, 12.0, 4]
    _eventually(lambda: _answer(reader, 7, at), want)
    status, _, body = reader.client.post("/v1/push", {"source": "transactions", "rows": [row]})
    assert status == 403 and body["error"]["code"] == "read_only"
    ready = reader.client.get("/readyz")[2]
    assert ready["read_only"] and ready["following"]["offset"] > 0
    assert ready["watermark"] == writer.client.get("/readyz")[2]["watermark"]
    metrics = reader.client.get("/metrics")[2]
    followed = next(line for line in metrics.splitlines() if line.startswith("astra_log_records_followed_total"))
    assert float(followed.split()[1]) == 4


def test_follower_behind_the_writers_snapshots_reloads(tmp_path):
    import orjson

    from astra.project import Project
    from astra.serve.config import ServeConfig
    from astra.serve.engine import Engine

    plan = Project.load(FEATURES).plan
    state = str(tmp_path / "s")
    cfg = ServeConfig(project=str(FEATURES), state=state, allowed_lateness=30 * 86400 * 10**6, access_log="off")
    writer = Engine(plan, cfg, log=lambda m: None)
    reader = Engine(plan, ServeConfig(project=str(FEATURES), state=state, read_only=True, access_log="off"),
                    log=lambda m: None)
    t = 1_772_000_000 * 10**6
    q = {"service": "fraud_model", "version": 1, "entities": [{"user_id": 7}], "at": t + 10**9,
         "features": ["tx_count_1d", "tx_sum_1d"]}
    for k in range(3):  # each push lands in a new segment; each snapshot deletes the older ones
        row = {"user_id": 7, "merchant_id": 1, "amount": 1.0 + k, "category": "cat_01", "ts": t + k}
        writer.push({"source": "transactions", "rows": [row]})
        writer.snapshot(background=False)
    reader.follow()
    assert reader.metrics.reloads._value.get() == 1
    want = orjson.loads(writer.features(q)[0])["results"]
    assert want[0]["values"] == [3, 6.0]
    assert orjson.loads(reader.features(q)[0])["results"] == want
    writer.push({"source": "transactions", "rows": [{**row, "ts": t + 5, "amount": 4.0}]})
    assert reader.follow() == 1  # and it follows the live segment from there
    assert orjson.loads(reader.features(q)[0])["results"] == orjson.loads(writer.features(q)[0])["results"]
    reader.close()
    writer.close()


def test_replay_must_start_at_the_snapshots_segment(tmp_path):
    """A snapshot N is followed by segment N; a log that starts later is missing rows."""
    from astra.online import Store
    from astra.project import Project
    from astra.serve.wal import WalError, recover

    plan = Project.load(FEATURES).plan
    state = StateDir(tmp_path)
    Store(plan).save(state.snapshot(5))
    Log(state, 6, fsync="never").close()
    for read_only in (True, False):
        with pytest.raises(WalError, match="no log segment 5"):
            recover(state, plan, lambda: Store(plan), read_only=read_only)


def test_read_only_server_waits_for_the_writers_first_snapshot(servers, tmp_path, demo):
    """Started before its writer has bootstrapped, a follower waits for the writer's first
    snapshot (materialized rows exist nowhere else) instead of following an empty store."""
    from serve_harness import Client

    state = tmp_path / "state"
    state.mkdir()
    reader = servers(FEATURES, state, "--read-only", wait=False)
    time.sleep(1.0)
    writer = servers(FEATURES, state, "--data-root", str(demo))
    import polars as pl

    tx = pl.read_parquet(demo / "transactions.parquet")
    users = tx["user_id"].unique().sort().to_list()[:30]
    at = tx["ts"].cast(pl.Int64).max() + 1
    q = {"service": "fraud_model", "version": 1, "entities": [{"user_id": u} for u in users], "at": at,
         "features": ["tx_count_30d", "country"]}
    want = writer.client.post("/v1/features", q)[2]["results"]
    assert sum(r["values"][0] for r in want) > 0  # the demo data is there
    probe = Client(reader.port, timeout=2.0)
    deadline = time.monotonic() + 60
    while True:
        try:
            status, _, body = probe.post("/v1/features", q)
            if status == 200:
                break
        except OSError:
            pass
        assert reader.proc.poll() is None and time.monotonic() < deadline, reader.stderr()
        time.sleep(0.2)
    assert body["results"] == want
    assert "waiting for it" in reader.stderr()
