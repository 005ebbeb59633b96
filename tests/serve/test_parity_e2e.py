"""Values served over HTTP after pushing the events through `/v1/push` equal `astra backfill`."""

from __future__ import annotations

import math

import polars as pl
from serve_harness import FEATURES

from astra.offline import backfill
from astra.project import Project

DAY = 86400 * 10**6


def _rows(df: pl.DataFrame, time_col: str) -> list[dict]:
    df = df.with_columns(pl.col(time_col).dt.epoch("us"))
    return df.to_dicts()


def push_all(client, source: str, df: pl.DataFrame, time_col: str, batch: int = 500) -> None:
    rows = _rows(df.sort(time_col, maintain_order=True), time_col)  # stable: ties keep file order
    for i in range(0, len(rows), batch):
        status, _, ack = client.post("/v1/push", {"source": source, "rows": rows[i:i + batch]})
        assert status == 200 and ack["accepted"] == len(rows[i:i + batch]), ack


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    return a == b


def test_served_equals_backfill(servers, demo, tmp_path):
    s = servers(FEATURES, tmp_path / "state", "--allowed-lateness", str(400 * DAY), "--cache-size", "0")
    push_all(s.client, "transactions", pl.read_parquet(demo / "transactions.parquet"), "ts")
    push_all(s.client, "profiles", pl.read_parquet(demo / "profiles.parquet"), "updated_at")

    spine = pl.read_parquet(demo / "spine.parquet").select("user_id", "ts").head(120)
    plan = Project.load(FEATURES).plan
    expected = backfill(plan, "fraud_model", 1, spine, demo)
    names = [o.name for o in plan.service("fraud_model", 1).outputs]
    at = spine["ts"].dt.epoch("us").to_list()
    users = spine["user_id"].to_list()
    got = []
    for i in range(0, len(users), 40):  # batches, with one query time per entity
        status, _, body = s.client.post("/v1/features", {"service": "fraud_model", "version": 1,
                                                         "entities": [{"user_id": u, "at": t} for u, t
                                                                      in zip(users[i:i + 40], at[i:i + 40])]})
        assert status == 200, body
        assert [f["name"] for f in body["features"]] == names
        got.extend(r["values"] for r in body["results"])
    want = expected.select(names).rows()
    bad = [(j, n, g, w) for j, (gr, wr) in enumerate(zip(got, want)) for n, g, w in zip(names, gr, wr)
           if not same(g, w)]
    assert not bad, bad[:10]
