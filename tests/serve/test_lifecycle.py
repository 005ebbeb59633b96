"""The server process's life around its workers (docs/operations.md): a stop that arrives while a
worker is being started again, and a worker stopped by a signal of its own.  Real processes on
loopback; every wait is bounded."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from serve_harness import FEATURES, Client
from test_faults import LATE, present, row, wait_for_other_worker, worker_pid

STOP_TIMEOUT = 60.0


def wait_for_line(server, text: str) -> None:
    """Wait (bounded) until the server's log holds `text`."""
    deadline = time.monotonic() + STOP_TIMEOUT
    while text not in server.stderr():
        assert server.proc.poll() is None, f"the server exited:\n{server.stderr()}"
        assert time.monotonic() < deadline, f"never logged {text!r}:\n{server.stderr()}"
        time.sleep(0.01)


def respawns(client: Client) -> dict[str, float]:
    """`astra_worker_respawns_total` by reason."""
    out = {}
    for line in client.get("/metrics")[2].splitlines():
        if line.startswith("astra_worker_respawns_total{"):
            out[line.split('reason="')[1].split('"')[0]] = float(line.split()[-1])
    return out


@pytest.mark.parametrize(("server", "sig"), [("granian", signal.SIGTERM), ("granian", signal.SIGINT),
                                             ("uvicorn", signal.SIGTERM)],
                         ids=["granian-TERM", "granian-INT", "uvicorn-TERM"])
def test_stop_during_a_respawn_ends_the_server(servers, tmp_path, server, sig):
    """SIGTERM/SIGINT to the main process just as a killed worker is being replaced (the new one
    still restoring the store) stops the server with status 0; every acknowledged row is kept and
    the next start takes the state directory's lock."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, *LATE, "--server", server)
    assert s.client.post("/v1/push", {"source": "transactions", "rows": [row(i) for i in range(20)]})[0] == 200
    subprocess.run(["kill", "-9", str(worker_pid(s.client))], check=True)
    s.client.close()
    wait_for_line(s, "starting another (respawn 1)")
    s.proc.send_signal(sig)
    try:
        code = s.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        s.kill9()
        pytest.fail(f"astra serve did not stop:\n{s.stderr()}")
    assert code == 0, s.stderr()
    s = servers(FEATURES, state, *LATE, "--server", server)
    assert present(s.client, list(range(20))) == {}


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_worker_stopped_by_sigterm_is_replaced_and_counted_as_a_stop(servers, tmp_path, server):
    """SIGTERM to the worker alone: it stops cleanly, the supervisor starts another (twice in a
    row is no crash loop), no acknowledged row is lost, and /metrics counts stops apart from
    crashes; the server still stops cleanly afterwards."""
    state = tmp_path / "state"
    s = servers(FEATURES, state, *LATE, "--server", server)
    for k in range(2):
        rows = list(range(10 * k, 10 * k + 10))
        assert s.client.post("/v1/push", {"source": "transactions", "rows": [row(i) for i in rows]})[0] == 200
        old = worker_pid(s.client)
        s.client.close()
        subprocess.run(["kill", "-TERM", str(old)], check=True)
        wait_for_other_worker(s, old)
        c = Client(s.port)
        assert present(c, list(range(10 * k + 10))) == {}, s.stderr()
        assert respawns(c) == {"crash": 0, "stopped": k + 1}, s.stderr()
        c.close()
    assert "crash loop" not in s.stderr()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=STOP_TIMEOUT) == 0, s.stderr()


def test_killed_worker_is_counted_as_a_crash(servers, tmp_path):
    s = servers(FEATURES, tmp_path / "state", "--server", "granian")
    old = worker_pid(s.client)
    s.client.close()
    subprocess.run(["kill", "-9", str(old)], check=True)
    wait_for_other_worker(s, old)
    assert respawns(Client(s.port)) == {"crash": 1, "stopped": 0}
