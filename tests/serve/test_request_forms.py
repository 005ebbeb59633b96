"""The two forms of a `/v1/features` body (docs/serving.md): a top-level `at` and `request` for every
entity, and an entity's own `at` and `request`, which replace them for that entity.

The validator is checked in-process against the documented rules and errors; a property holds the
served JSON Schema and the validator to the same verdict on bodies mixing both forms; a live server
answers an entity's own time and inputs exactly as it answers that entity asked alone."""

from __future__ import annotations

import shutil
import time

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from serve_harness import FEATURES, launch

from astra.project import Project
from astra.serve.request_schema import features_request
from astra.serve.validate import ApiError, features_query, parse_json, service_info

T = 1_772_409_600_000_000  # 2026-03-02T00:00:00


@pytest.fixture(scope="module")
def services():
    plan = Project.load(FEATURES).plan
    return {(s.name, s.version): service_info(plan, s) for s in plan.services}


def v1(*entities, **top) -> dict:
    return {"service": "fraud_model", "version": 1, "entities": list(entities), **top}


def v2(*entities, **top) -> dict:
    return {"service": "fraud_model", "version": 2, "entities": list(entities), **top}


def error(services, body) -> ApiError:
    with pytest.raises(ApiError) as exc:
        features_query(body, services, 1000)
    return exc.value


# --------------------------------------------------------------------------- accepted forms


def test_an_entity_time_replaces_the_top_level_one_for_that_entity(services):
    q = features_query(v1({"user_id": 1}, {"user_id": 2, "at": T - 5}, {"user_id": 3, "at": "2026-03-01"},
                          at=T), services, 1000)
    assert q.at == [T, T - 5, T - 86_400_000_000]
    assert q.keys == [(1,), (2,), (3,)]  # the time is not a key column


def test_without_a_top_level_time_the_others_are_asked_now(services):
    before = time.time_ns() // 1000
    q = features_query(v1({"user_id": 1, "at": T}, {"user_id": 2}), services, 1000)
    after = time.time_ns() // 1000
    assert q.at[0] == T and before <= q.at[1] <= after


def test_a_null_entity_time_is_as_if_absent(services):
    assert features_query(v1({"user_id": 1, "at": None}, at=T), services, 1000).at == T
    assert features_query(v1({"user_id": 1, "at": None}), services, 1000).at is None  # now, cacheable


def test_an_entity_request_replaces_the_top_level_one_whole(services):
    q = features_query(v2({"user_id": 1, "merchant_id": 7},
                          {"user_id": 2, "merchant_id": 7, "request": {"channel": "web", "checkout.amount": 3}},
                          request={"amount": 1.5, "channel": "app"}), services, 1000)
    # not merged: the entity's object is complete on its own (its channel, no top-level leftovers)
    assert q.request == [{"checkout.amount": 1.5, "checkout.channel": "app"},
                         {"checkout.amount": 3.0, "checkout.channel": "web"}]
    assert q.request_keys == [(1.5, "app"), (3.0, "web")]


def test_every_entity_may_carry_its_own_request_instead_of_a_top_level_one(services):
    q = features_query(v2({"user_id": 1, "merchant_id": 7, "request": {"amount": 2.0}},
                          {"user_id": 2, "merchant_id": 7, "request": {"amount": 4.0, "channel": None}}),
                       services, 1000)
    assert q.request == [{"checkout.amount": 2.0, "checkout.channel": None},
                         {"checkout.amount": 4.0, "checkout.channel": None}]


def test_field_order_does_not_change_the_cache_key(services):
    a = features_query(v2({"user_id": 1, "merchant_id": 7}, request={"amount": 1.0, "channel": "web"}), services, 9)
    b = features_query(v2({"user_id": 1, "merchant_id": 7}, request={"channel": "web", "amount": 1.0}), services, 9)
    assert a.request_keys == b.request_keys


def test_a_service_without_inputs_takes_empty_or_null_requests(services):
    q = features_query(v1({"user_id": 1, "request": {}}, {"user_id": 2, "request": None}, request={}), services, 9)
    assert q.request is None


