"""A killed worker's respawn keeps every acknowledged push exactly once, with the interleavings
forced rather than left to timing: more rows before the kill than any fixed id offset, and a
background snapshot child frozen mid-way when its worker is killed (docs/serving.md,
Durability and restart; docs/operations.md, respawns)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from serve_harness import FEATURES, Client
from test_faults import LATE, RESPAWN_TIMEOUT, metric, present, row, wait_for_other_worker, worker_pid

BATCH = 5


def push(client: Client, ids: range) -> None:
    """Push `ids` in acknowledged batches of 5 (one at a time: each 200 comes before the next push)."""
    for i in range(ids.start, ids.stop, BATCH):
        status, _, ack = client.post("/v1/push", {"source": "transactions",
                                                  "rows": [row(j) for j in range(i, min(i + BATCH, ids.stop))]})
        assert status == 200 and ack["accepted"] == min(BATCH, ids.stop - i) and not ack["rejected"], ack


def children(pid: int) -> list[int]:
    """The child processes of `pid` (over all its threads)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie counts: it runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_worker(port: int, server) -> int:
    """kill -9 of the worker that answers, then wait (bounded) for its respawn; the new worker's pid."""
    pid = worker_pid(Client(port))
    os.kill(pid, signal.SIGKILL)
    return wait_for_other_worker(server, pid)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_rows_past_any_fixed_offset_survive_two_worker_kills(servers, tmp_path, server):
    """1500 acknowledged rows before the first kill (more than the 1000 the second round of the
    timed test once started at) and 1500 more before the second: every one is held exactly once
    after each respawn.  A row id pushed again is held twice, which is what a reused id looks
    like, not a loss."""
    s = servers(FEATURES, tmp_path / "state", *LATE, "--server", server, "--snapshot-interval", "0.2")
    c = Client(s.port)
    push(c, range(0, 1500))
    kill_worker(s.port, s)
    c = Client(s.port)
    assert present(c, list(range(1500))) == {}
    assert metric(c, "astra_worker_respawns_total") == 1
    time.sleep(6.0)  # a second death right after a respawn is taken for a crash loop
    push(c, range(1500, 3000))
    kill_worker(s.port, s)
    c = Client(s.port)
    assert present(c, list(range(3000))) == {}
    push(c, range(1000, 1005))
    assert present(c, list(range(995, 1010))) == {i: 2 for i in range(1000, 1005)}


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_worker_killed_while_its_snapshot_child_is_stopped(servers, tmp_path):
    """The worker is killed while a background snapshot child is frozen (SIGSTOP) before it
    finished, with acknowledged pushes in the segment after the rotation: the child dies with the
    worker (it must not write the directory the respawned worker owns), and the respawned worker
    recovers from the previous snapshot and every segment after it, every row exactly once."""
    s = servers(FEATURES, tmp_path / "state", *LATE, "--snapshot-interval", "0.05")
    c = Client(s.port)
    pid = worker_pid(c)
    child, i = None, 0
    deadline = time.monotonic() + RESPAWN_TIMEOUT
    while child is None:  # push until a snapshot child is caught running, then freeze it
        assert time.monotonic() < deadline, "no background snapshot child was seen"
        push(c, range(i, i + BATCH))
        i += BATCH
        for _ in range(200):
            kids = children(pid)
            if kids:
                try:
                    os.kill(kids[0], signal.SIGSTOP)
                except ProcessLookupError:
                    break
                if not gone(kids[0]):
                    child = kids[0]
                break
    push(c, range(i, i + 200))  # into the segment after the rotation, while snap-N is unwritten
    i += 200
    os.kill(pid, signal.SIGKILL)
    new = wait_for_other_worker(s, pid)  # while the child is still frozen: it must not hold the lock
    with contextlib.suppress(ProcessLookupError):  # frozen before its death signal was armed, it
        os.kill(child, signal.SIGCONT)  # must see it is orphaned and leave
    end = time.monotonic() + 10
    while not gone(child):
        assert time.monotonic() < end, "the snapshot child outlived its killed worker"
        time.sleep(0.05)
    c = Client(s.port)
    assert worker_pid(c) == new
    assert present(c, list(range(i))) == {}, s.stderr()
    push(c, range(i, i + 50))  # the respawned worker goes on logging and snapshotting
    time.sleep(0.5)
    assert present(c, list(range(i + 50))) == {}
