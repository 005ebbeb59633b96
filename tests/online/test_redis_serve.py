"""`astra serve --store redis://...`: replicas on one Redis share pushes; a lost Redis is a 503.

Two engines (what two `astra serve` processes run) on one real redis-server: a push through one
is in the other's next answer; with Redis gone, answers and pushes are 503s with a JSON error,
and readiness says why.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis_fixture import RedisServer, redis_or_skip

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000_000


def _engine(url: str):
    from astra.project import Project
    from astra.serve.config import ServeConfig
    from astra.serve.engine import Engine

    config = ServeConfig(project=str(ROOT / "features"), store=url, max_future=10**18)
    return Engine(Project.load(ROOT / "features").plan, config, log=lambda *a: None)


def _row(user: int, ts: int) -> dict:
    return {"user_id": user, "merchant_id": 3, "amount": 10.0, "category": "food", "ts": ts}


def _ask(engine, user: int, at: int) -> dict:
    body, _ = engine.features({"service": "fraud_model", "version": 1, "entities": [{"user_id": user}], "at": at})
    return orjson.loads(body)


def test_two_servers_share_one_redis(tmp_path) -> None:
    from astra.serve.validate import ApiError

    redis_or_skip()
    server = RedisServer(tmp_path)
    server.start()
    try:
        a, b = _engine(server.url), _engine(server.url)
        assert _ask(b, 5, T0 + 1)["results"][0]["missing"]  # nothing yet: every output missing
        ack = a.push({"source": "transactions", "rows": [_row(5, T0)]})
        assert ack["accepted"] == 1 and ack["watermark"] == T0
        got = _ask(b, 5, T0 + 1)
        assert got["watermark"]["transactions"] == T0
        values = dict(zip([f["name"] for f in got["features"]], got["results"][0]["values"]))
        assert values["tx_count_1h"] == 1 and values["tx_sum_1h"] == 10.0
        assert _ask(a, 5, T0 + 1)["results"] == got["results"]
        b.push({"source": "transactions", "rows": [_row(5, T0 + 10)]})
        values = dict(zip([f["name"] for f in got["features"]], _ask(a, 5, T0 + 11)["results"][0]["values"]))
        assert values["tx_count_1h"] == 2
        server.stop()
        with pytest.raises(ApiError) as err:
            _ask(a, 5, T0 + 11)
        assert err.value.status == 503 and err.value.code == "store_unavailable"
        with pytest.raises(ApiError) as err:
            a.push({"source": "transactions", "rows": [_row(5, T0 + 20)]})
        assert err.value.status == 503
        assert "unavailable" in (a.not_ready() or "")
        assert a.failed is None  # not a broken store: once Redis is back, it serves again
    finally:
        server.stop()


def test_two_serve_processes_share_pushes(tmp_path) -> None:
    """`astra serve --store redis://...` twice, as separate processes on their own ports: a push
    through A's HTTP API is in B's next answer, and B's push in A's (no cache, no local copy)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
    from serve_harness import launch

    redis_or_skip()
    server = RedisServer(tmp_path)
    server.start()
    started = []
    try:
        for name in ("a", "b"):
            started.append(launch(ROOT / "features", tmp_path / f"state_{name}", "--store", server.url))
        a, b = (s.client for s in started)

        def ask(client, at: int) -> dict:
            status, _, doc = client.post("/v1/features", {"service": "fraud_model", "version": 1,
                                                           "entities": [{"user_id": 41}], "at": at})
            assert status == 200, doc
            return dict(zip([f["name"] for f in doc["features"]], doc["results"][0]["values"]))

        assert ask(b, T0 + 1)["tx_count_1h"] in (0, None)
        status, _, ack = a.post("/v1/push", {"source": "transactions", "rows": [_row(41, T0)]})
        assert status == 200 and ack["accepted"] == 1, ack
        got = ask(b, T0 + 1)
        assert got["tx_count_1h"] == 1 and got["tx_sum_1h"] == 10.0
        status, _, ack = b.post("/v1/push", {"source": "transactions", "rows": [_row(41, T0 + 5)]})
        assert status == 200, ack
        assert ask(a, T0 + 6)["tx_count_1h"] == 2
        assert ask(a, T0 + 6) == ask(b, T0 + 6)
    finally:
        for s in started:
            s.stop()
        server.stop()
