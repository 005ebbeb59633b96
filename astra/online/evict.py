"""Eviction from a table: rows older than the cutoff leave the arena, folded into per-slot state.

Windowed aggregations need nothing of an evicted row; lifetime ones keep, per entity slot, what
the evicted rows contributed: counts and sums folded into the slot's base (the retained rows'
prefixes start again after them), the running min/max, the power sums for variance, the first
and last value and the newest values for `last_k`.  Each is the aggregation's own state, folded
and merged by the numpy forms of its algebra (`astra.ops.aggregations.algebra`); the store only says
where the states live and translates representations (string codes to their ranks).  Each segment then
starts after its evicted rows, and the arena is compacted when holes dominate.  An eviction step
reads every retained row of the segments it cuts, so it runs in a copy of the table that is then
published (`astra.online.compaction`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np

from astra.online import exact_sums
from astra.online.arrays import count_before, ranges
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.aggregations.algebra import Summing

COUNT = AGGREGATIONS["count"].algebra


class Evicting:
    """The eviction path of `astra.online.table.Table` (mixed into it; uses its arrays)."""

    def _fold_extremes(self, i: int, kinds: list[str], sel: np.ndarray, gone: np.ndarray, inc: np.ndarray,
                       cuts: np.ndarray) -> None:
        """Fold the included evicted values into each slot's running min and/or max (the
        aggregations' own fold and merge)."""
        S, column = self.slot, self.inputs[i].column
        v = self.pos[f"v:{column}"][gone]
        # strings are dictionary codes: compare their ranks in string order instead
        order, rank = self._string_order(column) if column in self.dicts else (None, None)
        if rank is not None:
            v = rank[v]
        for kind in kinds:
            algebra = AGGREGATIONS[kind].algebra
            val, has = S[f"ex:{kind}:{i}"], S[f"exm:{kind}:{i}"]
            old = has[sel]
            cur = val[sel] if rank is None else rank[val[sel]]
            best, both = algebra.merge_arrays((cur, old), algebra.fold_runs(v, inc, cuts))
            if rank is not None:  # back to codes (slots with neither keep theirs)
                best = np.where(both, order[np.clip(best, 0, len(order) - 1)], val[sel])
            val[sel] = best
            has[sel] = both

    def _string_order(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(the codes of a string column in string order, each code's rank in that order)."""
        strings = self.decode(column, np.arange(len(self.dicts[column][0])))
        order = np.argsort(strings, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return order, rank

    def _fold_moments(self, i: int, sel: np.ndarray, gone: np.ndarray, inc: np.ndarray, kk: np.ndarray) -> None:
        """Fold the included evicted values into each slot's power sums (variance's algebra in
        float64, shifted by each slot's first evicted value; see `_slot_dtypes`)."""
        S = self.slot
        seg = np.repeat(np.arange(len(sel)), kk)[inc]
        x = self.pos[f"v:{self.inputs[i].column}"][gone[inc]].astype(np.float64)
        names = (f"vn:{i}", f"vc:{i}", f"vs1:{i}", f"vs2:{i}")
        state = AGGREGATIONS["variance"].algebra.update_runs(*(S[k][sel] for k in names), x, seg, len(sel))
        for k, a in zip(names, state):
            S[k][sel] = a

    def _fold_newest(self, i: int, sel: np.ndarray, gone: np.ndarray, inc: np.ndarray, kk: np.ndarray) -> None:
        """Keep the `last_k` newest included values of each slot's evicted rows: the ones evicted
        now (newest first), then those kept from earlier evictions, at most `last_k` in all."""
        P, S, k = self.pos, self.slot, self.inputs[i].last_k
        seg = np.repeat(np.arange(len(sel)), kk)[inc]  # per included evicted row: its slot (in sel)
        v = P[f"v:{self.inputs[i].column}"][gone[inc]]
        old = np.stack([S[f"lk:{i}:{r}"][sel] for r in range(k)])
        old_n = S[f"lkn:{i}"][sel].astype(np.int64)
        kept, n = AGGREGATIONS["last_k"].algebra.update_runs(old, old_n, v, seg, len(sel), k)
        for r in range(k):
            S[f"lk:{i}:{r}"][sel] = kept[r]
        S[f"lkn:{i}"][sel] = n

    def _fold_nearest(self, i: int, name: str, sel: np.ndarray, gone: np.ndarray, inc: np.ndarray,
                      cuts: np.ndarray) -> None:
        """The first (or last) evicted value of each slot: `first`'s (`last`'s) fold and merge."""
        S, tag = self.slot, "elv" if name == "last" else "efv"
        value, has = S[f"{tag}:{i}"], S[f"{tag[:2]}m:{i}"]
        algebra = AGGREGATIONS[name].algebra
        at = algebra.fold_runs(gone, inc, cuts)
        take = algebra.merge_arrays(has[sel], at >= 0)
        value[sel[take]] = self.pos[f"v:{self.inputs[i].column}"][at[take]]
        has[sel[take]] = True

    def evict(self, cutoff: int, lock: AbstractContextManager | None = None) -> None:
        """Drop rows with time < cutoff (keeping the last one per entity for as-of lookups),
        folding what lifetime aggregations need into each slot's running state.  Built in a copy
        of the table and published under `lock` (`astra.online.compaction`): readers holding it
        see the rows before or after, and never wait for the rebuild."""
        if self.evict_window is None or (self.cutoff is not None and cutoff <= self.cutoff):
            return
        built = self.shadow()
        with np.errstate(invalid="ignore", over="ignore"):  # infinite sums: see `_derive`
            built._evict(cutoff)
        self.publish(built, lock)

    def _evict(self, cutoff: int) -> None:
        self.cutoff = cutoff
        P, S, m = self.pos, self.slot, self.n_slots
        st, ln = S["start"][:m], S["len"][:m]
        k = count_before(P["time"], st, ln, np.full(m, cutoff, np.int64)) - int(self.keep_last)
        sel = np.flatnonzero(k > 0)
        if not len(sel):
            return
        s, kk, n = st[sel], k[sel], ln[sel]
        e = s + kk - 1  # last evicted position
        rest = ranges(s + kk, n - kk)  # retained rows of the evicted segments
        g = np.repeat(np.arange(len(sel)), n - kk)
        for i, inp in enumerate(self.inputs):
            if f"cnt:{i}" in P:  # the evicted rows' count: the prefix count at the last of them
                c0 = P[f"cnt:{i}"][e]
                if f"bcnt:{i}" in S:
                    S[f"bcnt:{i}"][sel] = COUNT.merge(S[f"bcnt:{i}"][sel], c0, None)
                P[f"cnt:{i}"][rest] -= c0[g]
            elif f"bcnt:{i}" in S:
                S[f"bcnt:{i}"][sel] = COUNT.merge(S[f"bcnt:{i}"][sel], kk, None)
            if f"shi:{i}" in P:
                h0 = P[f"shi:{i}"][e]
                if inp.sum_int:
                    if inp.lifetime:
                        S[f"bshi:{i}"][sel] = Summing.merge_int64(S[f"bshi:{i}"][sel], h0)
                    P[f"shi:{i}"][rest] -= h0[g]
                else:  # the retained rows summed again from their start: no rebasing error
                    if inp.lifetime:  # the evicted rows' double-double sum into the slot's base
                        _, (h0, l0, emax, _) = exact_sums.rebuild(self, i, ranges(s, kk), kk)
                        exact_sums.fold_exactly(self, i, sel, s, kk, h0, l0, emax)
                    hi, (_, last, emax, hmax) = exact_sums.rebuild(self, i, rest, n - kk)
                    P[f"shi:{i}"][rest] = hi
                    S[f"shm:{i}"][sel], S[f"sem:{i}"][sel], S[f"slast:{i}"][sel] = hmax, emax, last
            folds = [kind for kind in ("min", "max") if f"ex:{kind}:{i}" in S]
            newest, moments = f"lkn:{i}" in S, f"vn:{i}" in S
            if f"elv:{i}" in S or f"efv:{i}" in S or folds or newest or moments:  # running state of evicted rows
                gone = ranges(s, kk)
                inc = self.included(i, gone)
                cuts = np.cumsum(kk) - kk
                if newest:
                    self._fold_newest(i, sel, gone, inc, kk)
                if moments:
                    self._fold_moments(i, sel, gone, inc, kk)
                if folds:
                    self._fold_extremes(i, folds, sel, gone, inc, cuts)
                if f"elv:{i}" in S:
                    self._fold_nearest(i, "last", sel, gone, inc, cuts)
                if f"efv:{i}" in S:
                    self._fold_nearest(i, "first", sel, gone, inc, cuts)
        S["start"][sel] += kk
        S["len"][sel] -= kk
        S["cap"][sel] -= kk
        # count_distinct ends: the retained rows' own (an end depends on later rows only), so that
        # a push can update them from its rows on (`_derive_ends`); eviction already reads every
        # retained row of these segments, at most once per eighth of the retention
        st2, n2 = S["start"][sel].astype(np.int64), S["len"][sel].astype(np.int64)
        live = n2 > 0
        for i, inp in enumerate(self.inputs):
            if inp.windows and live.any():
                self._rebuild_ends(i, inp, st2[live], n2[live], inp.windows)
                self._forget_values(i, sel[live])  # values may have left with their rows
        self.holes += int(kk.sum())
        self._maybe_compact()