SPOTS = """entity spot {
    key at: int64
}

events pings for spot {
    path "pings.parquet"
    time ts
    columns {
        at: int64
        v: float64
    }
}

features spot_stats v1 for spot {
    n: int64 = count(pings, 1d)
}

service spots v1 {
    spot_stats@v1.n
}
"""


def test_a_key_column_named_at_is_the_key(tmp_path):
    (tmp_path / "spots.feat").write_text(SPOTS)
    plan = Project.load(tmp_path).plan
    info = service_info(plan, plan.services[0])
    q = features_query({"service": "spots", "version": 1, "entities": [{"at": 5}, {"at": 6}], "at": T},
                       {("spots", 1): info}, 10)
    assert q.keys == [(5,), (6,)] and q.at == T
    with pytest.raises(ApiError) as exc:
        features_query({"service": "spots", "version": 1, "entities": [{"at": "2026-03-01"}]}, {("spots", 1): info}, 9)
    assert (exc.value.code, exc.value.location) == ("invalid_type", "entities[0].at")  # an int64 key, not a time
    schema = features_request(info, 10)["properties"]["entities"]["items"]["properties"]
    assert schema["at"] == {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("at, code, message", [
    (True, "invalid_type", "entities[1].at: expected timestamp (µs integer or ISO 8601 string), got boolean"),
    ({"t": 1}, "invalid_type", "entities[1].at: expected timestamp (µs integer or ISO 8601 string), got object"),
    ("yesterday", "invalid_value", "entities[1].at: 'yesterday' is not an ISO 8601 timestamp in years 1-9999 "
                                   "(e.g. 2026-03-01, 2026-03-01T12:30:00, 2026-03-01T12:30:00+02:00)"),
    (2**63, "invalid_value", f"entities[1].at: {2**63} is out of range for timestamp"),
])
def test_a_bad_entity_time_is_located_in_the_entity(services, at, code, message):
    err = error(services, v1({"user_id": 1}, {"user_id": 2, "at": at}, at=T))
    assert (err.status, err.code, err.message, err.location) == (422, code, message, "entities[1].at")


def test_parallel_arrays_are_refused_with_the_per_entity_form_named(services):
    err = error(services, v1({"user_id": 1}, {"user_id": 2}, at=[T, T]))
    assert (err.status, err.code, err.location) == (422, "invalid_type", "at")
    assert "entities[0].at" in err.message
    err = error(services, v2({"user_id": 1, "merchant_id": 7}, request=[{"amount": 1.0}]))
    assert (err.status, err.code, err.location) == (422, "invalid_type", "request")
    assert "entities[0].request" in err.message


def test_an_unknown_entity_field_lists_the_keys(services):
    err = error(services, v1({"user_id": 1, "when": T}))
    assert (err.status, err.code, err.location) == (422, "unknown_key", "entities[0].when")
    assert "keyed by user_id" in err.message and "`at`" in err.message
    assert err.extra["keys"] == ["user_id"]


@pytest.mark.parametrize("req, status, code, location", [
    ([{"amount": 1.0}], 422, "invalid_type", "entities[0].request"),
    ("amount=1", 422, "invalid_type", "entities[0].request"),
    ({"amout": 1.0}, 422, "unknown_field", "entities[0].request.amout"),
    ({"amount": "1.0"}, 422, "invalid_type", "entities[0].request.amount"),
    ({"channel": "web"}, 422, "missing_field", "entities[0].request.amount"),
    ({"amount": 1.0, "checkout.amount": 2.0}, 400, "conflicting_fields", "entities[0].request.checkout.amount"),
])
def test_a_bad_entity_request_is_located_in_the_entity(services, req, status, code, location):
    err = error(services, v2({"user_id": 1, "merchant_id": 7, "request": req}, request={"amount": 1.0}))
    assert (err.status, err.code, err.location) == (status, code, location)
    assert err.message.startswith("entities[0].request")


def test_the_unknown_request_field_gets_a_did_you_mean(services):
    err = error(services, v2({"user_id": 1, "merchant_id": 7, "request": {"amout": 1.0}}))
    assert "did you mean `amount`?" in err.message


def test_conflicting_names_of_one_field_name_both(services):
    err = error(services, v2({"user_id": 1, "merchant_id": 7, "request": {"checkout.amount": 1.0, "amount": 2.0}}))
    assert err.extra["fields"] == ["checkout.amount", "amount"]


def test_required_inputs_come_from_the_top_level_or_from_every_entity(services):
    err = error(services, v2({"user_id": 1, "merchant_id": 7}))
    assert (err.code, err.location) == ("missing_field", "request.amount")
    err = error(services, v2({"user_id": 1, "merchant_id": 7, "request": {"amount": 1.0}},
                             {"user_id": 2, "merchant_id": 7}))
    assert (err.status, err.code, err.location) == (422, "missing_field", "entities[1].request")
    assert "no top-level `request`" in err.message and "amount" in err.message
    err = error(services, v2({"user_id": 1, "merchant_id": 7, "request": {"amount": 1.0}}, request={}))
    assert (err.code, err.location) == ("missing_field", "request.amount")  # a top-level object is complete too


def test_inputs_for_a_service_without_any(services):
    err = error(services, v1({"user_id": 1, "request": {"amount": 1.0}}))
    assert (err.status, err.code, err.location) == (422, "unknown_field", "entities[0].request")
    assert "takes no request fields" in err.message


# --------------------------------------------------------------------------- schema == validator

_good_times = st.one_of(st.integers(T - 10**12, T), st.sampled_from(["2026-03-01", "2026-03-01T12:30:00"]),
                        st.none())
_iso_edges = st.sampled_from([
    "2026-03-01T12:00Z", "2026-03-01T12:00:00.5+02:00", "2026-03-01T12:00-23:59", "0001-01-01T00:00+01:00",
    "9999-12-31T23:59:59.999999-01:00", "2028-02-29", "2000-02-29T00:00", "2100-02-29", "2026-02-29", "0000-01-01",
    "2026-03-01+02:00", "2026-03-01T12", "2026-03-01 12:00", "2026-03-01T12:00:00,5", "2026-03-01T24:00",
    "2026-03-01T12:00:00.1234567", "2026-03-01\n", "20260301", "2026-03-01T12:00+24:00", "2026-3-1"])
_times = st.one_of(_good_times, _good_times, _good_times, _iso_edges, st.sampled_from(["soon", "", "2026-02-30"]),
                   st.booleans(), st.lists(st.integers(0, 10**15), max_size=2))
_good_inputs = st.one_of(st.none(), st.fixed_dictionaries({"amount": st.floats(-1e6, 1e6)},
                                                          optional={"channel": st.sampled_from(["web", None])}),
                         st.fixed_dictionaries({"checkout.amount": st.integers(-5, 5)}), st.just({}))
_inputs = st.one_of(
    _good_inputs, _good_inputs, _good_inputs, st.just([]), st.just("x"),
    st.dictionaries(st.sampled_from(["amount", "channel", "checkout.amount", "checkout.channel", "amout"]),
                    st.one_of(st.floats(-1e6, 1e6), st.integers(-5, 5), st.sampled_from(["web", ""]), st.none(),
                              st.booleans()), max_size=3))
_any_keys = st.dictionaries(st.sampled_from(["user_id", "merchant_id", "at", "request", "uid"]),
                            st.one_of(st.integers(-5, 10**6), st.just("7"), st.none()), max_size=3)
KEYS = {("fraud_model", 1): ["user_id"], ("fraud_model", 2): ["user_id", "merchant_id"],
        ("profile_lookup", 1): ["user_id"]}


@st.composite
def bodies(draw):
    """Mostly well-formed bodies of three services, each part sometimes wrong in one of many ways."""
    service = draw(st.sampled_from(sorted(KEYS)))
    ents = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
        well_formed = draw(st.integers(0, 5)) > 0
        e = {k: draw(st.integers(0, 10**6)) for k in KEYS[service]} if well_formed else draw(_any_keys)
        if draw(st.booleans()):
            e["at"] = draw(_times)
        if draw(st.booleans()):
            e["request"] = draw(_inputs)
        ents.append(e)
    body = {"service": service[0], "version": service[1], "entities": ents}
    for field, values in (("at", _times), ("request", _inputs)):
        if draw(st.booleans()):
            body[field] = draw(values)
    if draw(st.booleans()):
        body["features"] = draw(st.sampled_from([None, [], ["country"], ["nope"], "country"]))
    return service, body


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=bodies())
def test_the_schema_accepts_exactly_what_the_validator_accepts(services, case):
    key, body = case
    validator = jsonschema_rs.Draft202012Validator(features_request(services[key], 1000))
    try:
        features_query(body, services, 1000)
        accepted = True
    except ApiError:
        accepted = False
    event(f"accepted: {accepted}")
    assert validator.is_valid(body) == accepted, body


