"""The same app behind each supported server and protocol: granian over RSGI (the default),
granian over ASGI, and uvicorn over ASGI.  Every one must give byte-identical answers, the same
headers that matter, the same limits and the same errors."""

from __future__ import annotations

import http.client
import json

import pytest
from serve_harness import FEATURES

SETUPS = {
    "granian-rsgi": (),
    "granian-asgi": ("--interface", "asgi"),
    "uvicorn-asgi": ("--server", "uvicorn"),
}
ROW = {"user_id": 999_999, "merchant_id": 1, "amount": 2.5, "category": "cat_02", "ts": 1_772_000_000 * 10**6}
QUERY = {"service": "fraud_model", "version": 1, "entities": [{"user_id": 999_999}, {"user_id": 8}],
         "at": ROW["ts"] + 1}


def raw(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
        chunked: bool = False) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        if chunked:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("transfer-encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(body), 65536):
                part = body[i:i + 65536]
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        else:
            conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def answers(tmp_path_factory, demo):
    """What each setup answers to the same requests."""
    from serve_harness import launch

    out = {}
    for name, args in SETUPS.items():
        state = tmp_path_factory.mktemp(name) / "state"
        s = launch(FEATURES, state, "--data-root", str(demo), "--max-body", "4096",
                   "--allowed-lateness", str(30 * 86400 * 10**6), *args)
        try:
            p = s.port
            push = json.dumps({"source": "transactions", "rows": [ROW]}).encode()
            out[name] = {
                "push": raw(p, "POST", "/v1/push", push, {"content-type": "application/json"}),
                "features": raw(p, "POST", "/v1/features", json.dumps(QUERY).encode(),
                                {"x-request-id": "req-42"}),
                "chunked": raw(p, "POST", "/v1/features", json.dumps(QUERY).encode(), chunked=True),
                "head": raw(p, "HEAD", "/healthz"),
                "unknown": raw(p, "GET", "/v2/nothing"),
                "method": raw(p, "GET", "/v1/features"),
                "too_large": raw(p, "POST", "/v1/features", b" " * 5000),
                "too_large_chunked": raw(p, "POST", "/v1/features", b" " * 20000, chunked=True),
                "malformed": raw(p, "POST", "/v1/features", b'{"service": '),
            }
        finally:
            s.stop()
    return out


@pytest.mark.parametrize("name", SETUPS)
def test_answers_and_headers(answers, name):
    got = answers[name]
    status, headers, body = got["features"]
    assert status == 200 and headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "req-42"
    assert int(headers["content-length"]) == len(body)
    doc = json.loads(body)
    assert doc["results"][0]["values"][0] == 1  # the pushed row: the only one of a user the demo data lacks
    assert got["chunked"][0] == 200 and json.loads(got["chunked"][2]) == doc
    status, headers, body = got["head"]
    assert status == 200 and body == b"" and headers["content-type"] == "application/json"
    assert json.loads(got["push"][2])["accepted"] == 1


@pytest.mark.parametrize("name", SETUPS)
def test_errors(answers, name):
    got = answers[name]
    expect = {"unknown": (404, "not_found"), "method": (405, "method_not_allowed"),
              "too_large": (413, "body_too_large"), "too_large_chunked": (413, "body_too_large"),
              "malformed": (400, "malformed_json")}
    for case, (status, code) in expect.items():
        s, headers, body = got[case]
        assert (s, json.loads(body)["error"]["code"]) == (status, code), case
        assert headers["x-request-id"]
    assert got["method"][1]["allow"] == "POST"


def test_every_setup_answers_the_same(answers):
    bodies = {name: json.loads(a["features"][2]) for name, a in answers.items()}
    first = next(iter(bodies.values()))
    assert all(b == first for b in bodies.values())
