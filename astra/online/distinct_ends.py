"""count_distinct window ends of a table: per row, when it stops counting, kept sorted per segment.

count_distinct over a window of length w uses, per row i, end_i = min(t_i + w, time of the next
row with the same value) (an excluded row: t_i), kept sorted within the segment: the distinct
count at t is #{included rows before t} - #{end_i < t}.  A lifetime window (w None) has no
t_i + w: a row ends at its value's next row, or never (`BIG`).

Ends are updated from the first changed row on, so a push costs what its rows change, not the
entity's history: appended rows change, per value, the end of the latest older row with it
alone, and that row is within a window of the new ones (`_append_ends_batch`); rows merged into
the middle recompute the ends of the rows of one window (`_merge_ends`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from astra.online.arrays import BIG, count_before, ranges
from astra.online.last_seen import LONG_WINDOW

if TYPE_CHECKING:
    from astra.online.table import Input

REBUILD_ROWS = 32  # count_distinct ends of segments up to this many rows per new row are rebuilt whole
# a row appended alone to a segment longer than this updates its ends as `_append_ends` does (a
# few binary searches and slice shifts), cheaper there than the vectorised path's gathers
ONE_ROW = 64
_M64 = (1 << 64) - 1


def _value_keys(slot: int, values: np.ndarray) -> list[int]:
    """One int per (slot, value): the slot above 64 bits, the value's (integer) bits below."""
    return [(slot << 64) | (x & _M64) for x in values.tolist()]


