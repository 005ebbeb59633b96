"""The REST API against a real `astra serve` process: versions, validation, auth, limits, metadata."""

from __future__ import annotations

import json

from serve_harness import Client


def test_health_and_openapi_of_the_project(api):
    from astra.project import Project
    from astra.serve import openapi

    c = Client(api.port)  # no token: probes and the document are open
    assert c.get("/healthz")[0] == 200
    status, _, ready = c.get("/readyz")
    assert status == 200 and ready["status"] == "ready"
    status, _, doc = c.get("/openapi.json")
    assert status == 200  # the served project's document (test_fuzz checks the committed one)
    assert doc == json.loads(openapi.dumps(Project.load(api.project).plan, max_batch=50))
    assert "Features_legacy_profile_v1" in doc["components"]["schemas"]


def test_auth_required(api):
    c = Client(api.port)
    status, headers, body = c.post("/v1/features", {"service": "fraud_model", "version": 1,
                                                    "entities": [{"user_id": 1}]})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert headers["www-authenticate"].startswith("Bearer")
    assert Client(api.port, token="wrong").get("/metrics")[0] == 401
    assert api.client.get("/metrics")[0] == 200


def test_features_shape(api):
    status, headers, body = api.client.post("/v1/features", {"service": "fraud_model", "version": 1,
                                                             "entities": [{"user_id": 1}, {"user_id": 10**9}],
                                                             "at": "2026-03-02T00:30:00"})
    assert status == 200, body
    assert headers["x-request-id"]
    names = [f["name"] for f in body["features"]]
    assert names[:2] == ["tx_count_1h", "tx_sum_1h"] and len(names) == 22
    assert body["features"][2]["type"] == "float64?"
    assert len(body["fingerprint"]) == 16 and set(body["watermark"]) == {"transactions", "profiles", "products"}
    assert [len(r["values"]) for r in body["results"]] == [22, 22]
    unknown = body["results"][1]
    assert set(unknown["missing"]) == set(names) and unknown["values"][0] == 0  # count default 0
    # the demo data ends long before this `at`: transactions declares max_staleness 1h
    status, _, late = api.client.post("/v1/features", {"service": "fraud_model", "version": 1,
                                                       "entities": [{"user_id": 1}], "at": "2027-01-01T00:00:00"})
    assert "tx_count_1h" in late["results"][0]["stale"] and "country" not in late["results"][0]["stale"]
    status, _, sub = api.client.post("/v1/features", {"service": "fraud_model", "version": 1,
                                                      "entities": [{"user_id": 1}], "features": ["country", "tier"],
                                                      "at": "2026-03-02T00:30:00"})
    assert [f["name"] for f in sub["features"]] == ["country", "tier"]
    assert sub["results"][0]["values"] == body["results"][0]["values"][18:20]


def test_versions_enforced(api):
    c = api.client
    status, _, body = c.post("/v1/features", {"service": "fraud_model", "version": 7, "entities": [{"user_id": 1}]})
    assert status == 404 and body["error"]["available"] == [1, 2] and "v1, v2" in body["error"]["message"]
    status, _, body = c.post("/v1/features", {"service": "nope", "version": 1, "entities": [{"user_id": 1}]})
    assert status == 404 and "fraud_model" in body["error"]["available"]
    status, _, body = c.post("/v1/features", {"service": "fraud_model", "version": 1,
                                              "entities": [{"user_id": 1}], "features": ["bogus"]})
    assert status == 422 and body["error"]["location"] == "features[0]" and "tx_count_1h" in body["error"]["available"]
    status, _, body = c.post("/v1/features", {"service": "fraud_model", "version": 1,
                                              "entities": [{"user_id": 1}, {"userid": 1}]})
    assert status == 422 and body["error"]["location"] == "entities[1].userid" and body["error"]["keys"] == ["user_id"]


def test_deprecated_version_warns(api):
    status, headers, body = api.client.post("/v1/features", {"service": "legacy_profile", "version": 1,
                                                             "entities": [{"user_id": 1}]})
    assert status == 200
    assert headers["deprecation"] == "true" and "user_profile@v2" in headers["warning"]
    assert "user_profile@v2" in body["deprecated"]
    metrics = api.client.get("/metrics")[2]
    assert 'astra_deprecated_requests_total{service="legacy_profile@v1"}' in metrics


