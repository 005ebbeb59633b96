"""A push's compaction or eviction step does not hold readers (docs/online.md, "The store").

Both steps read every retained row, so they are built beside the table and swapped in under
the lock a query holds.  Each test pauses the step in the middle of its rebuild (an event in a
hook, no sleeps), queries from another thread, and checks that the query finished while the
step was still paused, with the answers of the store after the push's rows went in (neither
step changes an answer at a time after the horizon); then lets the step finish.
"""

from __future__ import annotations

import sys
import threading

import pytest
from agg_engines import compile_features

from astra.online import Store, compaction
from astra.online.table import Table

S = 1_000_000  # µs
T = 10**6 * S
GUARD = 60  # seconds: a deadlock guard, never reached when reads do not wait

# count_distinct ends, block sparse tables (max over more than two blocks), prefix sums: what a
# half-done rebuild would get wrong
PLAN = compile_features("x: int64  a: float64", """
    d: int64 = count_distinct(ev.x, 300s)
    m: float64? = max(ev.a, 300s)
    s: float64 = sum(ev.a, 300s)
    n: int64 = count(ev, 300s)""")
IDS = [{"id": k} for k in (1, 2, 3, 2, 1, 2, 3, 2, 1)]  # more than SMALL: the vectorised plan (block lookups)


def _rows(k: int, n: int, t0: int, peak: int | None = None) -> list[dict]:
    """n rows of entity k a second apart from t0; `a` is 0 but at row `peak` (1000)."""
    return [dict(id=k, ts=t0 + j * S, x=j % 11, a=1000.0 if j == peak else 0.0) for j in range(n)]


# entity 2's largest value lies in a block its segment covers only after the compaction moves it
# (entity 1's segment, before it, gains slack): stale block tables would miss it
FIRST = _rows(1, 200, T) + _rows(2, 200, T, peak=130) + _rows(3, 30, T + 150 * S)


class Pause:
    """Replaces `Table.<name>` so that its first call from `caller` (once armed) signals
    `started` and waits for `release` before going on."""

    def __init__(self, mp: pytest.MonkeyPatch, name: str, caller: str):
        self.started, self.release, self.armed = threading.Event(), threading.Event(), False
        original = getattr(Table, name)

        def hook(tb, *args, **kw):
            if self.armed and sys._getframe(1).f_code.co_name == caller:
                self.armed = False
                self.started.set()
                assert self.release.wait(GUARD)
            return original(tb, *args, **kw)

        mp.setattr(Table, name, hook)


def _read_while_paused(store: Store, pause: Pause, push) -> tuple[list[dict], int | None]:
    """Run `push` in a thread until `pause` stops it; query from another thread meanwhile.
    Returns the answers and the horizon seen while the step was paused."""
    errors: list[BaseException] = []

    def run():
        try:
            push()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
            pause.started.set()

    pusher = threading.Thread(target=run, daemon=True)
    pause.armed = True
    pusher.start()
    try:
        assert pause.started.wait(GUARD), "the push never reached the paused step"
        assert not errors, errors
        got: list = []
        reader = threading.Thread(target=lambda: got.append(
            (store.get("svc@v1", IDS, at=AT).rows(), store.horizon)), daemon=True)
        reader.start()
        reader.join(GUARD)
        assert not reader.is_alive(), "the query waited for the rebuild"
        assert pusher.is_alive()  # the step is still paused: the query did not wait for it
    finally:
        pause.release.set()
        pusher.join(GUARD)
    assert not errors, errors
    assert not pusher.is_alive()
    return got[0]


AT = T + 400 * S  # a query time after every pushed row, within the windows


def test_a_read_during_compaction_sees_the_table_before_or_after_it(monkeypatch):
    monkeypatch.setattr(compaction, "COMPACT_HOLES", 1)  # any hole that is a quarter of the arena
    new = [dict(id=1, ts=T + 390 * S, x=5, a=500.0)]
    store, ref = Store(PLAN), Store(PLAN)
    for s in (store, ref):
        s.push("ev", FIRST)
        s.tables[0].shrink()  # segments of exactly their rows: the next row moves its segment
    ref.push("ev", new)
    after = ref.get("svc@v1", IDS, at=AT).rows()
    assert after != store.get("svc@v1", IDS, at=AT).rows()  # the pushed row shows

    pause = Pause(monkeypatch, "_rebuild_blocks", "_maybe_compact")
    rows, _ = _read_while_paused(store, pause, lambda: store.push("ev", new))
    assert rows == after
    tb = store.tables[0]
    assert tb.holes == 0  # it did compact: the moved segment's hole is gone
    assert store.get("svc@v1", IDS, at=AT).rows() == after