class DistinctEnds:
    """The count_distinct ends of `astra.online.table.Table` (mixed into it; uses its arrays)."""

    def _ends(self, i: int, inp: Input, rows: np.ndarray, g: np.ndarray, windows: tuple) -> list[np.ndarray]:
        """Per count_distinct window (of `windows`) of input i, each row's end (unsorted), for rows `rows` of
        groups g: min(its time + w, the time of the group's next included row with its value),
        or its time when it is excluded.  Exact for a row whose next such row is in `rows`."""
        P = self.pos
        inc = self.included(i, rows)
        t = P["time"][rows]
        v = P[f"v:{inp.column}"][rows]
        order = np.lexsort((np.arange(len(rows)), v, g))  # by group, value, position
        sel = order[inc[order]]  # included rows only
        t_next = np.full(len(rows), BIG, np.int64)
        if len(sel) > 1:
            same = (g[sel][1:] == g[sel][:-1]) & (v[sel][1:] == v[sel][:-1])
            t_next[sel[:-1][same]] = t[sel[1:][same]]  # the next row with the same value
        out = []
        for w in windows:
            end = t_next if w is None else np.minimum(t_next, t + w)
            out.append(np.where(inc, end, t))  # excluded rows leave at once
        return out

    def _derive_ends(self, i: int, inp: Input, slots: np.ndarray, st: np.ndarray, n: np.ndarray,
                     p: np.ndarray, old_n: np.ndarray) -> None:
        """count_distinct ends after rows were merged into segments from relative position p on
        (old length old_n, new n), touching only what can have changed.

        With t0 the time at p (the earliest new row's), a row's end changes only to the time of a
        new row with its value, so only ends >= t0 can change, and only rows with time >= t0 - w
        have those (an end is at most time + w).  Appends (p = old_n) change, per value of the new
        rows, the end of its latest older row alone (`_append_ends_batch`); rows merged into the
        middle recompute the ends of the rows of one window (`_merge_ends`).  A lifetime window
        (w None) has no such bound: appends change one old end per value the segment already
        held (`_append_ends_lifetime`), merges rebuild it whole."""
        if int(n.sum()) <= REBUILD_ROWS * int((n - old_n).sum()):  # short segments: rebuilding them
            self._rebuild_ends(i, inp, st, n, inp.windows)  # costs less than the bookkeeping below
            self.ends_touched += int(n.sum())
            self._forget_values(i, slots)
            return
        appended = p == old_n
        one = appended & (n - old_n == 1) & (old_n > ONE_ROW)
        if one.any():  # one row appended to a long segment: binary searches and a slice shift each
            for j in np.flatnonzero(one).tolist():
                r = int(st[j] + old_n[j])
                self._append_ends(i, inp, int(slots[j]), int(st[j]), int(old_n[j]), int(self.pos["time"][r]),
                                  bool(self.included(i, [r])[0]))
            if one.all():
                return
            rest = ~one
            slots, st, n, p, old_n, appended = slots[rest], st[rest], n[rest], p[rest], old_n[rest], appended[rest]
        for w in inp.windows:
            if w is None:
                if appended.any():
                    a = np.flatnonzero(appended)
                    self._append_ends_lifetime(i, inp, slots[a], st[a], n[a], old_n[a])
                if not appended.all():
                    m = np.flatnonzero(~appended)
                    self._rebuild_ends(i, inp, st[m], n[m], (None,))
                    self.ends_touched += int(n[m].sum())
                    self._forget_values(i, slots[m])
                continue
            if appended.any():
                a = np.flatnonzero(appended)
                if self._indexable(inp):  # long windows: the values' latest rows looked up, not read
                    wide = count_before(self.pos["time"], st[a], old_n[a], self.pos["time"][st[a] + old_n[a]] - w)
                    long = old_n[a] - wide > LONG_WINDOW
                    for j in a[long].tolist():
                        self._append_ends_long(i, inp, w, int(slots[j]), int(st[j]), int(n[j]), int(old_n[j]))
                    a = a[~long]
                if len(a):
                    self._append_ends_batch(i, inp, w, st[a], n[a], old_n[a])
            if not appended.all():
                m = np.flatnonzero(~appended)
                self._merge_ends(i, inp, w, st[m], n[m], p[m], old_n[m])
        if appended.any():
            self._note_appended(i, inp, slots[appended], st[appended], n[appended], old_n[appended])
        if not appended.all():
            self._forget_last_seen(i, slots[~appended])

    def _merge_ends(self, i: int, inp: Input, w: int, st, n, p, old_n) -> None:
        """`_derive_ends` for segments with rows merged before older ones: the ends >= t0 are
        those of the rows with time >= t0 - w (whose next equal values are all among them)."""
        P, m = self.pos, len(st)
        key = f"dend:{i}:{w}"
        t0 = P["time"][st + p]
        lo = count_before(P["time"], st, n, t0 - w)
        rows, g = ranges(st + lo, n - lo), np.repeat(np.arange(m), n - lo)
        (end,) = self._ends(i, inp, rows, g, (w,))
        keep = end >= t0[g]
        q = count_before(P[key], st, old_n, t0)  # old ends < t0: unchanged
        end, g = end[keep], g[keep]
        # a segment whose ends are not its rows' (saved by a version that evicted the smallest
        # ends instead of the evicted rows') is rebuilt whole
        ok = np.bincount(g, minlength=m) == n - q
        if not ok.all():
            self._rebuild_ends(i, inp, st[~ok], n[~ok], (w,))
            end, g = end[ok[g]], g[ok[g]]
        P[key][ranges((st + q)[ok], (n - q)[ok])] = end[np.lexsort((end, g))]
        self.ends_touched += len(rows)

    def _append_ends_batch(self, i: int, inp: Input, w: int, st, n, old_n) -> None:
        """`_derive_ends` for segments whose new rows (from old_n on) all come after their old
        ones.  A new included row ends at the next new row with its value or at its time + w (an
        excluded one at its time); per value, the latest older included row at time r >= t0 - w
        ends at min(r + w, the first new row's time) instead of r + w.  The sorted ends >= t0
        lose those old ends and gain the new ones: a merge of sorted runs, no sort of history."""
        P, m = self.pos, len(st)
        key = f"dend:{i}:{w}"
        k = n - old_n
        new = ranges(st + old_n, k)
        gn = np.repeat(np.arange(m), k)
        (new_end,) = self._ends(i, inp, new, gn, (w,))
        inc = self.included(i, new)
        t0 = P["time"][st + old_n]
        v = P[f"v:{inp.column}"]
        # the first new included row of each (segment, value)
        nv, ng, nt = v[new][inc], gn[inc], P["time"][new][inc]
        order = np.lexsort((nv, ng))  # stable: the earliest first within (segment, value)
        nv, ng, nt = nv[order], ng[order], nt[order]
        first = np.ones(len(nv), bool)
        first[1:] = (ng[1:] != ng[:-1]) | (nv[1:] != nv[:-1])
        nv, ng, nt = nv[first], ng[first], nt[first]
        # older included rows of the last window with one of those values (same segment)
        lo = count_before(P["time"], st, old_n, t0 - w)
        old = ranges(st + lo, old_n - lo)
        go = np.repeat(np.arange(m), old_n - lo)
        self.ends_touched += len(old) + len(new)
        removed, added = [np.zeros(0, np.int64)] * 2, [new_end, gn]
        if len(nv) and len(old):
            ov = v[old]
            # each older row's value among the new rows' values, then its (segment, value) pair
            # among theirs: two binary searches per row, in C
            uniq = np.unique(nv)
            hit = np.flatnonzero(np.isin(ov, uniq) & self.included(i, old))  # one linear pass
            c = np.searchsorted(uniq, ov[hit])
            pairs = ng.astype(np.int64) * len(uniq) + np.searchsorted(uniq, nv)  # sorted: by segment, value
            mine = go[hit].astype(np.int64) * len(uniq) + c
            j = np.minimum(np.searchsorted(pairs, mine), len(pairs) - 1)
            found = pairs[j] == mine
            oi, oj = old[hit][found], j[found]
            if len(oi):
                order = np.lexsort((oi, oj))  # the latest such older row per pair
                oi, oj = oi[order], oj[order]
                last = np.ones(len(oi), bool)
                last[:-1] = oj[1:] != oj[:-1]
                oi, oj = oi[last], oj[last]
                was = P["time"][oi] + w
                now = np.minimum(was, nt[oj])
                ch = now != was
                removed = [was[ch], ng[oj][ch]]
                added = [np.concatenate((new_end, now[ch])), np.concatenate((gn, ng[oj][ch]))]
        # the sorted ends >= t0 lose `removed` and gain `added`: positions by binary search within
        # each segment's run, then one delete and one insert (memory moves, no sort of the run)
        q = count_before(P[key], st, old_n, t0)  # old ends < t0: unchanged
        tail_n = old_n - q
        tail = P[key][ranges(st + q, tail_n)]
        off = np.cumsum(tail_n) - tail_n  # each segment's run in `tail`
        if len(removed[0]):
            order = np.lexsort(removed[::-1])  # by segment, then end: equal ends take the next copies
            rv, rg = removed[0][order], removed[1][order]
            run = np.ones(len(rv), bool)
            run[1:] = (rv[1:] != rv[:-1]) | (rg[1:] != rg[:-1])
            nth = np.arange(len(rv)) - np.maximum.accumulate(np.where(run, np.arange(len(rv)), 0))
            tail = np.delete(tail, off[rg] + count_before(tail, off[rg], tail_n[rg], rv) + nth)
            tail_n = tail_n - np.bincount(rg, minlength=m)
            off = np.cumsum(tail_n) - tail_n
        ag = added[1]
        at = off[ag] + count_before(tail, off[ag], tail_n[ag], added[0] + 1)  # after equal ends
        order = np.lexsort((added[0], ag, at))  # np.insert keeps this order among equal positions
        tail = np.insert(tail, at[order], added[0][order])
        P[key][ranges(st + q, n - q)] = tail

    def _append_ends(self, i: int, inp: Input, slot: int, st: int, ln: int, t: int, inc: bool) -> None:
        """count_distinct ends after appending a row at relative position ln (time t, not before
        any row of the segment): per window, the previous included row with its value now ends at
        t (or earlier), and the new row's end goes in.  A windowed end is found among the rows of
        the widest window (older ones already end by t); a lifetime window only asks whether the
        segment held the value (`_held_before`): then one `BIG` end becomes t."""
        P = self.pos
        v = P[f"v:{inp.column}"]
        finite = [w for w in inp.windows if w is not None]
        prev_t = None
        if inc and ln and finite:
            lo = st + int(np.searchsorted(P["time"][st:st + ln], t - max(finite), "right"))
        if inc and ln and finite and (st + ln - lo > LONG_WINDOW or slot in self.last_seen.get(i, ())) \
                and self._indexable(inp):  # a long window: the value's latest row looked up (`LastSeen`)
            values, times = self._last_seen(i, inp, slot, st, ln)
            k = int(np.searchsorted(values, v[st + ln]))
            if k < len(values) and values[k] == v[st + ln]:
                prev_t = int(times[k])
        elif inc and ln and finite:
            same = v[lo:st + ln] == v[st + ln]
            key = self.inc_key[i]
            if key is not None:
                same &= P[key][lo:st + ln]
            hit = np.flatnonzero(same)
            self.ends_touched += st + ln - lo
            if len(hit):
                prev_t = int(P["time"][lo + int(hit[-1])])
        if inc and slot in self.last_seen.get(i, ()):  # the index follows its segment's rows
            self._note_one(i, slot, v[st + ln], t)
        for w in inp.windows:
            seg = P[f"dend:{i}:{w}"][st:st + ln + 1]
            if w is None:
                self._append_lifetime_end(i, inp, slot, st, ln, t, inc, seg)
                continue
            if prev_t is not None:  # its end was prev_t + w; now min(t, prev_t + w)
                old, new = prev_t + w, min(t, prev_t + w)
                if new != old:
                    k = int(np.searchsorted(seg[:ln], old, "right")) - 1
                    k2 = int(np.searchsorted(seg[:k], new, "right"))
                    seg[k2 + 1:k + 1] = seg[k2:k].copy()
                    seg[k2] = new
                    self.ends_touched += k - k2
            end = t + w if inc else t
            r = int(np.searchsorted(seg[:ln], end, "right"))
            if r < ln:
                seg[r + 1:ln + 1] = seg[r:ln].copy()
                self.ends_touched += ln - r
            seg[r] = end

    def _append_lifetime_end(self, i: int, inp: Input, slot: int, st: int, ln: int, t: int, inc: bool,
                             seg: np.ndarray) -> None:
        """`_append_ends` for the lifetime window: the sorted ends are finite ones (at most t) then
        `BIG`s; an excluded row's end t, or a held value's previous row's new end t, takes the
        first `BIG`'s place, and a `BIG` goes last (for the new row or the one displaced)."""
        c = int(np.searchsorted(seg[:ln], BIG, "left"))  # the finite ends
        held = False
        if inc:
            values = self._held_values(i, inp, slot, st, ln)
            q = (slot << 64) | (int(self.pos[f"v:{inp.column}"][st + ln]) & _M64)
            held = q in values
            values.add(q)
        if (not inc or held) and c < ln:
            seg[c] = t
        elif not inc:  # no BIG to displace: the end goes last
            seg[ln] = t
            return
        seg[ln] = BIG

    def _append_ends_lifetime(self, i: int, inp: Input, slots, st, n, old_n) -> None:
        """`_derive_ends` of the lifetime window for segments whose new rows (from old_n on) all
        come after their old ones.  Every old end that is not `BIG` is at most the first new time
        and every new end at least it, so the sorted ends keep their old finite prefix, then the
        new finite ends, then `BIG`s: a new included row ends at the next new row with its value
        (else never), an excluded one at its time, and per value the segment already held (its
        last old row ended never) one `BIG` becomes the time of the value's first new row.
        Positions already holding `BIG` stay: the work is the new rows', not the segment's."""
        P, m = self.pos, len(st)
        key = f"dend:{i}:None"
        k = n - old_n
        new = ranges(st + old_n, k)
        gn = np.repeat(np.arange(m), k)
        (new_end,) = self._ends(i, inp, new, gn, (None,))
        inc = self.included(i, new)
        nv, ng, nt = P[f"v:{inp.column}"][new][inc], gn[inc], P["time"][new][inc]
        order = np.lexsort((nv, ng))  # stable: the earliest first within (segment, value)
        nv, ng, nt = nv[order], ng[order], nt[order]
        first = np.ones(len(nv), bool)
        first[1:] = (ng[1:] != ng[:-1]) | (nv[1:] != nv[:-1])
        nv, ng, nt = nv[first], ng[first], nt[first]
        held = self._held_before(i, inp, slots, st, old_n, ng, nv)
        fin = new_end != BIG
        vals = np.concatenate((new_end[fin], nt[held]))
        grp = np.concatenate((gn[fin], ng[held]))
        order = np.lexsort((vals, grp))
        a = np.bincount(grp, minlength=m)
        c = count_before(P[key], st, old_n, np.full(m, BIG, np.int64))  # the old finite ends
        P[key][ranges(st + c, a)] = vals[order]
        lo = np.maximum(c + a, old_n)  # from here on: BIG (before it, old BIGs stay)
        P[key][ranges(st + lo, n - lo)] = BIG
        self.ends_touched += len(new) + len(vals)

    def _held_before(self, i: int, inp: Input, slots, st, old_n, g, values) -> np.ndarray:
        """Per (segment g, value) pair, whether the segment held an included row with the value
        among its first old_n rows; the pairs' values are then recorded as held.  Per slot the
        set of held values is read from its rows once (O(its rows), counted in `ends_touched`)
        and kept up to date by appends after that (`distinct_values`); a rebuilt segment forgets
        its slot's (`_forget_values`)."""
        held = None
        for j in np.unique(g).tolist():
            held = self._held_values(i, inp, int(slots[j]), int(st[j]), int(old_n[j]))
        if held is None:
            return np.zeros(0, bool)
        keys = [(int(slots[j]) << 64) | (x & _M64) for j, x in zip(g.tolist(), values.tolist())]
        out = np.fromiter((q in held for q in keys), bool, len(keys))
        held.update(keys)
        return out

    def _held_values(self, i: int, inp: Input, slot: int, st: int, n: int) -> set[int]:
        """Input i's held values (`_value_keys`), known for `slot` (whose first n rows, from arena
        position st, are read when it is not yet)."""
        held, known = self.distinct_values.setdefault(i, (set(), set()))
        if slot not in known:
            vals = self.pos[f"v:{inp.column}"][st:st + n][self.included(i, np.arange(st, st + n))]
            held.update(_value_keys(slot, np.unique(vals)))
            known.add(slot)
            self.ends_touched += n
        return held

    def _forget_values(self, i: int, slots) -> None:
        """The held values of these slots must be read again from their rows (their segments'
        ends were rebuilt: rows were merged in or replaced)."""
        got = self.distinct_values.get(i)
        if got is not None:
            got[1].difference_update(np.asarray(slots).tolist())
        self._forget_last_seen(i, slots)

    def _forget_last_seen(self, i: int, slots) -> None:
        """The `last_seen` indexes of these slots must be read again from their rows."""
        index = self.last_seen.get(i)
        if index:
            for slot in np.asarray(slots).tolist():
                index.pop(slot, None)

    def _rebuild_ends(self, i: int, inp: Input, st: np.ndarray, n: np.ndarray, windows: tuple) -> None:
        """The sorted count_distinct ends of whole segments (start st, length n), from their rows."""
        rows, g = ranges(st, n), np.repeat(np.arange(len(st)), n)
        for w, end in zip(windows, self._ends(i, inp, rows, g, windows)):
            self.pos[f"dend:{i}:{w}"][rows] = end[np.lexsort((end, g))]
