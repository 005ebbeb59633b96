"""Pushes run in the writer thread: reads go on while a push rebuilds the store, and a push is
still atomic for reads and the cache (the loop is parked while its rows go in)."""

from __future__ import annotations

import asyncio
import errno
import threading
import time

import orjson
import pytest
from engine_clock import HOUR, FrozenClock, T, engine, features, stop, tx

from astra.online import store as store_module
from astra.online.table import Table
from astra.serve.validate import ApiError

WAIT = 20.0  # seconds: a bound on every wait below, never reached when the behaviour is right
Q = {"features": ["tx_count_1d"]}


def _push_doc(*rows):
    return {"source": "transactions", "rows": list(rows)}


async def _until(cond, what: str) -> None:
    end = time.monotonic() + WAIT
    while not cond():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        await asyncio.sleep(0.005)


async def _tick(ticks: list[int]) -> None:
    """Count the event loop's turns until cancelled: a count that does not move means it is parked."""
    while True:
        ticks[0] += 1
        await asyncio.sleep(0)


class Gate:
    """Holds a push inside a table rebuild (after its rows went in) until released."""

    def __init__(self, monkeypatch):
        self.entered, self.release = threading.Event(), threading.Event()
        self.timed_out = False
        original = Table.compact

        def compact(tb, lock=None, force=False):
            if not self.entered.is_set():
                self.entered.set()
                self.timed_out = not self.release.wait(WAIT)
            return original(tb, lock, force)

        monkeypatch.setattr(Table, "compact", compact)


def count(eng, user: int) -> int:
    return features(eng, [user], **Q)["results"][0]["values"][0]


def test_reads_are_answered_while_a_push_rebuilds(tmp_path, monkeypatch):
    """The push is held inside its compaction step; meanwhile the loop answers a read, which
    already sees the push's rows (they went in before the rebuild) and not a stale cached answer."""
    eng = engine(tmp_path, monkeypatch, FrozenClock(T), cache_ttl=3600)
    before = count(eng, 7)  # now cached
    gate = Gate(monkeypatch)

    async def main():
        eng.attach(asyncio.get_running_loop())
        task = asyncio.create_task(eng.push_async(_push_doc(tx(7, T - HOUR), tx(7, T - HOUR + 1))))
        await _until(gate.entered.is_set, "the push to reach its rebuild")
        during = count(eng, 7)
        done_during = task.done()
        gate.release.set()
        ack = await task
        return during, done_during, ack

    during, done_during, ack = asyncio.run(main())
    try:
        assert not gate.timed_out and not done_during  # the read was answered while the push ran
        assert ack["accepted"] == 2
        assert during == before + 2
        assert count(eng, 7) == before + 2
    finally:
        stop(eng)


def test_the_loop_is_parked_while_rows_go_in_and_runs_during_rebuilds(tmp_path, monkeypatch):
    eng = engine(tmp_path, monkeypatch, FrozenClock(T))
    gate = Gate(monkeypatch)
    ticks = [0]
    seen: dict[str, object] = {}
    original = store_module.Store._ingest_table

    def ingest_table(self, tb, times, cols, bulk):
        first = ticks[0]
        time.sleep(0.05)  # room for the loop to run, were it not parked
        seen["ticks while rows went in"] = ticks[0] - first
        return original(self, tb, times, cols, bulk)

    monkeypatch.setattr(store_module.Store, "_ingest_table", ingest_table)

    async def main():
        eng.attach(asyncio.get_running_loop())
        tk = asyncio.create_task(_tick(ticks))
        task = asyncio.create_task(eng.push_async(_push_doc(tx(3, T - HOUR))))
        await _until(gate.entered.is_set, "the push to reach its rebuild")
        at_rebuild = ticks[0]
        await _until(lambda: ticks[0] > at_rebuild + 10, "the loop to run during the rebuild")
        seen["push done during rebuild"] = task.done()
        gate.release.set()
        await task
        tk.cancel()

    asyncio.run(main())
    try:
        assert seen == {"ticks while rows went in": 0, "push done during rebuild": False}
    finally:
        stop(eng)


def test_a_failed_log_write_stores_nothing_and_the_server_goes_on(tmp_path, monkeypatch):
    """The log is written before the rows go in: when it fails, nothing is stored, the push
    answers 503 (the client may retry) and the next push works."""
    eng = engine(tmp_path, monkeypatch, FrozenClock(T))
    before = count(eng, 5)
    real = eng.log.append

    def full(source, rows):
        raise OSError(errno.ENOSPC, "No space left on device")

    async def main():
        eng.attach(asyncio.get_running_loop())
        eng.log.append = full
        with pytest.raises(ApiError) as err:
            await eng.push_async(_push_doc(tx(5, T - HOUR)))
        after_failure = count(eng, 5)
        eng.log.append = real
        ack = await eng.push_async(_push_doc(tx(5, T - HOUR)))
        return err.value, after_failure, ack

    exc, after_failure, ack = asyncio.run(main())
    try:
        assert (exc.status, exc.code) == (503, "log_failed")
        assert after_failure == before
        assert ack["accepted"] == 1 and count(eng, 5) == before + 1
        assert eng.failed is None
    finally:
        stop(eng)


