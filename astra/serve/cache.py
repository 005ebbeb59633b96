"""An LRU cache of per-entity answers to "now" queries, bounded in size and time, invalidated by pushes.

Only queries without `at` are cached.  With the cache on, "now" is quantised to the TTL: a
query at wall-clock time T is answered as of `T - T % ttl` (the start of its bucket), whether
the answer comes from the cache or the store, so a cache hit is exactly the answer the store
gives for that time.  An entry is keyed by (service id, the entity's key values, the request
values) and holds the bucket it was computed for and the last time its answer holds (the
store's `valid_until`: until a row enters or leaves one of the entity's windows).  A later
bucket up to that time is still a hit; past it, a miss.  So a hot entity whose windows do not
change is computed once, not once per TTL, and the misses of every hot key no longer all fall
in the first milliseconds of each bucket.

A push invalidates every entry whose service reads the pushed entity: for each accepted row and
each entity its source is keyed by, the entity's key (from the row's key columns) is looked up
in an index (entity, key) -> cache keys and every entry found is dropped, whatever the service.

Entries and index values are tuples of scalars, which CPython's cyclic GC stops tracking: a
full cache then adds nothing to garbage-collection pauses (with lists and sets, a 100k-entry
cache made gen-2 collections cost tens of milliseconds, visible at p99).
"""

from __future__ import annotations

from collections import OrderedDict


class FeatureCache:
    """`get`/`put` per (service, entity key, request) for one time bucket; `invalidate` per entity key."""

    def __init__(self, size: int, ttl_us: int):
        self.size, self.ttl_us = int(size), int(ttl_us)
        self.entries: OrderedDict[tuple, tuple] = OrderedDict()  # key -> (bucket, until, value, index keys)
        self.index: dict[tuple, tuple[tuple, ...]] = {}  # (entity, key values) -> cache keys
        self.hits = self.misses = self.evictions = self.invalidations = self.expired = 0

    @property
    def enabled(self) -> bool:
        return self.size > 0 and self.ttl_us > 0

    def bucket(self, now_us: int) -> int:
        return now_us - now_us % self.ttl_us

    def get(self, key: tuple, bucket: int):
        e = self.entries.get(key)
        if e is None:
            self.misses += 1
            return None
        if not e[0] <= bucket <= e[1]:
            self.expired += 1
            self.misses += 1
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return e[2]

    def put(self, key: tuple, bucket: int, value, index_keys: tuple[tuple, ...], until: int | None = None) -> None:
        """Cache `value`, the answer for `bucket` and every later bucket up to `until` (default:
        this bucket only)."""
        if key in self.entries:
            self._drop(key)
        self.entries[key] = (bucket, bucket if until is None else until, value, index_keys)
        index = self.index
        for ik in index_keys:
            index[ik] = (*index.get(ik, ()), key)
        while len(self.entries) > self.size:
            old = next(iter(self.entries))
            self._drop(old)
            self.evictions += 1

    def _drop(self, key: tuple) -> None:
        e = self.entries.pop(key, None)
        if e is None:
            return
        index = self.index
        for ik in e[3]:
            ks = index.get(ik)
            if ks is not None:
                rest = tuple(k for k in ks if k != key)
                if rest:
                    index[ik] = rest
                else:
                    del index[ik]

    def invalidate(self, entity: str, key: tuple) -> None:
        """Drop every entry that depends on this entity key."""
        keys = self.index.pop((entity, key), None)
        if not keys:
            return
        for k in keys:
            if k in self.entries:
                self._drop(k)
                self.invalidations += 1

    def clear(self) -> None:
        """Drop every entry (counted as invalidations: only a push clears the cache)."""
        self.invalidations += len(self.entries)
        self.entries.clear()
        self.index.clear()
