"""Harness for the `astra serve` tests: small demo data, and real server processes on loopback.

`launch(state, ...)` starts `astra serve` as a subprocess in its own process group on a free
port, waits (bounded) for `/readyz`, and returns a `Server` with a small keep-alive JSON client.
Every server is stopped at the end of its test: SIGTERM, then SIGKILL of its process group.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "features"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A keep-alive HTTP/1.1 client for one server (loopback, bounded timeouts)."""

    def __init__(self, port: int, token: str | None = None, timeout: float = 15.0):
        self.port, self.token, self.timeout = port, token, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None):
        """(status, headers dict, parsed JSON or text)."""
        hdrs = {"content-type": "application/json", **(headers or {})}
        if self.token:
            hdrs.setdefault("authorization", f"Bearer {self.token}")
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                payload = r.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        ctype = r.getheader("content-type", "")
        out = json.loads(payload) if ctype.startswith("application/json") and payload else payload.decode()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, out

    def post(self, path: str, body, **kw):
        return self.request("POST", path, body, **kw)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Server:
    """A running `astra serve` process."""

    def __init__(self, proc: subprocess.Popen, port: int, state: Path, log: Path, token: str | None):
        self.proc, self.port, self.state, self.log, self.token = proc, port, state, log, token
        self.client = Client(port, token)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill9(self) -> None:
        """SIGKILL the whole process group (the server and its workers), like `kill -9` of a crash."""
        self.client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful stop (SIGTERM: snapshot and close the log), SIGKILL after 20 s."""
        self.client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


def launch(project: Path, state: Path, *args: str, token: str | None = None, wait: bool = True) -> Server:
    port = free_port()
    log = state.parent / f"{state.name}.{port}.log"
    cmd = [sys.executable, "-m", "astra.cli.main", "serve", str(project), "--state", str(state),
           "--port", str(port), "--access-log", "off", *args]
    if token:
        cmd += ["--token", token]
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, cwd=state.parent)
    server = Server(proc, port, state, log, token)
    if not wait:
        return server
    deadline = time.monotonic() + START_TIMEOUT
    probe = Client(port, timeout=2.0)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"astra serve exited with {proc.returncode}:\n{server.stderr()}")
        try:
            status, _, _ = probe.get("/readyz")
            if status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.kill9()
            raise RuntimeError(f"astra serve did not become ready in {START_TIMEOUT} s:\n{server.stderr()}")
        time.sleep(0.1)
    probe.close()
    return server


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """Small demo data (transactions, profiles, spine)."""
    from astra import demo_data

    d = tmp_path_factory.mktemp("demo")
    demo_data.generate(d, events=3000, users=80, labels=200, seed=5)
    return d


@pytest.fixture
def servers():
    """Start servers with `servers(project, state, *args)`; all are stopped at teardown."""
    started: list[Server] = []

    def start(project: Path, state: Path, *args: str, **kw) -> Server:
        s = launch(project, state, *args, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        try:
            s.stop()
        except (OSError, subprocess.TimeoutExpired):
            s.kill9()


@pytest.fixture(scope="module")
def api(tmp_path_factory, demo):
    """One server over the demo data and a project with a deprecated service, for the API tests."""
    proj = tmp_path_factory.mktemp("project") / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build", "astra.lock"))
    (proj / "legacy.feat").write_text('import "profile.feat"\n\nservice legacy_profile v1 {\n'
                                      '    user_profile@v2.*\n}\n')
    state = tmp_path_factory.mktemp("api") / "state"
    s = launch(proj, state, "--data-root", str(demo), "--max-body", "65536", "--max-batch", "50",
               "--allowed-lateness", str(10 * 86400 * 10**6), token="s3cret")
    s.project = proj
    yield s
    s.stop()
