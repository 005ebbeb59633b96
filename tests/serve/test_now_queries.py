"""A query without `at` ("now") is never refused because of the store's own eviction timing
(docs/serving.md, "The horizon"): the store keeps `--max-future` + `--cache-ttl` more than the
longest window + allowed lateness, so the horizon stays behind any "now", rounded down to the
cache bucket or not.  The clock is injected."""

from __future__ import annotations

import random

from engine_clock import HOUR, SECOND, FrozenClock, T, engine, features, push, stop, tx

MINUTE = 60 * SECOND


def test_now_right_after_a_push_at_the_current_time(tmp_path, monkeypatch):
    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock)  # cache on, TTL 1 s: "now" is T - 0.4 s
    try:
        assert push(eng, tx(1, T))["accepted"] == 1  # the first row evicts at once (nothing older)
        body = features(eng, [1, 2], features=["tx_count_1h"])
        assert body["at"] == T - 400_000 and [r["values"] for r in body["results"]] == [[0], [0]]
        assert eng.store.horizon <= body["at"]
        clock.now_us += 700_000  # the next bucket: the row is visible
        assert features(eng, [1], features=["tx_count_1h"])["results"][0]["values"] == [1]
    finally:
        stop(eng)


def test_now_after_a_row_slightly_ahead_of_the_clock(tmp_path, monkeypatch):
    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock, cache_size=0)  # no cache: "now" is the clock itself
    try:
        assert push(eng, tx(1, T + 2 * MINUTE))["accepted"] == 1  # a producer's clock 2 minutes fast
        body = features(eng, [1], features=["tx_count_1h"])
        assert body["at"] == T and body["results"][0]["values"] == [0]
    finally:
        stop(eng)


def test_now_is_never_before_the_horizon_while_the_watermark_moves(tmp_path, monkeypatch):
    """Months of pushes at, before and ahead of the clock (within the allowance), each followed by
    "now" queries: eviction runs many times, and no "now" query is refused."""
    rng = random.Random(7)
    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock, max_future=MINUTE, cache_ttl=2.0)
    evictions = set()
    try:
        for i in range(400):
            clock.now_us += rng.randrange(0, 10 * HOUR)  # a table evicts in steps of 1/8 of its 30 days
            ts = clock.now_us + rng.randrange(-5 * SECOND, MINUTE + 1)
            push(eng, tx(1 + i % 5, ts))
            for cache in (True, False):
                eng.cache.size = 100_000 if cache else 0
                body = features(eng, [1, 2, 3], features=["tx_count_1h"])  # a 409 would raise here
                assert eng.store.horizon is None or eng.store.horizon <= body["at"]
            evictions.add(eng.store.horizon)
        assert len(evictions) > 10  # the horizon really moved, many times
    finally:
        stop(eng)


def test_the_horizon_margin_survives_a_restart(tmp_path, monkeypatch):
    """The margin is saved with the store, so replaying the log after a restart evicts exactly as
    before (same horizon) and "now" still answers."""
    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock)
    for k in range(30):  # enough watermark progress for several eviction steps
        push(eng, tx(1, T - 3 * HOUR + k * 6 * MINUTE))
    horizon = eng.store.horizon
    assert horizon <= eng.store.watermark["transactions"] - 5 * MINUTE - SECOND  # --max-future + --cache-ttl
    stop(eng, crash=True)  # no snapshot at shutdown: the log is replayed
    again = engine(tmp_path, monkeypatch, clock)
    try:
        assert again.store.horizon == horizon
        assert features(again, [1], features=["tx_count_1h"])["results"][0]["values"] == [10]
    finally:
        stop(again)