def test_validation_is_located(api):
    c = api.client
    cases = [
        ({"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}] * 3 + [{"user_id": "7"}]},
         422, "entities[3].user_id: expected int64, got string"),
        ({"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}], "extra": 1}, 422, "extra: unknown"),
        ({"service": "fraud_model", "version": "1", "entities": [{"user_id": 1}]}, 422, "version: expected integer"),
        ({"service": "fraud_model", "version": 1, "entities": []}, 422, "at least one"),
        ({"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}] * 51}, 422, "limit is 50"),
        ({"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}], "at": "yesterday"}, 422, "ISO 8601"),
        ({"service": "fraud_model", "version": 1, "entities": [{"user_id": 2**63}]}, 422, "out of range"),
        ({"service": "fraud_model", "version": 2, "entities": [{"user_id": 1, "merchant_id": 2}],
          "request": {"amount": "x"}}, 422, "request.amount: expected float64, got string"),
        ({"service": "fraud_model", "version": 2, "entities": [{"user_id": 1, "merchant_id": 2}]}, 422,
         "request.amount: required"),
        ([1, 2], 422, "body: expected object"),
    ]
    for body, want_status, fragment in cases:
        status, _, got = c.post("/v1/features", body)
        assert status == want_status and fragment in got["error"]["message"], (body, got)
    status, _, got = c.request("POST", "/v1/features", raw=b'{"service": "fraud_model", ')
    assert status == 400 and got["error"]["code"] == "malformed_json"
    status, _, got = c.request("POST", "/v1/features", raw=b"x" * 70_000)
    assert status == 413 and got["error"]["code"] == "body_too_large"
    assert c.get("/v1/features")[0] == 405
    assert c.get("/v2/nothing")[0] == 404


def test_push_validation_and_late_rows(api):
    c = api.client
    status, _, body = c.post("/v1/push", {"source": "nope", "rows": []})
    assert status == 404 and body["error"]["available"] == ["products", "profiles", "transactions"]
    good = {"user_id": 3, "merchant_id": 4, "amount": 1.0, "category": "cat_01", "ts": "2026-03-05T00:00:00"}
    status, _, body = c.post("/v1/push", {"source": "transactions", "rows": [
        good, {**good, "user_id": "3"}, {**good, "colour": 1}, {"user_id": 3}]})
    assert status == 422 and body["error"]["rejected"] == 3
    locations = [e["location"] for e in body["error"]["errors"]]
    # key columns may be left out (the row counts for `user` alone); the time and `category` may not
    assert locations == ["rows[1].user_id", "rows[2].colour", "rows[3].category", "rows[3].ts"]
    status, _, ack = c.post("/v1/push", {"source": "transactions", "rows": [good]})
    assert status == 200 and ack["accepted"] == 1 and ack["durable"] is True
    status, _, ack = c.post("/v1/push", {"source": "transactions", "rows": [{**good, "ts": "2026-01-01T00:00:00"}]})
    assert status == 200 and ack["accepted"] == 0 and ack["rejected"][0]["reason"] == "late"


def test_push_null_keys_as_store_push(api):
    """docs/semantics.md, "Nulls in source data": a null key hides the row from that entity alone;
    a row with a null in every entity's key is rejected, naming the row, and nothing is stored."""
    c = api.client
    at = "2026-03-05T00:00:01"
    user = 10**9 + 77
    row = {"user_id": user, "merchant_id": None, "amount": 5.0, "category": "cat_01", "ts": "2026-03-05T00:00:00"}
    omitted = {k: v for k, v in row.items() if k != "merchant_id"}
    status, _, ack = c.post("/v1/push", {"source": "transactions", "rows": [row, omitted]})
    assert status == 200 and ack["accepted"] == 2, ack
    status, _, got = c.post("/v1/features", {"service": "fraud_model", "version": 1, "entities": [{"user_id": user}],
                                            "at": at, "features": ["tx_count_1h"]})
    assert status == 200 and got["results"][0]["values"] == [2], got
    nobody = {**row, "user_id": None}
    status, _, body = c.post("/v1/push", {"source": "transactions", "rows": [row, nobody, {"amount": 1.0}]})
    assert status == 422 and body["error"]["rejected"] == 2, body
    errors = body["error"]["errors"]
    assert [e["location"] for e in errors if e["index"] == 1] == ["rows[1]"]
    assert "every entity" in errors[0]["message"] and "user: user_id" in errors[0]["message"]
    assert {e["location"] for e in errors if e["index"] == 2} == {"rows[2]", "rows[2].category", "rows[2].ts"}
    status, _, got = c.post("/v1/features", {"service": "fraud_model", "version": 1, "entities": [{"user_id": user}],
                                            "at": at, "features": ["tx_count_1h"]})
    assert got["results"][0]["values"] == [2], "nothing of the rejected batch is stored"


def test_registry(api):
    status, _, reg = api.client.get("/v1/registry")
    assert status == 200
    assert reg["versions"]["services"]["fraud_model"] == [1, 2]
    svc = next(s for s in reg["services"] if s["name"] == "fraud_model" and s["version"] == 1)
    assert svc["owner"] == "risk@example.com" and svc["keys"] == [{"name": "user_id", "type": "int64"}]
    assert len(svc["features"]) == 22 and svc["fingerprint"]
    grp = next(g for g in reg["groups"] if g["name"] == "user_profile" and g["version"] == 2)
    assert grp["deprecated"] and grp["data_fingerprint"]
    src = next(s for s in reg["sources"] if s["name"] == "transactions")
    assert src["max_staleness_us"] == 3600 * 10**6


def _sample(text: str, series: str) -> float:
    """The value of one exposition line (`name{labels}` exactly as Prometheus prints it); 0 if absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics(api):
    series = {
        "requests": 'astra_http_requests_total{endpoint="features",status="200"}',
        "latency": 'astra_http_request_duration_seconds_count{endpoint="features",service="fraud_model@v1"}',
        "missing": 'astra_feature_missing_total{feature="tx_count_1h",service="fraud_model@v1"}',
        "stale": 'astra_feature_stale_total{feature="tx_count_1h",service="fraud_model@v1"}',
        "stale_country": 'astra_feature_stale_total{feature="country",service="fraud_model@v1"}',
        "pushed": 'astra_rows_pushed_total{source="transactions"}',
        "hits": "astra_cache_hits_total", "misses": "astra_cache_misses_total",
    }
    before = api.client.get("/metrics")[2]
    unknown = [{"user_id": 10**9}, {"user_id": 10**9 + 1}]
    assert api.client.post("/v1/features", {"service": "fraud_model", "version": 1, "entities": unknown})[0] == 200
    # max_staleness 1h: the demo data ends long before now and this `at`: all 3 entities are stale
    assert api.client.post("/v1/features", {"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}],
                                            "at": "2027-01-01T00:00:00"})[0] == 200
    row = {"user_id": 10**9 + 2, "merchant_id": 4, "amount": 1.0, "category": "cat_01", "ts": "2026-03-05T00:00:00"}
    assert api.client.post("/v1/push", {"source": "transactions", "rows": [row, row]})[2]["accepted"] == 2
    late = {**row, "ts": "2000-01-01T00:00:00"}
    assert api.client.post("/v1/push", {"source": "transactions", "rows": [late]})[2]["accepted"] == 0
    after = api.client.get("/metrics")[2]
    delta = {k: _sample(after, s) - _sample(before, s) for k, s in series.items()}
    hits, misses = delta.pop("hits"), delta.pop("misses")
    assert delta == {"requests": 2, "latency": 2, "missing": 2, "stale": 3, "stale_country": 0, "pushed": 2}, delta
    assert hits + misses == 2  # the two `now` lookups (a query with `at` bypasses the cache)
    rejected = [line for line in after.splitlines()
                if line.startswith("astra_rows_rejected_total{") and 'source="transactions"' in line]
    assert sum(_sample(after, r.rsplit(" ", 1)[0]) - _sample(before, r.rsplit(" ", 1)[0]) for r in rejected) == 1
    for name in ("astra_plan_evaluation_seconds_count", "astra_cache_evictions_total", "astra_store_bytes",
                 'astra_source_watermark_us{source="transactions"}'):
        assert name in after, name


def test_concurrent_requests_coalesce_correctly(api):
    """Misses of concurrent requests share one Store.get; each still gets exactly its own answer."""
    from concurrent.futures import ThreadPoolExecutor

    queries = [{"service": "fraud_model", "version": v, "entities": [{"user_id": u, "merchant_id": u % 9}
                                                                     for u in range(i, i + 1 + i % 3)],
                "at": f"2026-03-02T0{i % 3}:30:00", **({"request": {"amount": float(i)}} if v == 2 else {})}
               for i in range(24) for v in (1, 2)]
    for q in queries:
        if q["version"] == 1:
            q["entities"] = [{"user_id": e["user_id"]} for e in q["entities"]]
    alone = [api.client.post("/v1/features", q)[2] for q in queries]

    def ask(q):
        c = Client(api.port, token=api.token)
        try:
            return c.post("/v1/features", q)[2]
        finally:
            c.close()

    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(ask, queries))
    assert together == alone
    assert "astra_plan_batches_total" in api.client.get("/metrics")[2]
