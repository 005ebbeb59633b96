"""Rows later than the wall clock plus `--max-future` are refused, row by row, and move nothing
(docs/serving.md, "Rows from the future"; docs/online.md, "Ingestion").  The clock is injected."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
from engine_clock import HOUR, SECOND, FrozenClock, T, engine, features, push, stop, tx
from serve_harness import FEATURES, launch

FAR = "9999-01-01T00:00:00"


def test_far_future_row_is_rejected_and_changes_nothing(tmp_path, monkeypatch):
    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock)  # the default allowance
    try:
        assert push(eng, tx(1, T - HOUR), tx(2, T - 2 * HOUR))["accepted"] == 2
        now = features(eng, [1, 2], features=["tx_count_1h"])
        past = features(eng, [1, 2], at=T - HOUR + 1, features=["tx_count_1h"])
        wm, horizon = dict(eng.store.watermark), eng.store.horizon
        ack = push(eng, tx(3, FAR))
        assert ack["accepted"] == 0 and ack["watermark"] == wm["transactions"]
        (rej,) = ack["rejected"]
        assert rej["index"] == 0 and rej["reason"] == "future" and rej["location"] == "rows[0].ts"
        assert rej["time"] == 253370764800000000 and rej["bound"] == T + 5 * 60 * SECOND
        assert rej["message"].startswith("rows[0].ts: ") and FAR in rej["message"]
        assert "--max-future" in rej["message"]
        # nothing moved, nothing was evicted: the same answers, now and in the past
        assert eng.store.watermark == wm and eng.store.horizon == horizon
        assert features(eng, [1, 2], features=["tx_count_1h"]) == now
        assert features(eng, [1, 2], at=T - HOUR + 1, features=["tx_count_1h"]) == past
        # rows at the real time go on being stored
        assert push(eng, tx(1, T - SECOND))["accepted"] == 1
        assert features(eng, [1], features=["tx_count_1h"])["results"][0]["values"] == [2]
        metrics = eng.metrics.render().decode()
        assert 'astra_rows_rejected_total{reason="future",source="transactions"} 1.0' in metrics
    finally:
        stop(eng)
    again = engine(tmp_path, monkeypatch, clock)  # the refused row is not in the log either
    try:
        assert again.store.watermark["transactions"] == T - SECOND
    finally:
        stop(again)


def test_allowance_is_inclusive_and_follows_the_clock(tmp_path, monkeypatch):
    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock, max_future=60 * SECOND)
    try:
        limit = T + 60 * SECOND
        ack = push(eng, tx(1, limit), tx(2, limit + 1), tx(3, T))
        assert ack["accepted"] == 2
        assert [(r["index"], r["time"], r["bound"]) for r in ack["rejected"]] == [(1, limit + 1, limit)]
        assert eng.store.watermark["transactions"] == limit
        clock.now_us += 1  # a microsecond later the same row is within the allowance
        assert push(eng, tx(2, limit + 1))["accepted"] == 1
    finally:
        stop(eng)


def test_store_push_rule_from_python():
    from astra.online import FutureRowError, Store
    from astra.project import Project

    plan = Project.load(FEATURES).plan
    store = Store(plan, max_future=60 * SECOND, clock=lambda: T)
    rows = [tx(1, T), tx(2, T + HOUR)]
    with pytest.raises(FutureRowError) as err:
        store.push("transactions", rows)
    msg = str(err.value)
    assert "row 1" in msg and "`ts`" in msg and "max_future" in msg and "nothing from this batch" in msg
    assert err.value.rejected == [(1, T + HOUR, T + 60 * SECOND)]
    assert store.watermark == {}
    report = store.push("transactions", rows, on_late="report")
    assert report.accepted == 1 and report.future == [(1, T + HOUR, T + 60 * SECOND)] and not report.rejected
    assert store.watermark["transactions"] == T
    frame = pl.DataFrame([tx(3, T + 2 * HOUR)])
    assert store.push("transactions", frame, on_late="report").future == [(0, T + 2 * HOUR, T + 60 * SECOND)]
    assert store.watermark["transactions"] == T
    # the rule is opt-in for the library (replays of recorded data have no clock to respect)
    assert Store(plan).push("transactions", [tx(2, T + HOUR)]).accepted == 1


def _with_future_row(tmp_path, demo):
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    df = pl.read_parquet(data / "transactions.parquet")
    bad = df.head(1).with_columns(pl.lit(FAR).str.to_datetime().dt.cast_time_unit(df["ts"].dtype.time_unit)
                                  .alias("ts"))
    pl.concat([df, bad]).write_parquet(data / "transactions.parquet")
    return data


def test_materialize_refuses_a_file_with_a_future_row(tmp_path, demo):
    from astra.online import FutureRowError, Store
    from astra.project import Project

    data = _with_future_row(tmp_path, demo)
    plan = Project.load(FEATURES).plan
    store = Store(plan, max_future=5 * 60 * SECOND, clock=lambda: T)
    with pytest.raises(FutureRowError) as err:
        store.materialize(data)
    msg = str(err.value)
    assert "`transactions`" in msg and "1 row" in msg and FAR in msg and "max_future" in msg
    assert "transactions" not in store.watermark


def test_serve_refuses_to_start_from_a_file_with_a_future_row(tmp_path, demo):
    import subprocess

    data = _with_future_row(tmp_path, demo)
    s = launch(FEATURES, tmp_path / "state", "--data-root", str(data), wait=False)
    try:
        s.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        s.kill9()
        pytest.fail(f"astra serve did not exit:\n{s.stderr()}")
    out = s.stderr()
    assert s.proc.returncode == 1 and "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and FAR in errors[0] and "--max-future" in errors[0], out


def test_serve_max_future_option(servers, tmp_path):
    import time

    s = servers(FEATURES, tmp_path / "state", "--max-future", "1m")
    now = time.time_ns() // 1000
    status, _, ack = s.client.post("/v1/push", {"source": "transactions", "rows": [
        tx(1, now + 30 * 60 * SECOND), tx(2, now - SECOND)]})  # margins far beyond any scheduling delay
    assert status == 200 and ack["accepted"] == 1, ack
    assert [(r["index"], r["reason"]) for r in ack["rejected"]] == [(0, "future")]
    assert s.client.get("/readyz")[0] == 200


def test_bad_max_future_is_a_usage_error(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "astra.cli.main", "serve", str(FEATURES), "--state",
                        str(tmp_path / "s"), "--max-future", "soon"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--max-future" in r.stderr and "`soon`" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_readyz_reports_a_store_that_cannot_answer_now(tmp_path, monkeypatch):
    """A state directory written before the limit existed (simulated by lifting it for one push)
    holds a row from year 9999: the server starts, but is not ready, and says why."""
    from astra.serve.app import App
    from astra.serve.validate import ApiError

    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock)
    eng.store.max_future = None
    assert push(eng, tx(1, T - HOUR), tx(2, FAR))["accepted"] == 2
    stop(eng)
    eng = engine(tmp_path, monkeypatch, clock)  # today's default allowance
    try:
        app = App(eng, eng.config)
        with pytest.raises(ApiError) as err:
            app.readyz(b"")
        body = err.value.body()["error"]
        assert err.value.status == 503 and body["code"] == "not_ready"
        assert "`transactions`" in body["message"] and FAR in body["message"] and "horizon" in body["message"]
    finally:
        stop(eng)
    fresh = engine(tmp_path, monkeypatch, clock, state="fresh")
    try:
        assert push(fresh, tx(1, T + 60 * SECOND))["accepted"] == 1  # ahead, within the allowance
        status, *_ = App(fresh, fresh.config).readyz(b"")
        assert status == 200
    finally:
        stop(fresh)