_cells = st.one_of(st.integers(-3, 3), st.floats(-10, 10), st.sampled_from(["cat_01", "", None]), st.booleans())


def _mostly(good):
    return st.one_of(good, good, good, good, _cells)


@st.composite
def push_bodies(draw):
    """Mostly valid `transactions` rows, each cell sometimes wrong, a column sometimes left out or extra."""
    rows = []
    for _ in range(draw(st.integers(0, 2))):
        row = {"user_id": draw(_mostly(st.integers(0, 99))), "merchant_id": draw(_mostly(st.integers(0, 9))),
               "amount": draw(_mostly(st.floats(0, 100))), "category": draw(_mostly(st.just("c"))),
               "ts": draw(st.one_of(st.integers(T - 10**12, T), st.sampled_from(["2026-03-01", "2026-03-01T12:30Z"]),
                                    _times))}
        if draw(st.integers(0, 3)) == 0:
            c = draw(st.sampled_from([*row, "extra"]))
            row.pop(c, None) if c in row else row.update(extra=1)
        rows.append(row)
    return {"source": "transactions", "rows": rows}


@pytest.fixture(scope="module")
def transactions():
    return Project.load(FEATURES).plan.source("transactions")


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=push_bodies())
def test_push_rows_schema_accepts_exactly_what_the_validator_accepts(transactions, body):
    from astra.serve.request_schema import push_request
    from astra.serve.validate import push_body, push_rows

    _, rows = push_body(body, {"transactions": transactions}, 100)
    _, errors, _ = push_rows(transactions, rows)
    event(f"accepted: {not errors}")
    valid = jsonschema_rs.Draft202012Validator(push_request(transactions, 100)).is_valid(body)
    assert valid == (not errors), (body, errors)


