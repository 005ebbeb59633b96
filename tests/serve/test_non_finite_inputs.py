"""Non-finite floats sent back (docs/online.md, "Non-finite floats in requests"): answers write a
float's NaN and infinities as "NaN", "Infinity" and "-Infinity", so a pushed row's float column and
a float request field take exactly those three strings; keys, ints and other spellings do not.
The validator, the served JSON Schema and both Python clients agree."""

from __future__ import annotations

import datetime as dt
import math
import time

import jsonschema_rs
import pytest
from serve_harness import FEATURES

from astra.project import Project
from astra.serve.request_schema import features_request, push_request
from astra.serve.validate import ApiError, features_query, push_rows, service_info

SPELLINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
OTHERS = ["nan", "inf", "-inf", "infinity", "+Infinity", "Infinity ", "NAN", "1e999", ""]
T = 1_772_409_600_000_000  # 2026-03-02T00:00:00


@pytest.fixture(scope="module")
def plan():
    return Project.load(FEATURES).plan


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def tx(amount, **kw) -> dict:
    return {"user_id": 1, "merchant_id": 2, "amount": amount, "category": "c", "ts": T, **kw}


def v2(request=None, **entity) -> dict:
    ent = {"user_id": 1, "merchant_id": 2, **entity}
    body = {"service": "fraud_model", "version": 2, "entities": [ent], "at": T}
    if request is not None:
        body["request"] = request
    return body


@pytest.mark.parametrize("text", list(SPELLINGS))
def test_a_pushed_float_column_takes_the_three_strings(plan, text):
    src = plan.source("transactions")
    rows, errors, bad = push_rows(src, [tx(text)])
    assert bad == 0 and errors == [], errors
    assert same(rows[0]["amount"], SPELLINGS[text])
    assert jsonschema_rs.validator_for(push_request(src, 10)).is_valid({"source": "transactions", "rows": [tx(text)]})


@pytest.mark.parametrize("text", OTHERS)
def test_other_spellings_are_refused_in_a_push(plan, text):
    src = plan.source("transactions")
    _, errors, bad = push_rows(src, [tx(text)])
    assert bad == 1 and errors[0]["location"] == "rows[0].amount", errors
    assert "expected float64, got string" in errors[0]["message"]
    assert not jsonschema_rs.validator_for(push_request(src, 10)).is_valid({"source": "transactions",
                                                                             "rows": [tx(text)]})


@pytest.mark.parametrize("column", ["user_id", "merchant_id", "ts"])
def test_keys_ints_and_times_never_take_them(plan, column):
    src = plan.source("transactions")
    for text in SPELLINGS:
        _, errors, bad = push_rows(src, [tx(1.0, **{column: text})])
        assert bad == 1 and errors[0]["location"] == f"rows[0].{column}", errors
        assert not jsonschema_rs.validator_for(push_request(src, 10)).is_valid(
            {"source": "transactions", "rows": [tx(1.0, **{column: text})]})


def test_a_float_request_field_takes_them_top_level_and_per_entity(plan):
    services = {(s.name, s.version): service_info(plan, s) for s in plan.services}
    schema = jsonschema_rs.validator_for(features_request(services["fraud_model", 2], 1000))
    for text, want in SPELLINGS.items():
        for body in (v2({"amount": text}), v2({"checkout.amount": text, "channel": "web"})):
            q = features_query(body, services, 1000)
            got = q.request["checkout.amount"] if isinstance(q.request, dict) else q.request[0]["checkout.amount"]
            assert same(got, want)
            assert schema.is_valid(body), body
        own = v2()  # an entity's own request
        own["entities"][0]["request"] = {"amount": text}
        q = features_query(own, services, 1000)
        assert schema.is_valid(own)
        assert same(q.request[0]["checkout.amount"], want)
    for text in OTHERS:
        with pytest.raises(ApiError) as exc:
            features_query(v2({"amount": text}), services, 1000)
        assert exc.value.location == "request.amount" and exc.value.status == 422
        assert not schema.is_valid(v2({"amount": text}))


def test_a_string_request_field_and_a_key_stay_strings_or_fail(plan):
    services = {(s.name, s.version): service_info(plan, s) for s in plan.services}
    q = features_query(v2({"amount": 1.0, "channel": "NaN"}), services, 1000)
    assert q.request["checkout.channel"] == "NaN"  # a string field keeps the text
    with pytest.raises(ApiError) as exc:
        features_query(v2({"amount": 1.0}, user_id="NaN"), services, 1000)
    assert exc.value.location == "entities[0].user_id"


