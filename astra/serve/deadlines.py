"""Time limits on reading request bodies (`--body-timeout`).

One periodic sweep over the bodies being read, instead of a timer per request: on uvloop,
`asyncio.timeout` (a loop timer armed and cancelled per request) costs about 10 µs, a tenth of
what a whole request costs the server; registering a deadline in a dict costs well under one.
The price is precision: a body is timed out between `timeout` and `timeout` plus one sweep
period (a quarter of the timeout, at most one second) after its read began.
"""

from __future__ import annotations

import asyncio
import time


class BodyTimeout(Exception):
    """The body did not arrive within the timeout."""


class BodyDeadlines:
    """The deadlines of the bodies being read, and the sweep that cancels overdue reads."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.every = min(1.0, max(0.01, timeout / 4))
        self.pending: dict[asyncio.Task, float] = {}
        self.expired: set[asyncio.Task] = set()

    async def read(self, read, *args):
        """`await read(*args)`, raising `BodyTimeout` once it has taken longer than the timeout."""
        task = asyncio.current_task()
        self.pending[task] = time.monotonic() + self.timeout
        try:
            return await read(*args)
        except asyncio.CancelledError:
            if task not in self.expired:  # cancelled for another reason (shutdown): not ours to stop
                raise
            self.expired.discard(task)
            task.uncancel()
            raise BodyTimeout from None
        finally:
            self.pending.pop(task, None)

    def sweep(self) -> None:
        """Cancel every read past its deadline (it then raises `BodyTimeout` in `read`)."""
        now = time.monotonic()
        for task, deadline in list(self.pending.items()):
            if deadline <= now and task not in self.expired:
                self.expired.add(task)
                task.cancel()

    async def run(self) -> None:
        """Sweep until cancelled."""
        while True:
            await asyncio.sleep(self.every)
            self.sweep()