# --------------------------------------------------------------------------- live answers


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo):
    proj = tmp_path_factory.mktemp("forms") / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build", "astra.lock"))
    s = launch(proj, tmp_path_factory.mktemp("forms-state") / "state", "--data-root", str(demo),
               "--allowed-lateness", "10d")
    yield s
    s.stop()


def test_own_times_and_inputs_answer_as_each_entity_asked_alone(server):
    status, _, ready = server.client.get("/readyz")
    w = ready["watermark"]["transactions"]
    ents = [{"user_id": u, "merchant_id": 1 + u % 5} for u in range(1, 9)]
    times = [w - k * 3_600_000_000 for k in range(len(ents))]
    amounts = [10.0 * (k + 1) for k in range(len(ents))]
    mixed = [{**e, "at": t, "request": {"amount": a}} if k % 2 else {**e, "at": t}
             for k, (e, t, a) in enumerate(zip(ents, times, amounts))]
    status, _, got = server.client.post("/v1/features", v2(*mixed, request={"amount": 99.0, "channel": "web"}))
    assert status == 200, got
    assert got["at"] == times
    for k, e in enumerate(ents):
        alone = {"amount": amounts[k]} if k % 2 else {"amount": 99.0, "channel": "web"}
        status, _, one = server.client.post("/v1/features", v2(e, at=times[k], request=alone))
        assert status == 200, one
        assert got["results"][k] == one["results"][0], k


