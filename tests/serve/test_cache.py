"""The hot-entity cache: LRU bound, TTL buckets, invalidation by pushes (unit and end to end)."""

from __future__ import annotations

import time

from serve_harness import FEATURES

from astra.serve.cache import FeatureCache


def test_lru_bound_and_counters():
    c = FeatureCache(size=2, ttl_us=1000)
    for k in "abc":
        c.put((k,), 0, k, (("user", (k,)),))
    assert list(c.entries) == [("b",), ("c",)] and c.evictions == 1
    assert c.get(("a",), 0) is None and c.get(("b",), 0) == "b"
    c.put(("d",), 0, "d", (("user", ("d",)),))  # b was used last, so c goes
    assert set(c.entries) == {("b",), ("d",)}
    assert (c.hits, c.misses, c.evictions) == (1, 1, 2)
    assert set(c.index) == {("user", ("b",)), ("user", ("d",))}  # evicted entries leave the index


def test_ttl_bucket_and_invalidation():
    c = FeatureCache(size=10, ttl_us=1000)
    assert c.bucket(12_345) == 12_000
    c.put(("svc", 1), 12_000, "v", (("user", (1,)), ("merchant", (9,))))
    c.put(("svc2", 1), 12_000, "w", (("user", (1,)),))
    assert c.get(("svc", 1), 13_000) is None and c.expired == 1  # an older bucket is a miss
    c.put(("svc", 1), 13_000, "v", (("user", (1,)), ("merchant", (9,))))
    c.invalidate("merchant", (9,))
    assert ("svc", 1) not in c.entries and ("svc2", 1) in c.entries
    c.invalidate("user", (1,))
    assert not c.entries and not c.index and c.invalidations == 2


def test_entries_live_until_their_answer_changes():
    c = FeatureCache(size=10, ttl_us=1000)
    c.put(("svc", 1), 12_000, "v", (("user", (1,)),), until=14_500)  # no window of user 1 changes before
    assert c.get(("svc", 1), 12_000) == "v" and c.get(("svc", 1), 14_000) == "v"  # later buckets: hits
    assert c.get(("svc", 1), 11_000) is None  # an earlier bucket was never proved: a miss
    c.put(("svc", 1), 12_000, "v", (("user", (1,)),), until=14_500)
    assert c.get(("svc", 1), 15_000) is None and ("svc", 1) not in c.entries  # past it: gone
    c.put(("svc", 2), 12_000, "w", (("user", (2,)),), until=10**18)
    c.clear()  # a push that moved the store's horizon
    assert not c.entries and not c.index and c.invalidations == 1
    assert (c.hits, c.expired) == (2, 2)


def mid_bucket_ttl(now_s: float, at_least: int = 3600) -> int:
    """A TTL (whole seconds, >= at_least) whose current bucket has at least a quarter of it left
    on both sides of now: a test of a few minutes then never sees the bucket turn."""
    ttl = at_least
    while not ttl / 4 <= now_s % ttl <= 3 * ttl / 4:
        ttl += 1
    return ttl


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")
               or line.startswith(name + "{"))


def test_push_invalidates_cached_answers(servers, tmp_path):
    ttl = mid_bucket_ttl(time.time())
    s = servers(FEATURES, tmp_path / "state", "--cache-ttl", str(ttl))
    metrics = [s.client.get("/metrics")[2]]

    def delta() -> tuple[float, float, float]:
        """(hits, misses, invalidations) since the previous call."""
        metrics.append(s.client.get("/metrics")[2])
        return tuple(_metric(metrics[-1], n) - _metric(metrics[-2], n) for n in
                     ("astra_cache_hits_total", "astra_cache_misses_total", "astra_cache_invalidations_total"))

    q = {"service": "fraud_model", "version": 1, "entities": [{"user_id": 42}, {"user_id": 43}],
         "features": ["tx_count_1d", "tx_count_30d"]}
    status, _, first = s.client.post("/v1/features", q)
    assert status == 200 and first["at"] % (ttl * 10**6) == 0  # `now` is the start of the TTL bucket
    assert s.client.post("/v1/features", q)[2] == first  # served from the cache
    assert delta() == (2, 2, 0)
    ts = first["at"] - 2 * 3600 * 10**6
    rows = [{"user_id": 42, "merchant_id": 5, "amount": 3.0, "category": "cat_01", "ts": ts}]
    counts = first["results"][0]["values"]
    for pushed in (1, 2):
        assert s.client.post("/v1/push", {"source": "transactions", "rows": rows})[0] == 200
        status, _, again = s.client.post("/v1/features", q)
        assert again["at"] == first["at"]
        assert again["results"][0]["values"] == [counts[0] + pushed, counts[1] + pushed]  # not the cached answer
        assert again["results"][1] == first["results"][1]
        hits, misses, invalidations = delta()
        if pushed == 1:  # the first row also moves the empty store's horizon, which may clear the whole cache
            assert hits + misses == 2 and misses >= 1 and invalidations >= 1
        else:  # the second, at the same time, drops exactly user 42's entry
            assert (hits, misses, invalidations) == (1, 1, 1)


