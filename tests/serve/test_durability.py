"""Durability with real server processes: `kill -9` mid push stream, torn log records, restarts."""

from __future__ import annotations

import random
import re
import struct
import threading
import time

import pytest
from serve_harness import FEATURES, Client

from astra.serve.wal import scan

DAY = 86400 * 10**6
T0 = 1_772_000_000 * 10**6  # 2026-02-25, µs
BASE_USER = 10_000_000
LATE = ("--allowed-lateness", str(30 * DAY))  # keep every row, so any `at` is answerable


def row(i: int) -> dict:
    """Row i: its own user, so `tx_count_30d` just after it says whether it is stored."""
    return {"user_id": BASE_USER + i, "merchant_id": 1 + i % 7, "amount": float(i % 50) + 0.25,
            "category": f"cat_{i % 5:02d}", "ts": T0 + i * 1000}


def present(client: Client, ids: list[int]) -> dict[int, bool]:
    out = {}
    for k in range(0, len(ids), 200):
        chunk = ids[k:k + 200]
        status, _, body = client.post("/v1/features", {
            "service": "fraud_model", "version": 1, "features": ["tx_count_30d"],
            "entities": [{"user_id": BASE_USER + i, "at": T0 + i * 1000 + 1} for i in chunk]})
        assert status == 200, body
        out.update({i: r["values"][0] == 1 for i, r in zip(chunk, body["results"])})
    return out


def answers(client: Client, at: int, users: range = range(0, 60, 3)) -> list:
    """Answers of both fraud_model versions for some users at `at` (full results: values and flags)."""
    queries = [{"service": "fraud_model", "version": 1, "entities": [{"user_id": BASE_USER + i} for i in users],
                "at": at},
               {"service": "fraud_model", "version": 2, "at": at, "request": {"amount": 10.0, "channel": "web"},
                "entities": [{"user_id": BASE_USER + i, "merchant_id": 1 + i % 7} for i in users]}]
    out = []
    for q in queries:
        status, _, body = client.post("/v1/features", q)
        assert status == 200, body
        out.append(body["results"])
    return out


