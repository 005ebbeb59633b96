"""Coalesce the cache misses of concurrent `/v1/features` requests into one `Store.get` per service.

The store evaluates a batch of entities with vectorised numpy code, so 16 entities cost little
more than one.  A request that misses the cache registers its entities here and awaits; the
first one schedules a flush with `call_soon`, which runs after every request already waiting
on the event loop had its turn.  The flush evaluates each service's entities in one call (one
query time and one request row per entity, so requests with different `at` or inputs share
it), fills in and caches every waiting request's answer in the same step (no push can fall in
between), and wakes them.  A request that read some entities from the cache before a push that
came in while it waited is evaluated whole, so no answer mixes states from before and after.
If a batch fails, its requests are evaluated one by one, so one bad request never fails another.

Coalescing pays only when it reaches the store's vectorised plan with enough entities: up to
`astra.online.store.SMALL` entities the store runs its scalar plan per entity anyway, and a
vectorised batch of a few dozen costs more per entity than the scalar plan (at 10M events: about
30 µs per entity for the scalar plan, 46 at 9 entities, 30 at 16, 12 at 64).  So a request with at
most `SMALL` misses (or the only request in flight) is evaluated at once, without waiting for a
flush, unless at least `MIN_BATCH` requests are in flight (only then can a flush gather enough);
and a flush whose misses total fewer than `MIN_BATCH` entities evaluates each request on its own.
"""

from __future__ import annotations

import asyncio

from astra.online.store import SMALL

MIN_BATCH = 32  # entities: below this, the scalar plan per entity beats a vectorised batch


class Batcher:
    """Pending misses per service, flushed once per event-loop turn."""

    def __init__(self, engine):
        self.engine = engine
        self.pending: dict[str, list] = {}
        self.scheduled = False
        self.batches = self.coalesced = 0

    async def features(self, doc: object, inflight: int = 0):
        """The answer to a parsed `/v1/features` body, misses coalesced with concurrent requests
        (`inflight`: requests the server has started and not yet answered, this one included)."""
        eng = self.engine
        p = eng.begin(doc)
        if not p.miss:
            return eng.answer(p), p.info
        if not self.pending and (inflight <= 1 or (len(p.miss) <= SMALL and inflight < MIN_BATCH)):
            self.batches += 1
            self.coalesced += 1
            eng.complete(p, eng.evaluate(p.info, *eng.miss_args(p)))
            return eng.answer(p), p.info
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending.setdefault(p.info.id, []).append((p, fut))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)
        return await fut, p.info

    def _flush(self) -> None:
        self.scheduled = False
        pending, self.pending = self.pending, {}
        for group in pending.values():
            for p, _ in group:
                self.engine.refresh(p)
            self.coalesced += len(group)
            if len(group) == 1 or sum(len(p.miss) for p, _ in group) < MIN_BATCH:
                self.batches += len(group)
                for p, fut in group:
                    self._one(p, fut)
                continue
            self.batches += 1
            try:
                self._many(group)
            except Exception:  # isolate the culprit: every request gets its own answer or error
                for p, fut in group:
                    self._one(p, fut)

    def _one(self, p, fut) -> None:
        eng = self.engine
        try:
            eng.complete(p, eng.evaluate(p.info, *eng.miss_args(p)))
            result = eng.answer(p)
        except Exception as exc:  # handed to the request, which answers it like any error
            if not fut.done():
                fut.set_exception(exc)
            return
        if not fut.done():
            fut.set_result(result)

    def _many(self, group: list) -> None:
        eng = self.engine
        info = group[0][0].info
        ents, ats, reqs, sizes = [], [], [], []
        has_req = bool(info.request_fields)
        for p, _ in group:
            e, at, req = eng.miss_args(p)
            n = len(e)
            ents.extend(e)
            ats.extend(at if isinstance(at, list) else [at] * n)
            if has_req:
                reqs.extend(req if isinstance(req, list) else [req] * n)
            sizes.append(n)
        values = eng.evaluate(info, ents, ats, reqs if has_req else None)
        k = 0
        for (p, fut), n in zip(group, sizes):
            eng.complete(p, values[k:k + n])
            k += n
            if not fut.done():
                fut.set_result(eng.answer(p))
