"""Tables a Redis store's single-entity reads loaded, kept between reads.

A read of one entity fetches, in its one round trip, the entity's version (the push sequence of
its latest append, `redis_layout._APPEND`) and sends the version it holds: when they agree, Redis
sends nothing else and the read answers from the tables it loaded then, provided the shared
cutoffs they were evicted to have not moved.  A version is never reused in a namespace, so a
stale table cannot pass for a current one.  Entries are dropped least recently used first, past
`max_entities` or `max_rows` rows held in all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class EntityTables:
    """Per entity row key: (version, {table index: (cutoff tag, loaded table)}).  An entry is a
    new tuple each time, never changed in place, so a reader holding one is not disturbed."""

    def __init__(self, max_entities: int = 10_000, max_rows: int = 2_000_000):
        self.max_entities, self.max_rows = max_entities, max_rows
        self.entries: OrderedDict[bytes, tuple[bytes, dict]] = OrderedDict()
        self.rows = 0
        self.lock = threading.Lock()

    def get(self, key: bytes) -> tuple[bytes, dict] | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: bytes, version: bytes, ti: int, entry: tuple) -> None:
        """Hold table `ti` (its (cutoff tag, table) `entry`) for row key `key` at `version`, beside
        the tables held for that key at the same version (other services read other tables)."""
        if not version or entry[1].used > self.max_rows:  # no version (older writes): never checkable
            return
        with self.lock:
            old = self.entries.pop(key, None)
            tables = {}
            if old is not None:
                self.rows -= _rows(old)
                if old[0] == version:
                    tables = dict(old[1])
            tables[ti] = entry
            self.entries[key] = (version, tables)
            self.rows += _rows(self.entries[key])
            while self.entries and (len(self.entries) > self.max_entities or self.rows > self.max_rows):
                _, dropped = self.entries.popitem(last=False)
                self.rows -= _rows(dropped)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.rows = 0


def _rows(entry: tuple[bytes, dict]) -> int:
    return sum(tb.used for _, tb in entry[1].values())
