"""count_distinct ends of long segments: appends found by value, not by scanning the window.

An append to a segment changes, per value of the new rows, the end of the segment's latest
older row with that value (`DistinctEnds._append_ends_batch`).  For a short window the store
finds those rows by reading the window's rows; for an entity whose window holds thousands of
rows (a hot key under a live push stream) that read grew with its history.  Such segments keep,
per table input, their values sorted with the time of each value's latest included row
(`last_seen`), so an append looks its values up (a binary search each) and moves the window's
sorted ends once (one contiguous copy) instead of gathering, sorting and scattering them.

The index covers a segment's rows as they were when it was last updated: every path that adds
rows to a segment updates it (`_note_appended`) or forgets it (`_forget_values`: rebuilt or
merged segments, eviction), and the next long append reads it again from the rows, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from astra.online.table import Input

LONG_WINDOW = 2048  # windows holding more of a segment's rows than this take the indexed path


class LastSeen:
    """Per (input, slot): sorted values and their latest included row's time (mixed into Table)."""

    def _indexable(self, inp: Input) -> bool:
        """Integer-coded values only (ints, bools, string codes): float equality has NaN and -0.0."""
        return self.pos[f"v:{inp.column}"].dtype.kind in "iub"

    def _last_seen(self, i: int, inp: Input, slot: int, st: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Input i's values among the first n rows of `slot`'s segment (from arena position st),
        sorted, with the time of each one's latest included row; read from the rows if unknown."""
        index = self.last_seen.setdefault(i, {})
        got = index.get(slot)
        if got is None:
            rows = np.arange(st, st + n)
            inc = self.included(i, rows)
            v = self.pos[f"v:{inp.column}"][st:st + n][inc][::-1]  # newest first: unique keeps it
            t = self.pos["time"][st:st + n][inc][::-1]
            values, first = np.unique(v, return_index=True)
            got = index[slot] = (values, t[first].copy())
            self.ends_touched += n
        return got

    def _note_appended(self, i: int, inp: Input, slots: np.ndarray, st: np.ndarray, n: np.ndarray,
                       old_n: np.ndarray) -> None:
        """Bring the indexes of these segments (if they have one) up to their rows appended from
        old_n on (all later than the older rows)."""
        index = self.last_seen.get(i)
        if not index:
            return
        for j in np.flatnonzero(np.isin(slots, np.fromiter(index, np.int64, len(index)))).tolist():
            slot = int(slots[j])
            new = np.arange(int(st[j] + old_n[j]), int(st[j] + n[j]))
            inc = self.included(i, new)
            v = self.pos[f"v:{inp.column}"][new][inc][::-1]
            t = self.pos["time"][new][inc][::-1]
            if not len(v):
                continue
            nv, first = np.unique(v, return_index=True)
            nt = t[first]
            values, times = index[slot]
            k = np.searchsorted(values, nv)
            held = k < len(values)
            held[held] = values[k[held]] == nv[held]
            times[k[held]] = nt[held]
            if not held.all():
                index[slot] = (np.insert(values, k[~held], nv[~held]), np.insert(times, k[~held], nt[~held]))
            self.ends_touched += len(new)

    def _note_one(self, i: int, slot: int, value, t: int) -> None:
        """`_note_appended` for one included row (value, time t) appended to `slot`'s segment."""
        values, times = self.last_seen[i][slot]
        k = int(np.searchsorted(values, value))
        if k < len(values) and values[k] == value:
            times[k] = t
        else:
            self.last_seen[i][slot] = (np.insert(values, k, value), np.insert(times, k, t))

    def _append_ends_long(self, i: int, inp: Input, w: int, slot: int, st: int, n: int, old_n: int) -> None:
        """`_append_ends_batch` for one long segment: new rows' ends, and per value of theirs the
        latest older row's end min(its time + w, the value's first new time), merged into the
        sorted ends >= t0 (the first new row's time) by binary searches and one copy."""
        P = self.pos
        new = np.arange(st + old_n, st + n)
        (new_end,) = self._ends(i, inp, new, np.zeros(len(new), np.int64), (w,))
        inc = self.included(i, new)
        nv, first = np.unique(P[f"v:{inp.column}"][new][inc], return_index=True)  # first: the earliest
        nt = P["time"][new][inc][first]
        values, times = self._last_seen(i, inp, slot, st, old_n)
        k = np.searchsorted(values, nv)
        held = k < len(values)
        held[held] = values[k[held]] == nv[held]
        was = times[k[held]] + w  # the older row's end: no later row had its value
        now = np.minimum(was, nt[held])
        changed = now != was
        removed = np.sort(was[changed])
        added = np.sort(np.concatenate((new_end, now[changed])))
        seg = P[f"dend:{i}:{w}"][st:st + n]
        q = int(np.searchsorted(seg[:old_n], P["time"][st + old_n], "left"))  # old ends < t0 stay
        tail = seg[q:old_n]
        if len(removed):  # equal ends: the first, second, ... copy of that end
            run = np.ones(len(removed), bool)
            run[1:] = removed[1:] != removed[:-1]
            idx = np.arange(len(removed))
            nth = idx - np.maximum.accumulate(np.where(run, idx, 0))
            tail = np.delete(tail, np.searchsorted(tail, removed, "left") + nth)
        seg[q:n] = np.insert(tail, np.searchsorted(tail, added, "right"), added)
        self.ends_touched += len(new) + len(removed) + int(np.log2(max(old_n, 2))) * (len(nv) + len(added))
