"""`astra.Client` over the wire: one pooled connection reused; bounded retries on connection
failures only, and only where nothing can be applied twice (never a push whose body may have been
sent, never an HTTP error answer); typed errors for a server that is down, silent, broken, or wants
another token.  Real sockets on loopback throughout; httpx's MockTransport where a failure must
happen at an exact point of an exchange."""

from __future__ import annotations

import math
import socket
import threading

import httpx
import orjson
import pytest
from serve_harness import launch

import astra
from astra.clients import (
    ConnectionFailedError,
    InvalidRequestError,
    RequestTimeoutError,
    ServerError,
    UnauthorizedError,
)

ONE = [{"user_id": 10}]
ROW = {"user_id": 10, "merchant_id": 7, "amount": 1.0, "category": "c", "ts": "2026-03-02T03:00:00"}
REGISTRY = {"services": [{"name": "s", "version": 1, "keys": [{"name": "user_id", "type": "int64"}]}]}
ANSWER = {"service": "s", "version": 1, "fingerprint": "0", "at": 0, "watermark": {},
          "features": [{"name": "f", "type": "float64?"}, {"name": "l", "type": "list<float64>"}],
          "results": [{"values": ["Infinity", ["NaN", -1]], "missing": [], "stale": []}]}


class Script:
    """A MockTransport whose successive requests meet the given outcomes (an exception to raise, or
    (status, JSON body)); registry requests are always answered."""

    def __init__(self, *outcomes):
        self.outcomes, self.calls = list(outcomes), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/registry":
            return httpx.Response(200, json=REGISTRY)
        self.calls.append(request.url.path)
        out = self.outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        status, body = out
        return httpx.Response(status, json=body) if not isinstance(body, bytes) else httpx.Response(status,
                                                                                                    content=body)


def scripted(*outcomes, retries=2) -> tuple[astra.Client, Script]:
    script = Script(*outcomes)
    return astra.Client("http://astra.test", retries=retries, backoff=0.001,
                        transport=httpx.MockTransport(script)), script


def test_connection_failures_are_retried_for_reads_and_pushes():
    c, s = scripted(httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), (200, ANSWER))
    df = c.get("s@v1", ONE)
    assert s.calls == ["/v1/features"] * 3
    assert df["f"][0] == math.inf and math.isnan(df["l"][0][0]) and df["l"][0][1] == -1.0
    ack = {"source": "t", "accepted": 1, "rejected": [], "watermark": 5, "durable": True}
    c, s = scripted(httpx.ConnectError("refused"), (200, ack))
    assert c.push("t", [ROW]).accepted == 1 and len(s.calls) == 2  # nothing was sent the first time


def test_retries_are_bounded():
    c, s = scripted(*[httpx.ConnectError("refused")] * 5, retries=2)
    with pytest.raises(ConnectionFailedError) as err:
        c.get("s@v1", ONE)
    assert len(s.calls) == 3 and err.value.details["attempts"] == 3 and err.value.code == "connection_failed"
    c, s = scripted(httpx.ConnectError("refused"), retries=0)
    with pytest.raises(ConnectionFailedError):
        c.get("s@v1", ONE)
    assert len(s.calls) == 1


def test_a_broken_connection_repeats_a_read_but_never_a_push():
    c, s = scripted(httpx.RemoteProtocolError("server disconnected"), (200, ANSWER))
    assert c.get("s@v1", ONE).height == 1 and len(s.calls) == 2
    for failure in (httpx.RemoteProtocolError("server disconnected"), httpx.ReadError("reset"),
                    httpx.WriteError("broken pipe")):
        c, s = scripted(failure, (200, {}))
        with pytest.raises(ConnectionFailedError) as err:
            c.push("t", [ROW])
        assert len(s.calls) == 1 and "may or may not have been applied" in err.value.message


def test_error_answers_are_never_repeated():
    for status, code, cls in ((500, "internal", ServerError), (503, "not_ready", ServerError),
                              (422, "invalid_type", InvalidRequestError), (401, "unauthorized", UnauthorizedError),
                              (418, "teapot", InvalidRequestError)):
        c, s = scripted((status, {"error": {"code": code, "message": "m", "location": "x", "extra": 1}}), (200, ANSWER))
        with pytest.raises(cls) as err:
            c.get("s@v1", ONE)
        assert len(s.calls) == 1 and (err.value.code, err.value.status, err.value.location) == (code, status, "x")
        assert err.value.details == {"extra": 1}


def test_answers_that_are_not_the_apis_json():
    for outcome in ((502, b"<html>bad gateway</html>"), (200, b"not json"), (200, [1, 2])):
        c, _ = scripted(outcome)
        with pytest.raises(ServerError) as err:
            c.get("s@v1", ONE)
        assert err.value.code == "bad_response"


