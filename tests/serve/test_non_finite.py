"""Non-finite floats (docs/semantics.md, "IEEE special values"; docs/serving.md, "Values"): both
engines compute IEEE infinities and NaN, and the JSON answers carry them in float-typed fields as
the strings "Infinity", "-Infinity" and "NaN" (the protobuf JSON mapping), never as null."""

from __future__ import annotations

import math
import time

import orjson
import polars as pl
from engine_clock import SECOND, FrozenClock, T, engine, features, push, stop, tx
from serve_harness import FEATURES

BIG = 1.7e308  # three of them sum past the largest double (1.797e308)


def _outputs(body: dict, j: int = 0) -> dict:
    return dict(zip([f["name"] for f in body["features"]], body["results"][j]["values"]))


def test_overflow_is_infinity_in_json(tmp_path, monkeypatch):
    eng = engine(tmp_path, monkeypatch, FrozenClock(T))
    try:
        push(eng, *(tx(1, T - k * SECOND, BIG) for k in range(1, 4)), *(tx(2, T - k * SECOND, -BIG)
                                                                      for k in range(1, 4)))
        at = T - SECOND + 1
        for users in ([1, 2, 3], list(range(1, 21))):  # the single-entity plan and the vectorised one
            for query in ({"at": at}, {}):  # an explicit time; "now" (cached after the first)
                body = features(eng, users, **query)
                one, two, unknown = _outputs(body, 0), _outputs(body, 1), _outputs(body, 2)
                assert one["tx_sum_1h"] == "Infinity" and one["tx_sum_30d"] == "Infinity"
                assert one["tx_mean_1h"] == BIG and one["tx_max_1h"] == BIG  # the mean of finite values
                assert one["spend_ratio_1d_30d"] == "NaN"  # inf / inf (IEEE; the divisor is not 0)
                assert two["tx_sum_1h"] == "-Infinity" and two["tx_max_1h"] == -BIG
                assert unknown["tx_sum_1h"] == 0.0 and unknown["tx_mean_1h"] is None  # null stays null
        sub = features(eng, [1], at=at, features=["spend_ratio_1d_30d", "tx_sum_1d", "tx_count_1h"])
        assert sub["results"][0]["values"] == ["NaN", "Infinity", 3]
        now = features(eng, [1, 2], features=["tx_sum_30d"])  # "now": the rows are 0.4 s+ before it
        assert [r["values"] for r in now["results"]] == [["Infinity"], ["-Infinity"]]
        again = features(eng, [1, 2], features=["tx_sum_30d"])
        assert again == now and eng.cache.hits >= 2  # a cached answer is encoded the same way
    finally:
        stop(eng)


def test_http_answer_carries_the_strings(servers, tmp_path):
    s = servers(FEATURES, tmp_path / "state")
    now = time.time_ns() // 1000
    rows = [tx(7, now - 60 * SECOND + k, BIG) for k in range(3)]
    status, _, ack = s.client.post("/v1/push", {"source": "transactions", "rows": rows})
    assert status == 200 and ack["accepted"] == 3, ack
    status, _, body = s.client.post("/v1/features", {"service": "fraud_model", "version": 1,
                                                     "entities": [{"user_id": 7}], "at": now - 60 * SECOND + 3,
                                                     "features": ["tx_sum_1h", "tx_mean_1h", "tx_count_1h"]})
    assert status == 200, body
    assert body["features"][0]["type"] == "float64"
    assert body["results"][0]["values"] == ["Infinity", BIG, 3]


def test_both_engines_give_infinity_and_parity_agrees(tmp_path):
    from astra import demo_data
    from astra.offline import backfill
    from astra.online import Store
    from astra.parity import run_parity
    from astra.project import Project

    data = tmp_path / "data"
    demo_data.generate(data, events=400, users=20, labels=40, seed=3)
    tx_df = pl.read_parquet(data / "transactions.parquet")
    last = tx_df["ts"].max()
    extra = pl.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "merchant_id": [1] * 6,
                          "amount": [BIG] * 3 + [-BIG] * 3, "category": ["cat_01"] * 6,
                          "ts": [last] * 6}).cast(tx_df.schema)
    pl.concat([tx_df, extra]).write_parquet(data / "transactions.parquet")
    at = pl.Series([last]).dt.offset_by("1s")[0]
    spine = pl.DataFrame({"user_id": [1, 2, 3], "ts": [at] * 3}).cast({"ts": tx_df["ts"].dtype})
    plan = Project.load(FEATURES).plan
    offline = backfill(plan, "fraud_model", 1, spine, data).select("tx_sum_1h", "spend_ratio_1d_30d").rows()
    assert offline[0][0] == math.inf and math.isnan(offline[0][1]) and offline[1][0] == -math.inf
    store = Store(plan)
    store.materialize(data)
    at_us = spine["ts"].dt.epoch("us")[0]
    online = [(r["tx_sum_1h"], r["spend_ratio_1d_30d"]) for r in
              store.get("fraud_model@v1", [{"user_id": u} for u in (1, 2, 3)], at=at_us).rows()]
    assert online[0][0] == math.inf and math.isnan(online[0][1]) and online[1][0] == -math.inf
    report = run_parity(plan, "fraud_model", 1, spine, data)
    assert report.ok, report.to_dict()
    rows = {f.name: f.rows for f in report.features}
    assert rows["tx_sum_1h"] == 3


def test_openapi_documents_the_float_strings():
    from astra.serve import openapi

    doc = openapi.document()
    schemas = doc["components"]["schemas"]
    assert schemas["FloatValue"]["oneOf"][1] == {"type": "string", "enum": ["Infinity", "-Infinity", "NaN"]}
    values = schemas["FeaturesResponse"]["properties"]["results"]["items"]["properties"]["values"]
    assert "Infinity" in values["description"]
    assert orjson.loads(openapi.dumps()) == doc
