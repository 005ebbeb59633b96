"""Faults a production server meets, with real processes on loopback (docs/operations.md):
kill -9 rounds with acknowledged-row accounting, a far-future and a far-past row, a plan change
and the commands a user runs after it, a killed worker, a clean restart, a slow body.

Every wait is bounded; nothing asserts on timings beyond "it happened before a generous deadline"."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from serve_harness import FEATURES, Client, launch

DAY = 86400 * 10**6
T0 = 1_772_000_000 * 10**6  # 2026-02-25, µs
BASE_USER = 20_000_000
LATE = ("--allowed-lateness", str(30 * DAY))  # keep every row, so any `at` is answerable
ROUND_SECONDS = 0.8
RESPAWN_TIMEOUT = 60.0


def row(i: int, ts: int | None = None) -> dict:
    """Row i: its own user, so `tx_count_30d` just after it says whether it is stored."""
    return {"user_id": BASE_USER + i, "merchant_id": 1 + i % 7, "amount": float(i % 50) + 0.25,
            "category": f"cat_{i % 5:02d}", "ts": T0 + i * 1000 if ts is None else ts}


def present(client: Client, ids: list[int]) -> dict[int, int]:
    """The ids among `ids` whose row the server does not hold exactly once, with the count it
    holds (0: lost; 2 or more: stored twice).  Each row is its user's only one, and all are
    within 30 days before `T0 + DAY`, so `tx_count_30d` there counts the copies of the row."""
    wrong = {}
    for k in range(0, len(ids), 200):
        chunk = ids[k:k + 200]
        status, _, body = client.post("/v1/features", {
            "service": "fraud_model", "version": 1, "features": ["tx_count_30d"],
            "entities": [{"user_id": BASE_USER + i} for i in chunk], "at": T0 + DAY})
        assert status == 200, body
        wrong |= {i: r["values"][0] for i, r in zip(chunk, body["results"]) if r["values"][0] != 1}
    return wrong


def stream(port: int, start: int, acked: list[int], stop: threading.Event) -> threading.Thread:
    """Push 5-row batches of fresh rows (ids from `start` on) until `stop` or the server goes
    away; `acked` gets the ids of every row a 200 acknowledged as accepted.  The thread's `end`
    is one past the highest id sent, acknowledged or not: a later stream must start there, since
    an id sent again is a second row for its user (counted 2, as if replayed twice), and a push
    whose answer a kill cut off may be stored all the same."""

    def run():
        # no retry: a push whose answer was lost may or may not be stored, and sent again it
        # would be stored twice
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        i = start
        while not stop.is_set():
            batch = list(range(i, i + 5))
            t.end = i + 5
            try:
                c.request("POST", "/v1/push", json.dumps({"source": "transactions",
                                                          "rows": [row(j) for j in batch]}).encode(),
                          {"content-type": "application/json"})
                r = c.getresponse()
                status, ack = r.status, json.loads(r.read())
            except (OSError, http.client.HTTPException, ValueError):
                return
            if status == 200:
                assert ack["accepted"] == len(batch), ack
                acked.extend(batch)
            i += 5

    t = threading.Thread(target=run, daemon=True)
    t.end = start
    t.start()
    return t


def worker_pid(client: Client) -> int:
    """The pid of the process that answered (request ids start with it, in hex)."""
    status, headers, _ = client.get("/healthz")
    assert status == 200
    return int(headers["x-request-id"].split("-")[0], 16)


def wait_for_other_worker(server, old: int) -> int:
    """Wait (bounded) until a worker other than `old` answers /readyz; its pid."""
    deadline = time.monotonic() + RESPAWN_TIMEOUT
    while True:
        assert server.proc.poll() is None, f"the server exited:\n{server.stderr()}"
        c = Client(server.port, timeout=2.0)
        try:
            status, headers, _ = c.get("/readyz")
            if status == 200:
                pid = int(headers["x-request-id"].split("-")[0], 16)
                if pid != old:
                    return pid
        except OSError:
            pass
        finally:
            c.close()
        assert time.monotonic() < deadline, "no worker answered after the kill"
        time.sleep(0.2)


def metric(client: Client, name: str) -> float:
    text = client.get("/metrics")[2]
    values = [float(line.split()[-1]) for line in text.splitlines() if line.split(" ")[0].split("{")[0] == name]
    assert values, f"{name} is not in /metrics"
    return sum(values)


# --------------------------------------------------------------------------- kill -9 rounds

def test_kill9_rounds_lose_no_acknowledged_row(servers, tmp_path):
    """Three rounds of a push stream ended by kill -9 of the whole server at a moment of its
    own, each followed by a restart: every row a 200 acknowledged is served afterwards."""
    state = tmp_path / "state"
    acked: list[int] = []
    start = 0
    for k in range(3):
        s = servers(FEATURES, state, *LATE, "--snapshot-interval", "0.3" if k == 1 else "300")
        assert present(s.client, acked) == {}, f"round {k}: acknowledged rows not stored once (id: count)"
        stop = threading.Event()
        before = len(acked)
        t = stream(s.port, start, acked, stop)
        time.sleep(ROUND_SECONDS)
        s.kill9()
        stop.set()
        t.join(timeout=10)
        assert len(acked) > before, f"round {k}: no push was acknowledged"
        start = t.end
    s = servers(FEATURES, state, *LATE)
    assert present(s.client, acked) == {}


# --------------------------------------------------------------------------- hostile rows

def test_far_past_row_is_rejected_alone(servers, tmp_path, demo):
    """A row far older than the watermark minus the allowed lateness is refused on its own
    (`late`); the batch's other rows are stored and nothing else changes."""
    s = servers(FEATURES, tmp_path / "state", "--data-root", str(demo))
    wm = s.client.get("/readyz")[2]["watermark"]
    t = wm["transactions"] + 1_000_000
    rows = [row(1, t), row(2, -2_208_988_800 * 10**6), row(3, t)]  # 1900-01-01
    status, _, ack = s.client.post("/v1/push", {"source": "transactions", "rows": rows})
    assert status == 200, ack
    assert ack["accepted"] == 2 and [r["index"] for r in ack["rejected"]] == [1], ack
    assert ack["rejected"][0]["reason"] == "late"
    after = s.client.get("/readyz")[2]["watermark"]
    assert after == {**wm, "transactions": t}
    status, _, got = s.client.post("/v1/features", {"service": "fraud_model", "version": 1, "at": t + 1,
                                                    "features": ["tx_count_1h"],
                                                    "entities": [{"user_id": BASE_USER + i} for i in (1, 2, 3)]})
    assert status == 200 and [r["values"] for r in got["results"]] == [[1], [0], [1]], got


