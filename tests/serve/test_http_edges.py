"""HTTP edge cases: repeated JSON keys, bodies over the limit, every problem of a pushed row,
`name@vN` in `service`, request fields given twice for one entity, integral floats, the store's
horizon, Content-Length with Transfer-Encoding."""

from __future__ import annotations

import http.client
import json
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serve_harness import FEATURES, launch

from astra.serve.validate import ApiError, parse_json

SETUPS = {"granian-rsgi": (), "granian-asgi": ("--interface", "asgi"), "uvicorn-asgi": ("--server", "uvicorn")}
QUERY = {"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}]}
GOOD_ROW = {"user_id": 3, "merchant_id": 4, "amount": 1.0, "category": "cat_01", "ts": "2026-03-05T00:00:00"}


# --------------------------------------------------------------------------- repeated keys, no server

# A JSON value whose objects are written as lists of (key, value) pairs, so a key may repeat.
_KEYS = st.sampled_from(["a", "b", "a:b", 'q"', "é", "ts"])
_SCALARS = st.none() | st.booleans() | st.integers(-10, 10) | st.sampled_from(["", "x", "1:2", '":', "\\", "é"])
_TREES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3).map(lambda v: ("list", v))
                      | st.lists(st.tuples(_KEYS, inner), max_size=4).map(lambda p: ("obj", p)), max_leaves=12)
_SPACE = st.sampled_from(["", " ", "\n", "\t "])


def _write(tree, space: str, ascii_only: bool) -> str:
    if isinstance(tree, tuple) and tree[0] == "list":
        return "[" + ",".join(_write(v, space, ascii_only) for v in tree[1]) + "]"
    if isinstance(tree, tuple):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}{space}:{space}"
                              f"{_write(v, space, ascii_only)}" for k, v in tree[1]) + "}"
    return json.dumps(tree, ensure_ascii=ascii_only)


def _repeats(tree) -> bool:
    if isinstance(tree, tuple) and tree[0] == "list":
        return any(_repeats(v) for v in tree[1])
    if isinstance(tree, tuple):
        keys = [k for k, _ in tree[1]]
        return len(set(keys)) < len(keys) or any(_repeats(v) for _, v in tree[1])
    return False


@given(st.lists(st.tuples(_KEYS, _TREES), max_size=4), _SPACE, st.booleans())
@settings(max_examples=400, deadline=None)
def test_repeated_keys_are_rejected_at_any_depth(pairs, space, ascii_only):
    tree = ("obj", pairs)
    text = _write(tree, space, ascii_only).encode()
    if _repeats(tree):
        with pytest.raises(ApiError) as err:
            parse_json(text)
        assert (err.value.status, err.value.code) == (400, "duplicate_key")
    else:
        assert parse_json(text) == json.loads(text)


def test_repeated_key_is_located():
    with pytest.raises(ApiError) as err:
        parse_json(b'{"service": "s", "entities": [{"user_id": 1}, {"user_id": 2, "user_id" : 3}]}')
    assert err.value.location == "entities[1].user_id" and "more than once" in err.value.message


# --------------------------------------------------------------------------- /v1/features and /v1/push


def test_repeated_keys_are_a_400(api):
    c = api.client
    twice = b'{"service": "fraud_model", "version": 1, "version": 2, "entities": [{"user_id": 1}]}'
    status, _, body = c.request("POST", "/v1/features", raw=twice)
    assert status == 400 and body["error"]["code"] == "duplicate_key" and body["error"]["location"] == "version"
    status, _, body = c.request("POST", "/v1/push", raw=json.dumps({"source": "transactions", "rows": [GOOD_ROW]})
                                .replace('"amount": 1.0', '"amount": 1.0, "amount": 2.0').encode())
    assert status == 400 and body["error"]["location"] == "rows[0].amount"


def test_push_reports_every_problem_of_every_row(api):
    rows = [GOOD_ROW, {**GOOD_ROW, "user_id": "3", "amount": "x", "colour": 1},
            {"user_id": 3}, GOOD_ROW, {**GOOD_ROW, "ts": None}]
    status, _, body = api.client.post("/v1/push", {"source": "transactions", "rows": rows})
    assert status == 422 and body["error"]["rejected"] == 3
    got = {(e["index"], e["location"]) for e in body["error"]["errors"]}
    assert got == {(1, "rows[1].user_id"), (1, "rows[1].amount"), (1, "rows[1].colour"),
                   (2, "rows[2].category"), (2, "rows[2].ts"),  # a key column may be left out
                   (4, "rows[4].ts")}
    colour = next(e for e in body["error"]["errors"] if e["location"] == "rows[1].colour")
    assert "category" in colour["message"]  # what the source has


def test_versioned_service_name_is_hinted(api):
    c = api.client
    status, _, body = c.post("/v1/features", {**QUERY, "service": "fraud_model@v2"})
    assert status == 404 and body["error"]["location"] == "service"
    assert '"service": "fraud_model", "version": 2' in body["error"]["message"]
    status, _, body = c.post("/v1/features", {"service": "fraud_model@v9", "entities": [{"user_id": 1}]})
    assert status == 404 and body["error"]["available"] == [1, 2] and "v1, v2" in body["error"]["message"]
    status, _, body = c.post("/v1/features", {**QUERY, "service": "fraud_modle"})
    assert status == 404 and "did you mean `fraud_model`?" in body["error"]["message"]
    status, _, body = c.post("/v1/push", {"source": "transaction", "rows": [GOOD_ROW]})
    assert status == 404 and "did you mean `transactions`?" in body["error"]["message"]