def test_a_read_during_eviction_sees_the_rows_before_or_after_it(monkeypatch):
    # late enough that a step of eviction (an eighth of the retention) is due, early enough that
    # the windows at AT still see rows of every entity
    new = [dict(id=2, ts=T + 395 * S, x=1, a=7.0), dict(id=1, ts=T + 399 * S, x=3, a=1.0)]
    store, ref = Store(PLAN), Store(PLAN)
    for s in (store, ref):
        s.push("ev", FIRST)
    ref.push("ev", new)
    after = ref.get("svc@v1", IDS, at=AT).rows()
    before_horizon = store.horizon

    pause = Pause(monkeypatch, "_rebuild_ends", "_evict")
    rows, horizon = _read_while_paused(store, pause, lambda: store.push("ev", new))
    assert rows == after
    assert horizon == before_horizon  # the query saw the table as it was before the step
    assert store.horizon == ref.horizon > before_horizon  # the step did evict
    assert store.get("svc@v1", IDS, at=AT).rows() == after


def test_queries_racing_a_push_stream_see_whole_pushes(monkeypatch):
    """Queries from two threads while a third pushes (evicting, and compacting at every chance):
    every answer is that of some prefix of the pushes, whatever the interleaving: per entity the
    count never goes back, a sum of ones equals the count, the max is 1 (none when empty)."""
    monkeypatch.setattr(compaction, "COMPACT_HOLES", 1)
    plan = compile_features("x: int64  a: float64", """
    d: int64 = count_distinct(ev.x, 100s)
    m: float64? = max(ev.a, 100s)
    s: float64 = sum(ev.a, 100s)
    n: int64 = count(ev, 100s)""")
    at = T + 400 * S  # after every row: rows evicted are before its window, whose rows only grow
    batches, k = [], 0
    while k < 400:
        size = 1 if len(batches) % 3 else 25
        batches.append([dict(id=1 + (k + j) % 3, ts=T + (k + j) * S, x=(k + j) % 11, a=1.0)
                        for j in range(min(size, 400 - k))])
        k += size
    store, ref = Store(plan), Store(plan)
    for b in batches:
        ref.push("ev", b)
    done, seen, errors = threading.Event(), [], []

    def read():
        last = {}
        try:
            while not done.is_set():
                for q, r in zip(IDS, store.get("svc@v1", IDS, at=at).rows()):
                    n = r["n"]
                    assert n >= last.get(q["id"], 0) and r["s"] == float(n) and r["d"] <= min(n, 11)
                    assert r["m"] == (1.0 if n else None)
                    last[q["id"]] = n
                seen.append(1)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    readers = [threading.Thread(target=read, daemon=True) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for b in batches:
            store.push("ev", b)
    finally:
        done.set()
        for t in readers:
            t.join(GUARD)
    assert not errors, errors
    assert seen and store.horizon is not None  # queries ran, and so did eviction
    assert store.get("svc@v1", IDS, at=at).rows() == ref.get("svc@v1", IDS, at=at).rows()


def test_the_arena_grows_beside_the_table_not_under_the_lock(monkeypatch):
    """Growing the arena copies every row, and so does adding a level to the block tables: a push
    does both before taking the lock queries wait for (`Table.reserve`), never while holding it,
    whether its rows are appended one by one to a hot entity, inserted in batches, late, or of new
    entities."""
    store = Store(PLAN)
    grown: list[bool] = []  # per growth of the arena: whether the lock was held
    original = Table._grow

    def grow(tb, need):
        if need > len(tb.pos["time"]):
            grown.append(store.lock.locked())
        return original(tb, need)

    monkeypatch.setattr(Table, "_grow", grow)
    levels: list[bool] = []  # per rebuild of the block tables with more levels: whether the lock was held
    rebuild = Table._rebuild_blocks

    def more_levels(tb, n=1):
        if n > 1:
            levels.append(store.lock.locked())
        return rebuild(tb, n)

    monkeypatch.setattr(Table, "_rebuild_blocks", more_levels)
    t = T
    for r in range(300):
        if r % 10 == 0:  # a batch: new entities, and late rows of old ones
            batch = [dict(id=100 + r * 40 + j, ts=t, x=j, a=1.0) for j in range(40)]
            batch += [dict(id=1 + j % 3, ts=t - 5 * S, x=j, a=1.0) for j in range(30)]
        else:  # a hot entity, row by row
            batch = [dict(id=1, ts=t, x=r % 7, a=2.0)]
        store.push("ev", batch, on_late="report")
        t += S
    assert len(grown) > 3 and not any(grown), grown
    assert levels and not any(levels), levels  # the hot entity's segment needed more levels