def test_far_future_row_is_rejected_and_evicts_nothing(servers, tmp_path, demo):
    """A row beyond the wall clock plus the allowance is refused on its own (a 4xx, or listed as
    rejected); the watermark does not move, "now" queries still answer, later pushes at the real
    time are accepted, and the server stays ready, also after a restart."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, "--data-root", str(demo))
    wm = s.client.get("/readyz")[2]["watermark"]
    now = time.time_ns() // 1000
    status, _, ack = s.client.post("/v1/push", {"source": "transactions",
                                                "rows": [row(7, "9999-01-01T00:00:00")]})
    if status == 200:
        assert ack["accepted"] == 0 and len(ack["rejected"]) == 1, ack
    else:
        assert 400 <= status < 500, ack
    assert s.client.get("/readyz")[2]["watermark"] == wm
    status, _, ack = s.client.post("/v1/push", {"source": "transactions", "rows": [row(8, now)]})
    assert status == 200 and ack["accepted"] == 1, ack
    query = {"service": "fraud_model", "version": 1, "entities": [{"user_id": BASE_USER + 8}],
             "features": ["tx_count_1h"]}
    status, _, got = s.client.post("/v1/features", query)
    assert status == 200, got
    s.stop()
    s = servers(FEATURES, state, "--data-root", str(demo))
    assert s.client.get("/readyz")[0] == 200
    status, _, got = s.client.post("/v1/features", query)
    assert status == 200 and got["results"][0]["values"] == [1], got


# --------------------------------------------------------------------------- plan change

NEW_GROUP = """import "common/"

features big_spend v1 for user {
    big_30d: int64 = count(transactions where amount > 40.0, 30d)
}

