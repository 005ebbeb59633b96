"""Hostile requests: `astra.Online` and `astra.Client` raise the same `ClientError` subclass with the
same code, message, location and details (what exists, the horizon, ...), the ones docs/serving.md
documents for the HTTP API."""

from __future__ import annotations

import datetime as dt

import pytest

import astra
from astra.clients import (
    BeforeHorizonError,
    InvalidRequestError,
    NotFoundError,
    RejectedRowsError,
)

AT = dt.datetime(2026, 3, 2)
ONE = [{"user_id": 10}]

CASES = {  # name: (get arguments, class, code, location)
    "unknown service": (("fraud_modle@v1", ONE), {}, NotFoundError, "unknown_service", "service"),
    "unknown version": (("fraud_model@v7", ONE), {}, NotFoundError, "unknown_version", "version"),
    "version as keyword, unknown": (("fraud_model", ONE), {"version": 9}, NotFoundError, "unknown_version", "version"),
    "no version": (("fraud_model", ONE), {}, InvalidRequestError, "missing_field", "version"),
    "not a reference": (("fraud model!", ONE), {"version": 1}, NotFoundError, "unknown_service", "service"),
    "mistyped key": (("fraud_model@v1", [{"user_id": "ten"}]), {}, InvalidRequestError, "invalid_type",
                     "entities[0].user_id"),
    "fractional key": (("fraud_model@v1", [{"user_id": 1}, {"user_id": 1.5}]), {}, InvalidRequestError,
                       "invalid_type", "entities[1].user_id"),
    "key out of range": (("fraud_model@v1", [{"user_id": 2**63}]), {}, InvalidRequestError, "invalid_value",
                         "entities[0].user_id"),
    # JSON parsers read an integer beyond 64 bits as a float: a number, not an int64
    "key beyond 64 bits": (("fraud_model@v1", [{"user_id": 2**70}]), {}, InvalidRequestError, "invalid_type",
                           "entities[0].user_id"),
    "unknown key": (("fraud_model@v1", [{"user": 10}]), {}, InvalidRequestError, "unknown_key", "entities[0].user"),
    "missing key": (("fraud_model@v2", [{"user_id": 10}]), {"request": {"amount": 1.0}}, InvalidRequestError,
                    "missing_key", "entities[0].merchant_id"),
    "no entities": (("fraud_model@v1", []), {}, InvalidRequestError, "invalid_value", "entities"),
    "unknown feature": (("fraud_model@v1", ONE), {"features": ["tx_count_8d"]}, InvalidRequestError,
                        "unknown_feature", "features[0]"),
    # the server answers it twice, but a frame has one column per name: refused before sending
    "feature asked twice": (("fraud_model@v1", ONE), {"features": ["country", "tx_count_7d", "country"]},
                            InvalidRequestError, "invalid_value", "features[2]"),
    "request missing": (("fraud_model@v2", [{"user_id": 10, "merchant_id": 7}]), {}, InvalidRequestError,
                        "missing_field", "request.amount"),
    "request mistyped": (("fraud_model@v2", [{"user_id": 10, "merchant_id": 7}]), {"request": {"amount": "big"}},
                         InvalidRequestError, "invalid_type", "request.amount"),
    "request not taken": (("fraud_model@v1", ONE), {"request": {"amount": 1.0}}, InvalidRequestError,
                          "unknown_field", "request"),
    "before the horizon": (("fraud_model@v1", ONE), {"at": dt.datetime(2025, 1, 1)}, BeforeHorizonError,
                           "before_horizon", "at"),
    "times for other entities": (("fraud_model@v1", ONE), {"at": [AT, AT]}, InvalidRequestError, "invalid_value",
                                 "at"),
}