def test_one_request_field_given_twice_is_a_400(api):
    q = {"service": "fraud_model", "version": 2, "entities": [{"user_id": 1, "merchant_id": 2}] * 2}
    own = {**q, "entities": [{"user_id": 1, "merchant_id": 2, "request": {"amount": 1.0}},
                             {"user_id": 1, "merchant_id": 2, "request": {"checkout.amount": 1.0, "amount": 1.0}}]}
    for body, where in [({**q, "request": {"amount": 1.0, "checkout.amount": 2.0}}, "request"),
                        (own, "entities[1].request")]:
        status, _, body = api.client.post("/v1/features", body)
        assert status == 400 and body["error"]["code"] == "conflicting_fields", body
        assert set(body["error"]["fields"]) == {"amount", "checkout.amount"}
        assert body["error"]["location"].startswith(where + ".")
    status, _, body = api.client.post("/v1/features", {**q, "request": {"checkout.amount": 2.0}})
    assert status == 200, body


def test_integral_floats_are_integers(api):
    """JSON does not tell 1.0 from 1 (nor does JSON Schema): both are the integer 1."""
    q = {**QUERY, "at": "2026-03-02T00:30:00"}
    want = api.client.post("/v1/features", q)[2]["results"]
    status, _, body = api.client.post("/v1/features", {**q, "version": 1.0, "entities": [{"user_id": 1.0}]})
    assert status == 200 and body["results"] == want
    status, _, body = api.client.post("/v1/features", {**q, "entities": [{"user_id": 1.5}]})
    assert status == 422 and body["error"]["location"] == "entities[0].user_id"
    status, _, body = api.client.post("/v1/features", {**q, "entities": [{"user_id": 2.0**60}]})
    assert status == 422  # past 2**53 a float may already be rounded: refused, not guessed


def test_query_before_the_horizon_is_a_409(api):
    status, _, body = api.client.post("/v1/features", {**QUERY, "at": "2000-01-01T00:00:00"})
    assert status == 409 and body["error"]["code"] == "before_horizon" and body["error"]["horizon"] > 0


# --------------------------------------------------------------------------- bodies over the limit, framing


@pytest.fixture(scope="module", params=list(SETUPS))
def small_body_server(request, tmp_path_factory, demo):
    """A server with a 4 KiB body limit, per server and protocol."""
    s = launch(FEATURES, tmp_path_factory.mktemp(request.param) / "state", "--data-root", str(demo),
               "--max-body", "4096", *SETUPS[request.param])
    s.setup = request.param
    yield s
    s.stop()


def _post(port: int, body: bytes, chunked: bool = False) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if chunked:
            conn.putrequest("POST", "/v1/features")
            conn.putheader("transfer-encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(body), 65536):
                conn.send(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536]))
            conn.send(b"0\r\n\r\n")
        else:  # http.client writes the whole body before it reads the answer, as most clients do
            conn.request("POST", "/v1/features", body=body, headers={"content-type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_body_over_the_limit_is_answered_413(small_body_server):
    for size, chunked in [(8 << 20, False), (2 << 20, True), (5000, False)]:
        status, body = _post(small_body_server.port, b" " * size, chunked)
        assert status == 413 and body["error"]["code"] == "body_too_large" and body["error"]["limit"] == 4096
    status, body = _post(small_body_server.port, json.dumps(QUERY).encode())
    assert status == 200 and body["results"]


def test_body_over_the_limit_is_refused_before_100_continue(small_body_server):
    """A client that waits for `100 Continue` before sending a body over the limit gets the 413 at once."""
    head = (b"POST /v1/features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
    with socket.create_connection(("127.0.0.1", small_body_server.port), timeout=15) as sock:
        sock.sendall(head)
        got = b""
        while b"\r\n\r\n" not in got and (chunk := sock.recv(65536)):
            got += chunk
    assert got.startswith(b"HTTP/1.1 413"), got[:100]


def test_content_length_with_transfer_encoding_is_answered_then_closed(small_body_server):
    """RFC 9112 §6.1: the server may reject such a request or process it (Transfer-Encoding wins), and
    must close the connection after it: granian answers, uvicorn refuses with a 400."""
    payload = json.dumps(QUERY).encode()
    head = (b"POST /v1/features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(payload))
    with socket.create_connection(("127.0.0.1", small_body_server.port), timeout=15) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload))
        got = b""
        while chunk := sock.recv(65536):  # b"" once the server has closed the connection
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    status_line, *fields = head.decode().split("\r\n")
    assert got.count(b"HTTP/1.1 ") == 1 and "connection: close" in [f.lower() for f in fields]
    if small_body_server.setup.startswith("granian"):
        assert status_line.startswith("HTTP/1.1 200") and json.loads(body)["results"]
    else:
        assert status_line.startswith("HTTP/1.1 400")