def test_own_inputs_of_one_entity_are_cached_apart(server):
    """Queries for now are cached per entity and request values: the same key with two inputs is
    two answers, the first time (computed) and the second (from the cache)."""
    ents = [{"user_id": 10, "merchant_id": 7, "request": {"amount": 5.0, "channel": "web"}},
            {"user_id": 10, "merchant_id": 7, "request": {"amount": 5.0}}]
    for _ in range(2):
        status, _, got = server.client.post("/v1/features", v2(*ents, features=["is_web"]))
        assert status == 200, got
        assert [r["values"] for r in got["results"]] == [[True], [False]]


def test_an_entity_time_before_the_horizon_is_located_in_the_entity(server):
    w = server.client.get("/readyz")[2]["watermark"]["transactions"]
    old = w - 60 * 86_400_000_000  # far before the horizon (10 days of lateness)
    status, _, got = server.client.post("/v1/features", v1({"user_id": 1}, {"user_id": 2, "at": old}, at=w))
    assert status == 409 and got["error"]["code"] == "before_horizon", got
    assert got["error"]["location"] == "entities[1].at"
    status, _, got = server.client.post("/v1/features", v1({"user_id": 1}, {"user_id": 2, "at": w}, at=old))
    assert status == 409 and got["error"]["location"] == "at", got  # entity 0 took the top-level time


@pytest.mark.parametrize("escape", [False, True], ids=["plain", "with-a-\\u-escape"])
@pytest.mark.parametrize("depth", [300, 999])
def test_a_deeply_nested_body_is_a_located_400(services, depth, escape):
    """JSON nested deeper than the server reads is malformed (400), however deep the parser went:
    a request value of hundreds of nested arrays was a 500 (the duplicate-key check re-encodes or
    re-parses the document, and both stop at a depth)."""
    inner = "[" * depth + "]" * depth
    key = '"\\u0061mount"' if escape else '"amount"'
    body = ('{"service": "fraud_model", "version": 2, "entities": [{"user_id": 1, "merchant_id": 2, '
            f'"request": {{{key}: {inner}}}}}]}}').encode()
    with pytest.raises(ApiError) as exc:
        parse_json(body)
    assert (exc.value.status, exc.value.code) == (400, "malformed_json")
    assert "nested" in exc.value.message


def test_a_body_nested_as_deep_as_read_still_finds_repeated_keys():
    """The depth limit leaves the duplicate-key check working just below it."""
    inner = "[" * 200 + "]" * 200
    with pytest.raises(ApiError) as exc:
        parse_json(f'{{"a": {inner}, "v": 1, "v": 2}}'.encode())
    assert exc.value.code == "duplicate_key" and exc.value.location == "v"


def test_the_duplicate_key_check_is_linear_in_the_body():
    """A `\\u003a` escape sends a body through the exact duplicate-key parse, which walked the document
    with list.pop(0): a 3.5 MB push (10,000 rows of 20 lists) took minutes of a worker.  Run in a
    subprocess with a bound far above a linear walk (about a second here) and far below minutes."""
    import subprocess
    import sys

    code = ("import json; from astra.serve.validate import parse_json; "
            "rows = [{f'c{i}': [1, 2, 3] for i in range(20)} for _ in range(10_000)]; "
            "body = json.dumps({'source': 'HERE', 'rows': rows}).encode().replace(b'HERE', b'a\\\\u003ab'); "
            "parse_json(body); print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@pytest.mark.parametrize("hidden", [b"\\u003a", b"\\u003A"])
def test_a_colon_written_as_an_escape_does_not_hide_a_repeated_key(hidden):
    """Repeated keys are found by counting `:` (the re-encoding drops a repeated key's): a colon
    written `\\u003a` adds one to the re-encoding, which would even the count."""
    body = b'{"service": "a' + hidden + b'b", "version": 1, "version": 2}'
    with pytest.raises(ApiError) as exc:
        parse_json(body)
    assert (exc.value.code, exc.value.location) == ("duplicate_key", "version")
    assert parse_json(b'{"service": "\\u00e9", "version": 1}') == {"service": "\u00e9", "version": 1}
