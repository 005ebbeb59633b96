"""Eviction from a table: rows older than the cutoff leave the arena, folded into per-slot state.

Windowed aggregations need nothing of an evicted row; lifetime ones keep, per entity slot, what
the evicted rows contributed: counts and sums folded into the slot's base (the retained rows'
prefixes start again after them), the
running min/max, the moments for variance and the newest values for `last_k`.  Each segment then
starts after its evicted rows, and the arena is compacted when holes dominate.  An eviction step
reads every retained row of the segments it cuts, so it runs in a copy of the table that is then
published (`astra.online.compaction`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np

from astra.online import exact_sums
from astra.online.arrays import BIG, count_before, identity, ranges


class Evicting:
    """The eviction path of `astra.online.table.Table` (mixed into it; uses its arrays)."""

    def _fold_extremes(self, i: int, kinds: list[str], sel: np.ndarray, gone: np.ndarray, inc: np.ndarray,
                       cuts: np.ndarray) -> None:
        """Fold the included evicted values into each slot's running min and/or max."""
        S, column = self.slot, self.inputs[i].column
        v = self.pos[f"v:{column}"][gone]
        some = np.logical_or.reduceat(inc, cuts)
        # strings are dictionary codes: compare their ranks in string order instead
        order, rank = self._string_order(column) if column in self.dicts else (None, None)
        if rank is not None:
            v = rank[v]
        for kind in kinds:
            red = np.minimum if kind == "min" else np.maximum
            got = red.reduceat(np.where(inc, v, identity(v.dtype, kind)), cuts)
            val, has = S[f"ex:{kind}:{i}"], S[f"exm:{kind}:{i}"]
            old = has[sel]
            cur = val[sel] if rank is None else rank[val[sel]]
            best = np.where(old & some, red(cur, got), np.where(some, got, cur))
            if rank is not None:  # back to codes (slots with neither keep theirs)
                best = np.where(old | some, order[np.clip(best, 0, len(order) - 1)], val[sel])
            val[sel] = best
            has[sel] = old | some

    def _string_order(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(the codes of a string column in string order, each code's rank in that order)."""
        strings = self.decode(column, np.arange(len(self.dicts[column][0])))
        order = np.argsort(strings, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return order, rank

    def _fold_moments(self, i: int, sel: np.ndarray, gone: np.ndarray, inc: np.ndarray, kk: np.ndarray) -> None:
        """Fold the included evicted values into each slot's count and shifted sums (see
        `_slot_dtypes`; a slot's shift is its first evicted value, so no cancellation can be
        larger than the values' own spread)."""
        S = self.slot
        seg = np.repeat(np.arange(len(sel)), kk)[inc]
        x = self.pos[f"v:{self.inputs[i].column}"][gone[inc]].astype(np.float64)
        c = np.bincount(seg, minlength=len(sel))
        vn, shift = S[f"vn:{i}"][sel], S[f"vc:{i}"][sel]
        first = (vn == 0) & (c > 0)
        shift[first] = x[(np.cumsum(c) - c)[first]]
        d = x - shift[seg]
        S[f"vs1:{i}"][sel] += np.bincount(seg, weights=d, minlength=len(sel))
        S[f"vs2:{i}"][sel] += np.bincount(seg, weights=d * d, minlength=len(sel))
        S[f"vn:{i}"][sel], S[f"vc:{i}"][sel] = vn + c, shift

    def _fold_newest(self, i: int, sel: np.ndarray, gone: np.ndarray, inc: np.ndarray, kk: np.ndarray) -> None:
        """Keep the `last_k` newest included values of each slot's evicted rows: the ones evicted
        now (newest first), then those kept from earlier evictions, at most `last_k` in all."""
        P, S, k = self.pos, self.slot, self.inputs[i].last_k
        seg = np.repeat(np.arange(len(sel)), kk)[inc]  # per included evicted row: its slot (in sel)
        v = P[f"v:{self.inputs[i].column}"][gone[inc]]
        c = np.bincount(seg, minlength=len(sel))
        from_end = np.cumsum(c)[seg] - 1 - np.arange(len(seg))  # 0 for each slot's newest
        old = np.stack([S[f"lk:{i}:{r}"][sel] for r in range(k)])
        old_n = S[f"lkn:{i}"][sel].astype(np.int64)
        cols = np.arange(len(sel))
        for r in range(k):
            new = np.zeros(len(sel), v.dtype)
            at = from_end == r
            new[seg[at]] = v[at]
            back = np.clip(r - c, 0, k - 1)  # the r-th value is the (r - c)-th kept one
            S[f"lk:{i}:{r}"][sel] = np.where(r < c, new, np.where(r - c < old_n, old[back, cols], 0))
        S[f"lkn:{i}"][sel] = np.minimum(c + old_n, k)

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
            if f"cnt:{i}" in P:
                c0 = P[f"cnt:{i}"][e]
                if f"bcnt:{i}" in S:
                    S[f"bcnt:{i}"][sel] += c0
                P[f"cnt:{i}"][rest] -= c0[g]
            elif f"bcnt:{i}" in S:
                S[f"bcnt:{i}"][sel] += kk
            if f"shi:{i}" in P:
                h0 = P[f"shi:{i}"][e]
                if inp.sum_int:
                    if inp.lifetime:
                        S[f"bshi:{i}"][sel] += h0
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
                    li = np.maximum.reduceat(np.where(inc, gone, -1), cuts)
                    got = li >= 0
                    S[f"elv:{i}"][sel[got]] = P[f"v:{inp.column}"][li[got]]
                    S[f"elm:{i}"][sel[got]] = True
                if f"efv:{i}" in S:
                    ni = np.minimum.reduceat(np.where(inc, gone, BIG), cuts)
                    got = (ni != BIG) & ~S[f"efm:{i}"][sel]
                    S[f"efv:{i}"][sel[got]] = P[f"v:{inp.column}"][ni[got]]
                    S[f"efm:{i}"][sel[got]] = True
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