@pytest.mark.parametrize("snapshots", [(), ("--snapshot-interval", "0.01")], ids=["log", "snapshotting"])
def test_kill9_mid_push_stream(servers, tmp_path, snapshots):
    """Every acknowledged row survives `kill -9`; with "snapshotting", background snapshots
    are written every second while the stream runs, so the kill may land in the middle of one."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, *LATE, *snapshots)
    for k in range(0, 60, 20):  # a first part, fully acknowledged
        rows = [row(i) for i in range(k, k + 20)]
        assert s.client.post("/v1/push", {"source": "transactions", "rows": rows})[0] == 200
    first = T0 + 60 * 1000  # the stream's rows are at or after this time, so invisible at it
    before = answers(s.client, first)

    acked: list[int] = []
    sent: list[int] = []
    stop = threading.Event()

    def stream():
        c = Client(s.port, timeout=5)
        i = 60
        while not stop.is_set():
            batch = list(range(i, i + 5))
            sent.extend(batch)
            try:
                status, _, ack = c.post("/v1/push", {"source": "transactions", "rows": [row(j) for j in batch]})
            except OSError:
                return
            if status == 200 and ack["accepted"] == len(batch):
                acked.extend(batch)
            i += 5

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(random.uniform(0.3, 1.2))
    s.kill9()
    stop.set()
    t.join(timeout=10)
    assert acked, "no push was acknowledged before the kill"

    s2 = servers(FEATURES, state, *LATE, *snapshots)
    ok = present(s2.client, list(range(60)) + acked)
    assert all(ok.values()), [i for i, v in ok.items() if not v][:10]
    assert answers(s2.client, first) == before
    late = T0 + DAY
    # every few users, at most ~200 per request whatever the push rate was (the batch limit is 1,000)
    sample = range(0, max(acked) + 1, max(4, max(acked) // 200 + 1))
    after = answers(s2.client, late, sample)
    s2.stop()
    s3 = servers(FEATURES, state, *LATE)  # a clean restart (snapshot at shutdown) answers the same
    assert answers(s3.client, late, sample) == after
    assert all(present(s3.client, acked).values())


def test_torn_last_record_is_dropped(servers, tmp_path):
    state = tmp_path / "state"
    s = servers(FEATURES, state, *LATE)
    assert s.client.post("/v1/push", {"source": "transactions", "rows": [row(i) for i in range(10)]})[0] == 200
    s.kill9()
    seg = max((state / "wal").glob("*.log"))
    good = seg.stat().st_size
    with open(seg, "ab") as f:  # a crash in the middle of writing the next record
        f.write(struct.pack("<II", 5000, 1234) + b'{"source": "transactions", "ro')
    s2 = servers(FEATURES, state, *LATE)
    assert "dropped a torn last record" in s2.stderr()
    assert seg.stat().st_size == good
    assert all(present(s2.client, list(range(10))).values())
    assert s2.client.post("/v1/push", {"source": "transactions", "rows": [row(i) for i in range(10, 20)]})[0] == 200
    s2.kill9()
    s3 = servers(FEATURES, state, *LATE)
    assert all(present(s3.client, list(range(20))).values())


def test_scan_detects_torn_and_corrupt_records():
    from astra.serve.wal import encode

    a, b = encode("s", [{"x": 1}]), encode("s", [{"x": 2}])
    assert len(scan(a + b)[0]) == 2
    for cut in range(1, len(b)):
        recs, end = scan(a + b[:cut])
        assert len(recs) == 1 and end == len(a)
    flipped = bytearray(a + b)
    flipped[-2] ^= 0xFF
    assert scan(bytes(flipped)) == ([a[8:]], len(a))


def test_damaged_sealed_segment_refuses(tmp_path):
    from astra.serve.wal import WalError, encode, read_segment

    p = tmp_path / "000000000001.log"
    p.write_bytes(encode("s", [{"x": 1}]) + b"\x05\x00")
    with pytest.raises(WalError, match="damaged"):
        read_segment(p, last=False, repair=False)
    records, end = read_segment(p, last=True, repair=True)
    assert len(list(records)) == 1 and end == len(encode("s", [{"x": 1}]))
    assert p.stat().st_size == len(encode("s", [{"x": 1}]))


def test_state_dir_is_self_contained(servers, tmp_path):
    parent = tmp_path / "box"
    parent.mkdir()
    s = servers(FEATURES, parent / "state", "--snapshot-mib", "0", *LATE)  # snapshot after every push
    for k in range(3):
        assert s.client.post("/v1/push", {"source": "transactions", "rows": [row(k)]})[0] == 200
    s.stop()
    assert sorted(p.name for p in parent.iterdir() if not p.name.endswith(".log")) == ["state"]
    snaps = sorted(p.name for p in (parent / "state").iterdir() if p.name.startswith("snap-"))
    assert len(snaps) == 1


def test_background_snapshots_prune_and_restore(servers, tmp_path):
    """Snapshots are written by a forked child while the server keeps answering; once one is
    complete the older snapshot and segments are gone, and a restart from it loses nothing."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, *LATE, "--snapshot-interval", "0.01")
    first = max(int(p.name[5:]) for p in state.glob("snap-*"))
    for k in range(0, 40, 10):
        rows = [row(i) for i in range(k, k + 10)]
        assert s.client.post("/v1/push", {"source": "transactions", "rows": rows})[0] == 200
        time.sleep(1.2)  # a tick: it starts a snapshot (or collects the one before and starts the next)
        assert s.client.get("/healthz")[0] == 200
    # pruning deletes the older snapshots, then the older segments: wait for both
    deadline = time.monotonic() + 15
    while True:
        snaps = sorted(int(p.name[5:]) for p in state.glob("snap-*") if (p / "manifest.json").exists())
        segments = sorted(int(p.stem) for p in (state / "wal").glob("*.log"))
        if len(snaps) == 1 and snaps[0] > first and all(seg >= snaps[0] for seg in segments):
            break
        assert time.monotonic() < deadline, f"snapshots {snaps} (started from {first}), segments {segments}"
        time.sleep(0.2)
    metrics = s.client.get("/metrics")[2]
    count = next(line for line in metrics.splitlines() if line.startswith("astra_snapshot_seconds_count"))
    assert float(count.split()[1]) >= 1
    s.kill9()
    s2 = servers(FEATURES, state, *LATE)
    restored = re.search(r"\(snapshot (\d+), replayed", s2.stderr())
    assert restored and int(restored.group(1)) >= snaps[0]  # from a background snapshot, not the first
    assert all(present(s2.client, list(range(40))).values())