def caught(call) -> astra.ClientError:
    with pytest.raises(astra.ClientError) as info:
        call()
    return info.value


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_typed_error_from_both(online, client, case):
    args, kw, cls, code, location = CASES[case]
    kw = {"at": AT, **kw}
    a, b = caught(lambda: online.get(*args, **kw)), caught(lambda: client.get(*args, **kw))
    assert type(a) is cls and type(b) is cls, (a, b)
    assert (a.code, a.location) == (code, location), a
    assert isinstance(b.status, int) and 400 <= b.status < 500
    if code == "before_horizon":  # the server keeps a margin of its own (--max-future, --cache-ttl) past its windows
        for err in (a, b):
            assert err.horizon > 1735689600000000 and f"horizon {err.horizon}:" in err.message
        return
    assert (a.code, a.message, a.status, a.location, a.details) == (b.code, b.message, b.status, b.location, b.details)


def test_details_say_what_exists(online, client):
    err = caught(lambda: client.get("fraud_model@v7", ONE, at=AT))
    assert err.details["available"] == [1, 2] and "v1, v2" in err.message
    err = caught(lambda: client.get("fraud_modle@v1", ONE, at=AT))
    assert "fraud_model" in err.details["available"] and "did you mean `fraud_model`" in err.message
    err = caught(lambda: online.get("fraud_model@v1", ONE, at=dt.datetime(2025, 1, 1)))
    assert isinstance(err, BeforeHorizonError) and err.horizon == err.details["horizon"] > 0
    # the earliest time answered is the horizon: there both answer
    remote = caught(lambda: client.get("fraud_model@v1", ONE, at=dt.datetime(2025, 1, 1))).horizon
    t = max(remote, err.horizon)
    assert online.get("fraud_model@v1", ONE, at=t).equals(client.get("fraud_model@v1", ONE, at=t))
    # str() is one line: the code, then the server's message
    assert str(err).startswith("before_horizon: query time ") and "\n" not in str(err)


def test_python_side_mistakes_are_python_errors(online, client):
    for impl in (online, client):
        with pytest.raises(ValueError, match="at: 'yesterday' is not an ISO 8601"):
            impl.get("fraud_model@v1", ONE, at="yesterday")
        with pytest.raises(TypeError, match="entities: expected a list of dicts or a Polars or pandas DataFrame"):
            impl.get("fraud_model@v1", 10, at=AT)
        with pytest.raises(TypeError, match=r"entities\[1\]: expected a dict"):
            impl.get("fraud_model@v1", [{"user_id": 1}, 2], at=AT)
        with pytest.raises(TypeError, match="features: expected a feature name or a list of them, got int"):
            impl.get("fraud_model@v1", ONE, at=AT, features=7)


def test_bad_pushes_are_refused_alike_and_store_nothing(online, client):
    rows = [{"user_id": 10, "merchant_id": 7, "amount": 1.0, "category": "c", "ts": "2026-03-02T00:00:00"},
            {"user_id": 10, "merchant_id": 7, "amount": "x", "category": "c"},
            {"user_id": None, "merchant_id": None, "amount": 1.0, "category": "c", "ts": 1, "colour": "red"}]
    a, b = caught(lambda: online.push("transactions", rows)), caught(lambda: client.push("transactions", rows))
    assert type(a) is RejectedRowsError and type(b) is RejectedRowsError
    assert (a.code, a.message, a.location, a.errors) == (b.code, b.message, b.location, b.errors)
    assert {(e["index"], e["location"]) for e in a.errors} >= {(1, "rows[1].amount"), (1, "rows[1].ts"),
                                                              (2, "rows[2].colour"), (2, "rows[2]")}
    assert a.details["rejected"] == 2 and "nothing was stored" in a.message
    before = client.get("fraud_model@v1", ONE, at=AT)
    assert before.equals(online.get("fraud_model@v1", ONE, at=AT))
    a, b = caught(lambda: online.push("transaction", rows[:1])), caught(lambda: client.push("transaction", rows[:1]))
    assert type(a) is NotFoundError and (a.code, a.message, a.details) == (b.code, b.message, b.details)
    assert "did you mean `transactions`" in a.message
