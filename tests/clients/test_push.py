"""Pushes through both clients: the same rows give the same acknowledgement and the same answers
afterwards, whether they come as dicts (ISO strings, datetimes, µs) or as Polars/pandas frames;
rows too late for the allowed lateness are listed, not stored (docs/serving.md, `POST /v1/push`)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
from polars.testing import assert_frame_equal

import astra

T = dt.datetime(2026, 3, 2, 1)  # after the demo's newest event
USER = 10


def both_push(online, client, source, rows):
    a, b = online.push(source, rows), client.push(source, rows)
    assert (a.source, a.accepted, a.watermark) == (b.source, b.accepted, b.watermark)
    fields = ("index", "reason", "time", "bound")
    assert [[r[k] for k in fields] for r in a.rejected] == [[r[k] for k in fields] for r in b.rejected]
    assert a.durable is False and b.durable is True  # the server's default --fsync always
    return b


def features(online, client, at):
    a = online.get("fraud_model@v1", [{"user_id": USER}, {"user_id": 11}], at=at)
    assert_frame_equal(a, client.get("fraud_model@v1", [{"user_id": USER}, {"user_id": 11}], at=at))
    return a


def micros(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def tx(minutes: int, amount: float, **kw) -> dict:
    return {"user_id": USER, "merchant_id": 7, "amount": amount, "category": "cat_01",
            "ts": T + dt.timedelta(minutes=minutes), **kw}


def test_pushed_rows_count_in_both_alike(online, client):
    at = T + dt.timedelta(hours=1)
    before = features(online, client, at)
    rows = [tx(0, 10.0), {**tx(1, 20.0), "ts": (T + dt.timedelta(minutes=1)).isoformat()},
            {**tx(2, 30.0), "ts": micros(T + dt.timedelta(minutes=2))}]
    ack = both_push(online, client, "transactions", rows)
    assert ack.accepted == 3 and ack.rejected == () and ack.source == "transactions"
    assert ack.watermark == micros(T + dt.timedelta(minutes=2))
    after = features(online, client, at)
    assert after["tx_count_1h"][0] == before["tx_count_1h"][0] + 3 and after["tx_sum_1h"][0] == 60.0
    assert after.row(1) == before.row(1)  # another user is untouched


def test_frames_push_like_dicts(online, client):
    rows = [tx(10, 1.5), tx(11, 2.5, category="cat_02")]
    frame = pl.DataFrame(rows)
    assert frame.schema["ts"] == pl.Datetime("us")
    ack = both_push(online, client, "transactions", frame)
    assert ack.accepted == 2
    zoned = pd.DataFrame([tx(12, 3.5)])
    zoned["ts"] = zoned["ts"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")  # the same instant, elsewhere
    ack = both_push(online, client, "transactions", zoned)
    assert ack.watermark == micros(T + dt.timedelta(minutes=12))
    got = features(online, client, T + dt.timedelta(minutes=30))
    assert got["last_category"][0] == "cat_01" and got["tx_max_1h"][0] == 30.0


def test_late_rows_are_listed_not_stored(online, client):
    old = T - dt.timedelta(days=30)  # far beyond the 10 days of allowed lateness
    ack = both_push(online, client, "transactions", [tx(20, 5.0), {**tx(0, 99.0), "ts": old}])
    assert ack.accepted == 1 and [r["index"] for r in ack.rejected] == [1]
    assert ack.rejected[0]["reason"] == "late" and "rows[1]" in ack.rejected[0]["message"]
    features(online, client, T + dt.timedelta(hours=1))


def test_online_takes_rows_from_the_future_the_server_refuses(project, demo, client):
    # docs/python.md: Online applies no --max-future, so dated data can be replayed at any time
    online = astra.Online(project, data_root=demo)  # its own: the row moves the watermark a year on
    ahead = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) + dt.timedelta(days=365)
    row = tx(0, 5.0, ts=ahead)
    refused = client.push("transactions", [row])  # the server lists it, as it lists late rows
    assert refused.accepted == 0 and [(r["index"], r["reason"]) for r in refused.rejected] == [(0, "future")]
    ack = online.push("transactions", [row])
    assert ack.accepted == 1 and ack.rejected == () and ack.watermark == micros(ahead)
    after = online.get("fraud_model@v1", [{"user_id": USER}], at=ahead + dt.timedelta(seconds=1))
    assert after["tx_count_1h"][0] == 1 and after["tx_sum_1h"][0] == 5.0