service big_model v1 {
    big_spend@v1.*
}
"""


def test_plan_change_after_a_kill_keeps_every_acknowledged_row(servers, tmp_path, demo):
    """kill -9 mid push stream, then a restart with a project that adds a table over the pushed
    source: the migrated store serves every acknowledged row, in the kept tables and the rebuilt
    one; a restart with a project whose log no longer replays is refused with one line and exit 1."""
    proj = tmp_path / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build", "astra.lock"))
    state = tmp_path / "state"
    s = servers(proj, state, *LATE, "--data-root", str(demo), "--snapshot-interval", "0.3")
    acked: list[int] = []
    stop = threading.Event()
    t = stream(s.port, 0, acked, stop)
    time.sleep(ROUND_SECONDS * 2)  # long enough for a background snapshot to fold some pushes in
    s.kill9()
    stop.set()
    t.join(timeout=10)
    assert acked
    (proj / "big.feat").write_text(NEW_GROUP)
    s = servers(proj, state, *LATE, "--data-root", str(demo))
    assert present(s.client, acked) == {}, s.stderr()
    big = [i for i in acked if float(i % 50) + 0.25 > 40.0][:200]
    status, _, got = s.client.post("/v1/features", {"service": "big_model", "version": 1, "at": T0 + DAY,
                                                    "entities": [{"user_id": BASE_USER + i} for i in big]})
    assert status == 200 and all(r["values"] == [1] for r in got["results"]), got
    assert s.client.post("/v1/push", {"source": "transactions", "rows": [row(5000)]})[0] == 200
    s.kill9()  # a logged row the next project cannot replay: it requires a column the row lacks
    sources = proj / "common" / "sources.feat"
    sources.write_text(sources.read_text().replace("category: string\n", "category: string\n        channel: string\n"))
    bad = launch(proj, state, *LATE, "--data-root", str(demo), wait=False)
    try:
        bad.proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        bad.kill9()
        pytest.fail(f"astra serve did not refuse the plan change:\n{bad.stderr()}")
    out = bad.stderr()
    errors = [line for line in out.splitlines() if line.startswith("error:") or "cannot start" in line]
    assert bad.proc.returncode == 1 and len(errors) == 1 and "Traceback" not in out, out


# --------------------------------------------------------------------------- worker kill, clean restart

@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_killed_worker_is_respawned_with_every_acknowledged_row(servers, tmp_path, server):
    """kill -9 of the worker process: a new one takes over on the same port, restores what was
    acknowledged, and /metrics counts the respawns (the count outlives the worker that died)."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, *LATE, "--server", server)
    acked: list[int] = []
    start = 0
    for k in range(2):
        stop = threading.Event()
        t = stream(s.port, start, acked, stop)
        time.sleep(ROUND_SECONDS)
        pid = worker_pid(Client(s.port))
        subprocess.run(["kill", "-9", str(pid)], check=True)
        stop.set()
        t.join(timeout=10)
        assert not t.is_alive()  # so `t.end` is final
        new = wait_for_other_worker(s, pid)
        c = Client(s.port)
        assert present(c, acked) == {}, f"kill {k + 1}: acknowledged rows not stored once (id: count)\n{s.stderr()}"
        start = t.end
        assert metric(c, "astra_worker_respawns_total") == k + 1
        assert new != pid
        time.sleep(6.0)  # a second death right after a respawn is taken for a crash loop
    s.stop()
    assert s.proc.returncode is not None


@pytest.mark.parametrize(("server", "sig"), [("granian", signal.SIGTERM), ("uvicorn", signal.SIGTERM),
                                             ("granian", signal.SIGINT)],
                         ids=["granian-TERM", "uvicorn-TERM", "granian-INT"])
def test_clean_restart_replays_nothing(servers, tmp_path, server, sig):
    """SIGTERM or SIGINT to the main process alone (`kill PID`, Ctrl-C) stops the server cleanly
    and writes a snapshot, so the next start loads it and replays no log."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, *LATE, "--server", server)
    for k in range(0, 100, 10):
        assert s.client.post("/v1/push", {"source": "transactions",
                                          "rows": [row(i) for i in range(k, k + 10)]})[0] == 200
    s.client.close()
    s.proc.send_signal(sig)
    assert s.proc.wait(timeout=60) == 0, s.stderr()
    s = servers(FEATURES, state, *LATE)
    replayed = re.search(r"replayed (\d+) records", s.stderr())
    assert replayed and int(replayed.group(1)) == 0, s.stderr()
    assert present(s.client, list(range(100))) == {}


# --------------------------------------------------------------------------- slow bodies

def _slow_post(port: int, seconds: float) -> tuple[bytes, bool]:
    """POST /v1/push declaring a 200-byte body, sent at one byte a second; (what the server
    sent, whether it closed the connection) after at most `seconds`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=2.0)
    sock.sendall(b"POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 200\r\n\r\n")
    got, closed = b"", False
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b" ")
            except OSError:
                closed = True
                break
            sock.settimeout(1.0)
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                got += chunk
            except TimeoutError:
                pass
            except OSError:
                closed = True
    finally:
        sock.close()
    return got, closed


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_slow_body_is_timed_out(servers, tmp_path, server):
    s = servers(FEATURES, tmp_path / "state", "--server", server, "--body-timeout", "2s")
    got, closed = _slow_post(s.port, 20.0)
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    assert b"body_timeout" in got and closed, got
    assert s.client.get("/readyz")[0] == 200  # the server goes on


def test_body_timeout_option_is_a_duration():
    r = subprocess.run([sys.executable, "-m", "astra.cli.main", "serve", str(FEATURES), "--body-timeout", "soon",
                        "--port", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "is not a duration" in r.stderr and "Traceback" not in r.stderr, r.stderr
