"""Pushes off the event loop: one writer thread, and a pause of the loop while a push changes what
reads see.

Growing a table's arena, compacting it and an eviction step are built beside the tables they
replace (`astra.online.compaction`) and take up to a few hundred milliseconds on a large store; run
on the event loop, they held every read behind them.  So a writing server runs each push
(validation, its log record, the store) and the periodic work (log sync, snapshots) in one writer
thread, in arrival order, while the loop goes on answering reads.

The moments a push changes what a read sees -- its rows going in, a rebuilt table swapped in -- are
where the store takes its `lock`.  In the server that lock is a `LoopPause`: it parks the event loop
between two of its steps (a callback that waits), lets the writer make the change, runs the
engine's bookkeeping for it (cache invalidation, the horizon, the push count) and lets the loop go.
A read therefore sees a push wholly before or after, and the cache never holds an answer from
before a change the store already shows: the same guarantees as when pushes ran on the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

PARK_POLL = 0.05  # seconds between checks that the loop still runs, while waiting for it to park
# CPython's GIL switch interval (5 ms) is left alone: lowered to 0.5 ms, so that the writer's
# Python work between pauses would hold a waiting read less long, it cost 18-31% of the server's
# cache-hit throughput (bench/serve.py, 16 and 64 connections): granian's own threads take the GIL
# too, and every forced hand-off between them costs


class _Park:
    """One pause's handshake: the loop sets `parked` and waits for `resume`; `abandoned` tells a
    park callback that runs after the writer gave up waiting (the loop stopped) to return at once."""

    __slots__ = ("abandoned", "parked", "resume")

    def __init__(self):
        self.parked, self.resume = threading.Event(), threading.Event()
        self.abandoned = False

    def __call__(self) -> None:
        if self.abandoned:
            return
        self.parked.set()
        self.resume.wait()


class LoopPause:
    """A context manager standing in for `Store.lock`: on the writer thread it holds the event loop
    parked for its body, then calls `after()` (still parked); on the loop's own thread (a query) it
    does nothing, since nothing else runs there meanwhile.  Once the loop no longer runs (shutdown),
    the writer goes on without it and nothing reads concurrently."""

    def __init__(self, loop: asyncio.AbstractEventLoop, after: Callable[[], None]):
        self.loop, self.after = loop, after
        self.stopped = False  # set at shutdown: the loop will not run a park callback any more
        self._held: _Park | None = None

    def __enter__(self):
        if asyncio._get_running_loop() is self.loop:  # on the loop: a query, nothing runs beside it
            return self
        park = _Park()
        try:
            if self.stopped or self.loop.is_closed():
                raise RuntimeError
            self.loop.call_soon_threadsafe(park)
            while not park.parked.wait(PARK_POLL):
                if self.stopped or not self.loop.is_running():
                    raise RuntimeError
        except RuntimeError:
            park.abandoned = True
            if not park.parked.is_set():
                park = None  # nothing to release: the loop is not running
            else:  # it parked just now after all
                park.abandoned = False
        self._held = park
        return self

    def __exit__(self, *exc) -> None:
        if asyncio._get_running_loop() is self.loop:
            return
        park, self._held = self._held, None
        try:
            self.after()
        finally:
            if park is not None:
                park.resume.set()


class Writer:
    """The writer thread: `run(fn, *args)` awaits `fn(*args)` run there, one call at a time, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, after: Callable[[], None]):
        self.loop = loop
        self.pause = LoopPause(loop, after)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="astra-writer")

    async def run(self, fn, *args):
        return await self.loop.run_in_executor(self.pool, fn, *args)

    def stop(self) -> None:
        """Finish the calls already queued (without parking the loop, which no longer runs them)."""
        self.pause.stopped = True
        self.pool.shutdown(wait=True)
