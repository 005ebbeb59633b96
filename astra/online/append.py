"""Single-row, in-order appends to a table: O(1) updates of one entity's segment.

A pushed row that is not older than its entity's newest row goes at the end of the segment:
its prefix values extend the previous ones, a min/max block is summarised only when the row
completes it, and count_distinct window ends are updated in place.  A full segment moves to the
end of the arena with room to grow.  Everything else takes `Table.insert`'s general path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from astra.online.arrays import BLOCK, _wrap64, identity, two_sum_err

if TYPE_CHECKING:
    from astra.online.table import Input


class Appending:
    """The append path of `astra.online.table.Table` (mixed into it; uses its arrays)."""

    def append(self, slot: int, raw: dict[str, np.ndarray], j: int) -> bool:
        """Append row j of a batch to its entity's segment when it is in order (time >= the
        segment's last) and the segment has room: the row's prefix values from the previous
        row's, count_distinct ends by one replacement and one insertion into the segment's sorted
        ends, and the block sparse table only when the row completes a block.  A full segment
        first moves to the arena's end.  Returns False, the row not stored, when it does not
        apply (the caller then uses `insert`)."""
        S, P = self.slot, self.pos
        st, ln, cap = int(S["start"][slot]), int(S["len"][slot]), int(S["cap"][slot])
        t = int(raw["time"][j])
        if ln and int(P["time"][st + ln - 1]) > t:
            return False
        if any(kind in inp.needs and inp.numeric and f"{kind}:{i}" not in self.blocks
               for i, inp in enumerate(self.inputs) for kind in ("min", "max")):
            return False
        moved = ln >= cap
        if moved:
            st = self._move(slot, st, ln, cap)
            P = self.pos
        p = st + ln
        complete = (p + 1) % BLOCK == 0 and (p + 1) // BLOCK - 1 >= -(-st // BLOCK)
        if complete and self.blocks:  # a longer segment may need more sparse-table levels
            levels = max(1, ((p + 1) // BLOCK - -(-st // BLOCK)).bit_length())
            if any(tbl.shape[0] < levels for tbl in self.blocks.values()):
                return False
        for key in self.raw_keys:
            P[key][p] = raw[key][j]
        S["len"][slot] = ln + 1
        for i, inp in enumerate(self.inputs):
            key = self.inc_key[i]
            inc = True if key is None else bool(P[key][p])
            names = self.names[i]
            if names.cnt is not None and names.cnt in P:
                P[names.cnt][p] = (int(P[names.cnt][p - 1]) if ln else 0) + inc
            if "sum" in inp.needs:
                x = P[f"v:{inp.column}"][p] if inc else 0
                if inp.sum_int:
                    P[names.shi][p] = _wrap64(int(x) + (int(P[names.shi][p - 1]) if ln else 0))
                else:  # `exact_sums.derive` on a one-row batch, in Python floats
                    x = float(x)
                    h = float(P[names.shi][p - 1]) if ln else 0.0
                    s = h + x
                    P[names.shi][p] = s
                    shm, sem, slast = S[f"shm:{i}"], S[f"sem:{i}"], S[f"slast:{i}"]
                    e = two_sum_err(h, x, s)
                    last = float(slast[slot]) if ln else 0.0
                    if last == last:  # the segment's end prefix is known: continue it
                        last += e
                        slast[slot] = last
                        old = float(sem[slot]) if ln else 0.0
                        sem[slot] = abs(last) if not ln or (old == old and not abs(last) <= old) else old
                    else:  # not known: the bound grows by this step's error
                        sem[slot] = float(sem[slot]) + abs(e)
                    old = float(shm[slot]) if ln else 0.0
                    if not ln or (old == old and not abs(s) <= old):  # the largest |shi|; NaN stays
                        shm[slot] = abs(s)
            if inp.windows:
                self._append_ends(i, inp, slot, st, ln, t, inc)
            if complete and inp.numeric:
                for kind in ("min", "max"):
                    if kind in inp.needs:
                        self._complete_block(i, inp, kind, st, p // BLOCK)
        return True  # a move may leave compaction due: the caller's (`Table.compact`)

    def _move(self, slot: int, st: int, ln: int, cap: int) -> int:
        """Move a full segment to the arena's end with room to grow (as `insert` does); its
        segment-relative prefixes copy as they are, its full blocks are rebuilt there."""
        newcap = ln + 1 + max((ln + 1) // 4, 4)
        if ln and st + cap == self.used:  # the arena's last segment grows where it is: no copy, no hole
            self._grow(st + newcap)
            self.used = st + newcap
            self.slot["cap"][slot] = newcap
            return st
        new_st = self.used
        self._grow(self.used + newcap)
        for a in self.pos.values():
            a[new_st:new_st + ln] = a[st:st + ln]
        self.holes += cap
        self.used += newcap
        self.slot["start"][slot], self.slot["cap"][slot] = new_st, newcap
        if ln // BLOCK:  # may hold full blocks at the new place
            seg, end = np.array([new_st], np.int64), np.array([new_st + ln], np.int64)
            for i, inp in enumerate(self.inputs):
                for kind in ("min", "max"):
                    if kind in inp.needs and inp.numeric:
                        self._derive_blocks(i, inp, kind, seg, seg, end)
        return new_st

    def _complete_block(self, i: int, inp: Input, kind: str, st: int, blk: int) -> None:
        """Sparse-table entries of block `blk`, just completed by an append: its own extreme, and
        per level the one entry that ends at it (the only new range within the segment)."""
        tbl = self.blocks[f"{kind}:{i}"]
        v = self.pos[f"v:{inp.column}"]
        lo = blk * BLOCK
        pos = np.arange(lo, lo + BLOCK)
        red = np.minimum if kind == "min" else np.maximum
        tbl[0, blk] = red.reduce(np.where(self.included(i, pos), v[lo:lo + BLOCK], identity(v.dtype, kind)))
        seg_lb = -(-st // BLOCK)
        for lev in range(1, tbl.shape[0]):
            e = blk - (1 << lev) + 1
            if e < seg_lb:
                break
            tbl[lev, e] = red(tbl[lev - 1, e], tbl[lev - 1, e + (1 << (lev - 1))])
