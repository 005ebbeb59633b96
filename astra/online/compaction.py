"""Compaction of a table, and how long rebuilds stay out of readers' way.

A moved segment leaves a hole; once holes are a quarter of the arena, the arena is rewritten
without them.  That rewrite, like an eviction step, reads every retained row, so it is built in
a copy of the table (`shadow`: the raw per-row arrays shared, since neither changes them, the
derived and per-slot ones copied) while readers go on reading the table as it was; the result
is then installed by swapping references (`publish`) under the lock readers take for a query.
A reader therefore sees the state before or after, and waits at most for the swap.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from astra.online.arrays import BLOCK, ranges

COMPACT_HOLES = 4096  # fewer hole rows than this are never worth a rewrite


class Compacting:
    """The compaction path of `astra.online.table.Table` (mixed into it; uses its arrays)."""

    def shadow(self, derived: bool = True):
        """A copy of the table to rebuild in: the same raw rows (times, values, masks), its own
        per-slot arrays and block tables' dict, and with `derived`, its own copies of the
        per-position derived arrays (prefixes, count_distinct ends) an eviction rewrites."""
        built = copy.copy(self)
        raw = set(self.raw_keys)
        built.pos = {k: a if k in raw or not derived else a.copy() for k, a in self.pos.items()}
        built.slot = {k: a.copy() for k, a in self.slot.items()}
        built.blocks = dict(self.blocks)
        return built

    def publish(self, built, lock: AbstractContextManager | None = None) -> None:
        """Install what was rebuilt in `built` (a `shadow`): reference swaps, under `lock`."""
        with lock if lock is not None else nullcontext():
            self.pos, self.slot, self.blocks = built.pos, built.slot, built.blocks
            self.used, self.holes, self.cutoff = built.used, built.holes, built.cutoff
            self.ends_touched = built.ends_touched

    def reserve(self, keys: list, lock: AbstractContextManager | None = None) -> None:
        """Before rows of `keys` (one per row) go in under `lock`: grow the arena beside the table
        if the push could outgrow it, so that no growth copies the arena while queries wait.  A
        bound, not the exact need: each touched segment may move (twice, for a few rows appended
        one by one), each time with a quarter's slack.  The growth is geometric as in `_grow`.
        Likewise the block sparse tables get the levels the longest touched segment may need."""
        slots = self.lookup(keys)
        if len(slots) > 1:
            slots = np.unique(slots)
        lens = self.slot["len"][slots]
        rows = int(lens.sum()) + len(keys)
        # a longer segment may need more levels of the block sparse tables (rebuilt over the arena)
        levels = ((int(lens.max()) + len(keys)) // BLOCK + 1).bit_length()
        if any(tbl.shape[0] < levels for tbl in self.blocks.values()):
            built = self.shadow(derived=False)
            built._rebuild_blocks(levels)
            with lock if lock is not None else nullcontext():
                self.blocks = built.blocks
        need = self.used + 3 * rows + 8 * (len(slots) + len(keys)) + BLOCK
        if need <= len(self.pos["time"]):
            return
        built = copy.copy(self)
        built.pos, built.blocks = dict(self.pos), dict(self.blocks)
        try:
            built._grow(need)
        except MemoryError:  # the bound is past the arena's limit: the push grows it if it must
            return
        with lock if lock is not None else nullcontext():
            self.pos, self.blocks = built.pos, built.blocks

    def compaction_due(self) -> bool:
        """Whether holes are a quarter of the arena (and worth a rewrite)."""
        return self.holes >= COMPACT_HOLES and self.holes * 4 >= self.used

    def compact(self, lock: AbstractContextManager | None = None, force: bool = False) -> None:
        """Compact when due (or `force`: an exact-size arena), built off to the side and
        published under `lock` (see the module's docstring)."""
        if force or self.compaction_due():
            built = self.shadow(derived=False)  # the rewrite allocates new per-position arrays
            built._maybe_compact(force)
            self.publish(built, lock)

    def shrink(self, lock: AbstractContextManager | None = None) -> None:
        """Drop spare capacity (after a bulk load): an exact-size arena, slack added on growth."""
        self.compact(lock, force=True)

    def _maybe_compact(self, force: bool = False) -> None:
        """Rewrite the arena without holes, in place, once they are a quarter of it (every hole
        row came from moving a segment that had outgrown its room, so the rewrite is amortised
        over the rows pushed since).  Run on a `shadow` where readers may be reading."""
        if not force and not self.compaction_due():
            return
        S = self.slot
        st, ln = S["start"][:self.n_slots].copy(), S["len"][:self.n_slots]
        cap = ln + (ln // 8 if not force else 0)  # slack in proportion: a short segment moves when it grows
        new_st = np.cumsum(cap) - cap
        total = int(cap.sum())
        src, dst = ranges(st, ln), ranges(new_st, ln)
        size = max(-(-total // BLOCK) * BLOCK, BLOCK)
        pos = {}
        for k, a in self.pos.items():
            b = np.zeros(size, a.dtype)
            b[dst] = a[src]
            pos[k] = b
        self.pos, self.used, self.holes = pos, total, 0
        S["start"][:self.n_slots], S["cap"][:self.n_slots] = new_st, cap
        self._rebuild_blocks()