def test_a_read_timeout_is_not_repeated():
    c, s = scripted(httpx.ReadTimeout("no answer"), (200, ANSWER))
    with pytest.raises(RequestTimeoutError) as err:
        c.get("s@v1", ONE)
    assert len(s.calls) == 1 and err.value.code == "timeout"


# ------------------------------------------------------------------ real sockets


class Listener:
    """A loopback TCP server that counts connections and either never answers or reads a request
    and hangs up."""

    def __init__(self, mode: str):
        self.mode, self.accepted = mode, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "hang up":
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                conn.close()
            else:
                self.open.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.open:
            c.close()
        self.thread.join(timeout=5)


@pytest.fixture
def listener():
    made = []

    def make(mode):
        made.append(Listener(mode))
        return made[-1]

    yield make
    for x in made:
        x.close()


def test_server_down_is_a_typed_connection_error_after_bounded_retries(dead_url):
    with astra.Client(dead_url, retries=2, backoff=0.01, timeout=2.0) as c:
        for call in (lambda: c.get("fraud_model@v1", ONE), lambda: c.push("transactions", [ROW]), c.registry):
            with pytest.raises(ConnectionFailedError) as err:
                call()
            assert err.value.details["attempts"] == 3 and dead_url in err.value.message
            assert isinstance(err.value, astra.ClientError) and err.value.status is None


def test_a_silent_server_times_out_once(listener):
    lst = listener("silent")
    with astra.Client(lst.url, timeout=0.5, retries=2, backoff=0.01) as c, pytest.raises(RequestTimeoutError):
        c.get("fraud_model@v1", ONE)
    assert lst.accepted == 1


def test_a_hang_up_after_the_request_repeats_reads_only(listener):
    lst = listener("hang up")
    with astra.Client(lst.url, timeout=2.0, retries=2, backoff=0.01) as c:
        with pytest.raises(ConnectionFailedError):
            c.get("fraud_model@v1", ONE)
        assert lst.accepted == 3
        with pytest.raises(ConnectionFailedError) as err:
            c.push("transactions", [ROW])
        assert lst.accepted == 4 and "may or may not have been applied" in err.value.message


def test_tokens(server, monkeypatch):
    monkeypatch.delenv("ASTRA_TOKEN", raising=False)
    for token in (None, "wrong"):
        with astra.Client(server.url, token=token) as c:
            for call in (lambda c=c: c.get("fraud_model@v1", ONE), lambda c=c: c.push("transactions", [ROW]),
                         c.registry):
                with pytest.raises(UnauthorizedError) as err:
                    call()
                assert (err.value.code, err.value.status) == ("unauthorized", 401)
    monkeypatch.setenv("ASTRA_TOKEN", "s3cret")  # as the server, the client reads the environment
    with astra.Client(server.url) as c:
        assert c.get("fraud_model@v1", ONE, at="2026-03-02").height == 1


def test_one_connection_is_reused(client):
    for _ in range(20):
        client.get("fraud_model@v1", ONE, at="2026-03-02")
    client.registry()
    pool = client._http._transport._pool  # httpx's connection pool: the one socket every call went through
    assert len(pool.connections) == 1


def test_a_server_gone_mid_session(tmp_path, project, demo):
    server = launch(project.path, tmp_path / "state", "--data-root", str(demo))
    try:
        with astra.Client(server.url, retries=1, backoff=0.01, timeout=5.0) as c:
            assert c.get("fraud_model@v1", ONE, at="2026-03-02").height == 1
            server.kill9()
            with pytest.raises(ConnectionFailedError) as err:
                c.get("fraud_model@v1", ONE, at="2026-03-02")
            assert err.value.details["attempts"] == 2
    finally:
        server.kill9()


def test_a_read_over_the_batch_limit_is_split():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/registry":
            return httpx.Response(200, json=REGISTRY)
        body = orjson.loads(request.content)
        seen.append(len(body["entities"]))
        if len(body["entities"]) > 2:
            return httpx.Response(422, json={"error": {"code": "batch_too_large", "location": "entities",
                                                       "message": "too many", "limit": 2}})
        return httpx.Response(200, json={**ANSWER, "results": [
            {"values": [float(e["user_id"]), []], "missing": [], "stale": []} for e in body["entities"]]})

    c = astra.Client("http://astra.test", transport=httpx.MockTransport(handler))
    df = c.get("s@v1", [{"user_id": u} for u in range(5)])
    assert df["user_id"].to_list() == [0, 1, 2, 3, 4] and df["f"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert seen == [5, 2, 2, 1]
    c.get("s@v1", [{"user_id": u} for u in range(3)])
    assert seen[4:] == [2, 1]  # the limit is remembered
    c, s = scripted((422, {"error": {"code": "batch_too_large", "location": "rows", "message": "m", "limit": 2}}))
    with pytest.raises(InvalidRequestError):  # a push is never split: it would not be all or nothing
        c.push("t", [ROW] * 3)
    assert len(s.calls) == 1