def test_clients_send_back_what_they_received(servers, tmp_path, demo):
    """Over HTTP and in process: an infinite and a NaN amount pushed with the Python clients are
    stored as such and served back as inf and NaN; the raw answer's strings push back as they came."""
    import astra

    s = servers(FEATURES, tmp_path / "state", "--data-root", str(demo))
    online = astra.Online(astra.Project.load(FEATURES), data_root=demo)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=30)
    rows = [{"user_id": 9_000_001, "merchant_id": 1, "amount": math.inf, "category": "c", "ts": now},
            {"user_id": 9_000_002, "merchant_id": 1, "amount": math.nan, "category": "c", "ts": now},
            {"user_id": 9_000_003, "merchant_id": 1, "amount": -math.inf, "category": "c", "ts": now}]
    with astra.Client(s.url, timeout=15.0) as client:
        for c in (client, online):
            ack = c.push("transactions", rows)
            assert ack.accepted == 3 and not ack.rejected, ack
            got = c.get("fraud_model@v1", [{"user_id": 9_000_001 + k} for k in range(3)],
                        at=now + dt.timedelta(seconds=1), features=["tx_sum_1h"])
            sums = got["tx_sum_1h"].to_list()
            assert sums[0] == math.inf and math.isnan(sums[1]) and sums[2] == -math.inf, got
        # the raw JSON answer, pushed back as it came
        status, _, body = s.client.post("/v1/features", {
            "service": "fraud_model", "version": 1, "features": ["tx_sum_1h"],
            "at": int((now - dt.datetime(1970, 1, 1)) / dt.timedelta(microseconds=1)) + 1,
            "entities": [{"user_id": 9_000_001 + k} for k in range(3)]})
        assert status == 200 and [r["values"][0] for r in body["results"]] == ["Infinity", "NaN", "-Infinity"]
        back = [{"user_id": 9_000_011 + k, "merchant_id": 1, "amount": r["values"][0], "category": "c",
                 "ts": time.time_ns() // 1000 - 10_000_000} for k, r in enumerate(body["results"])]
        status, _, ack = s.client.post("/v1/push", {"source": "transactions", "rows": back})
        assert status == 200 and ack["accepted"] == 3, ack


# --------------------------------------------------------------------------- the push log keeps them


def test_the_push_log_keeps_non_finite_floats(tmp_path):
    """JSON has no NaN or infinity: a log record still gives back exactly the rows pushed, to
    recovery (`read_segment`) and to a read-only follower alike; a null stays null, a string "NaN"
    a string."""
    from astra.serve.wal import Follower, Log, StateDir, read_segment

    rows = [tx(math.inf), tx(None), tx(-math.inf, category="NaN"), tx(math.nan), tx(2.5)]
    state = StateDir(tmp_path / "state")
    state.wal.mkdir(parents=True)
    log = Log(state, 1)
    log.append("transactions", rows)
    log.append("transactions", [tx(1.0)])
    log.close()
    records, _ = read_segment(state.segment(1), last=True, repair=False)
    followed = Follower(state, 1, 0).poll()
    for got in (list(records), followed):
        assert [r["source"] for r in got] == ["transactions", "transactions"] and got[1]["rows"] == [tx(1.0)]
        amounts = [r["amount"] for r in got[0]["rows"]]
        assert amounts[0] == math.inf and amounts[1] is None and amounts[2] == -math.inf
        assert math.isnan(amounts[3]) and amounts[4] == 2.5
        assert got[0]["rows"][2]["category"] == "NaN" and set(got[0]) == {"source", "rows"}


def test_non_finite_pushes_survive_a_crash(servers, tmp_path):
    """Pushed "Infinity" and "NaN" amounts, then kill -9 (no snapshot): the restarted server
    replays them from the log and answers as before."""
    state = tmp_path / "state"
    s = servers(FEATURES, state)
    now = time.time_ns() // 1000 - 30_000_000
    rows = [tx("Infinity", user_id=41, ts=now), tx("NaN", user_id=42, ts=now), tx("-Infinity", user_id=43, ts=now)]
    status, _, ack = s.client.post("/v1/push", {"source": "transactions", "rows": rows})
    assert status == 200 and ack["accepted"] == 3, ack
    query = {"service": "fraud_model", "version": 1, "features": ["tx_sum_1h", "tx_count_1h"], "at": now + 1,
             "entities": [{"user_id": u} for u in (41, 42, 43)]}
    want = [["Infinity", 1], ["NaN", 1], ["-Infinity", 1]]
    status, _, body = s.client.post("/v1/features", query)
    assert status == 200 and [r["values"] for r in body["results"]] == want, body
    s.kill9()
    s = servers(FEATURES, state)
    status, _, body = s.client.post("/v1/features", query)
    assert status == 200 and [r["values"] for r in body["results"]] == want, (body, s.stderr())
