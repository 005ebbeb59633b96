"""A real `redis-server` on a free loopback port, for the shared online store's tests.

The server runs in a temporary directory without persistence and is killed at teardown.  When
the binary is missing the tests skip with a loud reason (`.ci/run` installs Debian's package).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import warnings

import pytest

SERVER = shutil.which("redis-server") or ("/usr/bin/redis-server" if shutil.os.path.exists("/usr/bin/redis-server")
                                          else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A running server: `url`, `port`, and `stop()` / `start()` to simulate losing it."""

    def __init__(self, workdir):
        self.workdir, self.port, self.proc = workdir, free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def redis_or_skip():
    if SERVER is None:
        msg = "REDIS STORE TESTS SKIPPED: redis-server is not installed (apt-get install redis-server; .ci/run does)"
        warnings.warn(msg, stacklevel=2)
        pytest.skip(msg)
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.skip("REDIS STORE TESTS SKIPPED: redis-py is not installed (the astra[redis] extra)")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """One server per test module; tests use distinct key prefixes, or flush it."""
    redis_or_skip()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
