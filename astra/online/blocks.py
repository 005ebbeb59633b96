"""Range min/max of a table: per aggregation input, a sparse table over blocks of `BLOCK` rows.

Level 0 holds each block's extreme of included values; level l, the extreme of 2^l blocks from
each block on, within one entity's segment.  A window reads its two partial blocks directly and
its full blocks by two lookups of one level.  Entries are rebuilt only for the blocks a change
overlaps (and per level the entries reaching them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from astra.online.arrays import BLOCK, identity, ranges

if TYPE_CHECKING:
    from astra.online.table import Input


class Blocks:
    """The block sparse tables of `astra.online.table.Table` (mixed into it; uses its arrays)."""

    def _derive_blocks(self, i: int, inp: Input, kind: str, seg: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Rebuild the sparse table entries of blocks overlapping arena ranges [lo, hi) of segments
        starting at `seg` (and ending at hi)."""
        key = f"{kind}:{i}"
        P = self.pos
        dt = P[f"v:{inp.column}"].dtype
        ident = identity(dt, kind)
        red = np.minimum if kind == "min" else np.maximum
        nb = len(P["time"]) // BLOCK
        seg_lb, seg_hb = -(-seg // BLOCK), hi // BLOCK  # the segments' full blocks
        longest = int((seg_hb - seg_lb).max(initial=0))
        levels = max(1, longest.bit_length())
        tbl = self.blocks.get(key)
        if tbl is not None and tbl.shape[0] < levels:  # a longer segment: rebuild with more levels
            self._rebuild_blocks(levels)
            return
        if tbl is None:
            tbl = self.blocks[key] = np.full((levels, nb), ident, dt)
        b_lo, b_hi = lo // BLOCK, np.maximum(-(-hi // BLOCK), lo // BLOCK)
        keep = b_hi > b_lo
        b_lo, b_hi = b_lo[keep], b_hi[keep]
        if not len(b_lo):
            return
        blocks = np.unique(ranges(b_lo, b_hi - b_lo))
        pos = (blocks[:, None] * BLOCK + np.arange(BLOCK)).ravel()
        vals = np.where(self.included(i, pos), P[f"v:{inp.column}"][pos], ident).reshape(-1, BLOCK)
        tbl[0, blocks] = red.reduce(vals, axis=1)
        seg_lb, seg_hb = seg_lb[keep], seg_hb[keep]
        for lev in range(1, tbl.shape[0]):
            h = 1 << (lev - 1)
            a = np.maximum(b_lo - (1 << lev) + 1, seg_lb)
            b = np.minimum(b_hi, seg_hb - (1 << lev) + 1)
            ok = b > a
            if not ok.any():
                break
            ent = ranges(a[ok], (b - a)[ok])
            tbl[lev, ent] = red(tbl[lev - 1, ent], tbl[lev - 1, ent + h])

    def _rebuild_blocks(self, levels: int = 1) -> None:
        """Recompute every block sparse table over the whole arena (after a compaction)."""
        S = self.slot
        st, ln = S["start"][1:self.n_slots], S["len"][1:self.n_slots]
        live = ln > 0
        st, end = st[live], (st + ln)[live]
        for i, inp in enumerate(self.inputs):
            for kind in ("min", "max"):
                if kind in inp.needs and inp.numeric:
                    old = self.blocks.pop(f"{kind}:{i}", None)
                    n_lev = max(levels, old.shape[0] if old is not None else 1)
                    dt = self.pos[f"v:{inp.column}"].dtype
                    nb = len(self.pos["time"]) // BLOCK
                    self.blocks[f"{kind}:{i}"] = np.full((n_lev, nb), identity(dt, kind), dt)
                    self._derive_blocks(i, inp, kind, st, st, end)