def test_shutdown_finishes_a_running_push_and_keeps_it(tmp_path, monkeypatch):
    """Closing while a push is in the writer: the push completes, and a restart has its row."""
    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock)
    before = count(eng, 9)
    gate = Gate(monkeypatch)

    async def main():
        eng.attach(asyncio.get_running_loop())
        task = asyncio.create_task(eng.push_async(_push_doc(tx(9, T - HOUR))))
        await _until(gate.entered.is_set, "the push to reach its rebuild")
        threading.Timer(0.1, gate.release.set).start()
        stop(eng)  # on the loop's thread, as a server's shutdown runs
        return await task

    ack = asyncio.run(main())
    assert ack["accepted"] == 1 and not gate.timed_out
    again = engine(tmp_path, monkeypatch, clock)
    try:
        assert count(again, 9) == before + 1
    finally:
        stop(again)


def test_pushes_through_the_app_run_in_the_writer(tmp_path, monkeypatch):
    """The HTTP path: `/v1/push` goes through the writer thread."""
    from astra.serve.app import App

    eng = engine(tmp_path, monkeypatch, FrozenClock(T))
    app = App(eng, eng.config)
    threads = []
    original = store_module.Store.push

    def push(self, *a, **k):
        threads.append(threading.current_thread().name)
        return original(self, *a, **k)

    monkeypatch.setattr(store_module.Store, "push", push)

    async def main():
        loop = asyncio.get_running_loop()
        app.start(loop)
        body = orjson.dumps(_push_doc(tx(4, T - HOUR)))

        async def read(limit):
            return body

        out = await app.respond("POST", "/v1/push", None, None, read, None)
        app.shutdown()
        return out

    status, payload, _ = asyncio.run(main())
    os_fd = eng._lock_fd
    try:
        assert status == 200 and orjson.loads(payload)["accepted"] == 1
        assert threads and all(n.startswith("astra-writer") for n in threads)
    finally:
        import os

        os.close(os_fd)


def test_a_store_failure_after_the_log_write_is_recovered_by_a_restart(tmp_path, monkeypatch):
    """The rows are logged before they go in: when the store then fails, the server stops
    answering (503 store_failed) and a restart replays the push from the log."""
    clock = FrozenClock(T)
    eng = engine(tmp_path, monkeypatch, clock)
    before = count(eng, 6)

    def broken(self, *a, **k):
        raise RuntimeError("simulated failure inside the store")

    with monkeypatch.context() as m:
        m.setattr(store_module.Store, "_ingest", broken)
        with pytest.raises(ApiError) as err:
            eng.push(_push_doc(tx(6, T - HOUR)))
    assert (err.value.status, err.value.code) == (503, "store_failed")
    with pytest.raises(ApiError) as err:
        count(eng, 6)
    assert err.value.status == 503
    stop(eng, crash=True)
    again = engine(tmp_path, monkeypatch, clock)
    try:
        assert count(again, 6) == before + 1
    finally:
        stop(again)


def test_a_background_snapshot_forks_with_the_loop_parked(tmp_path, monkeypatch):
    """The writer forks the snapshot child while the loop is parked, so no query holds a lock
    (a vector index's) in the child's copy of the process."""
    from astra.serve import engine as engine_module

    eng = engine(tmp_path, monkeypatch, FrozenClock(T))
    ticks = [0]
    seen = {}

    class Fork:
        def __init__(self, store, state, n):
            first = ticks[0]
            time.sleep(0.05)  # room for the loop to run, were it not parked
            seen["ticks during the fork"] = ticks[0] - first

        def poll(self, block=False):
            return True

        seconds = 0.0

    monkeypatch.setattr(engine_module, "BackgroundSnapshot", Fork)

    async def main():
        eng.attach(asyncio.get_running_loop())
        tk = asyncio.create_task(_tick(ticks))
        await eng.push_async(_push_doc(tx(2, T - HOUR)))
        await eng.writer.run(eng.snapshot)
        tk.cancel()

    asyncio.run(main())
    try:
        assert seen == {"ticks during the fork": 0}
    finally:
        stop(eng)