class FrozenClock:
    """`time` as the serving engine sees it, with wall-clock time fixed (and settable)."""

    def __init__(self, now_us: int):
        self.now_us = now_us

    def time_ns(self) -> int:
        return self.now_us * 1000

    def __getattr__(self, name):
        return getattr(time, name)


def test_cached_answers_follow_the_injected_clock(tmp_path, monkeypatch):
    """With the clock injected, the bucket boundary is exercised on purpose rather than by luck."""
    import orjson

    from astra.project import Project
    from astra.serve import engine
    from astra.serve.config import ServeConfig
    from astra.serve.engine import Engine

    hour = 3600 * 10**6
    start = 494_444 * hour  # an hour boundary in 2026
    clock = FrozenClock(start + hour - 1)  # the last microsecond of that hour's bucket
    monkeypatch.setattr(engine, "time", clock)
    eng = Engine(Project.load(FEATURES).plan, ServeConfig(project=str(FEATURES), state=str(tmp_path / "s"),
                                                          cache_ttl=3600, access_log="off"), log=lambda m: None)
    try:
        q = {"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}], "features": ["tx_count_1d"]}
        first = orjson.loads(eng.features(q)[0])
        assert first["at"] == start
        eng.push({"source": "transactions", "rows": [{"user_id": 1, "merchant_id": 1, "amount": 1.0,
                                                      "category": "cat_01", "ts": first["at"] - 10}]})
        assert orjson.loads(eng.features(q)[0])["results"][0]["values"] == [1]  # invalidated, recomputed
        hits = eng.cache.hits
        assert orjson.loads(eng.features(q)[0])["results"][0]["values"] == [1] and eng.cache.hits == hits + 1
        clock.now_us += 1  # the next bucket: the row 10 µs before the old bucket is still in the 1d window
        nxt = orjson.loads(eng.features(q)[0])
        assert nxt["at"] == first["at"] + hour and nxt["results"][0]["values"] == [1]
        clock.now_us += 86400 * 10**6  # a day later the row has left the window
        assert orjson.loads(eng.features(q)[0])["results"][0]["values"] == [0]
    finally:
        eng.close()


def test_push_while_waiting_reevaluates_whole_request(tmp_path, monkeypatch):
    """A request that read the cache, then waited while a push landed, is evaluated whole."""
    import orjson

    from astra.project import Project
    from astra.serve import engine
    from astra.serve.config import ServeConfig
    from astra.serve.engine import Engine

    monkeypatch.setattr(engine, "time", FrozenClock(1_780_000_000 * 10**6 + 1234))  # the bucket cannot turn
    eng = Engine(Project.load(FEATURES).plan, ServeConfig(project=str(FEATURES), state=str(tmp_path / "s"),
                                                          cache_ttl=3600, access_log="off"), log=lambda m: None)
    q = {"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}, {"user_id": 2}],
         "features": ["tx_count_1d"]}
    first = orjson.loads(eng.features(q)[0])
    p = eng.begin({**q, "entities": [*q["entities"], {"user_id": 3}]})
    assert p.miss == [2]  # users 1 and 2 come from the cache
    ts = first["at"] - 3600 * 10**6
    eng.push({"source": "transactions", "rows": [{"user_id": 2, "merchant_id": 1, "amount": 1.0,
                                                  "category": "cat_01", "ts": ts}]})
    eng.refresh(p)
    assert p.miss == [0, 1, 2]
    eng.complete(p, eng.evaluate(p.info, *eng.miss_args(p)))
    got = orjson.loads(eng.answer(p))
    assert got["at"] == first["at"]
    assert [r["values"] for r in got["results"]] == [[0], [1], [0]]
    eng.close()
