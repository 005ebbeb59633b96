"""`BodyDeadlines`: a body read past the timeout raises `BodyTimeout`; other reads are untouched,
and a cancellation that is not the timeout's (a shutdown) still cancels."""

from __future__ import annotations

import asyncio

import pytest

from astra.serve.deadlines import BodyDeadlines, BodyTimeout


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def _never():
    await asyncio.Event().wait()


async def _value(x):
    await asyncio.sleep(0)
    return x


def test_a_read_past_its_deadline_times_out_and_others_complete():
    async def go():
        d = BodyDeadlines(0.05)
        sweeper = asyncio.create_task(d.run())
        async def request():
            try:
                await d.read(_never)
            except BodyTimeout:
                await asyncio.sleep(0.01)  # not left cancelled: it goes on, to answer the 408
                return 408
            return 200

        try:
            slow = asyncio.create_task(request())
            fast = await d.read(_value, b"body")
            assert fast == b"body"
            assert await slow == 408
            assert not d.pending and not d.expired
        finally:
            sweeper.cancel()

    run(go())


def test_another_cancellation_is_not_a_timeout():
    async def go():
        d = BodyDeadlines(30.0)
        t = asyncio.create_task(d.read(_never))
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert not d.pending

    run(go())
