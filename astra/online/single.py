"""What the generated single-entity plan sees of the store: one entity at one time, in Python scalars.

`Single` is the scalar counterpart of `astra.online.view.Query` for a batch of one: `prepare` finds
the window bounds of a table with one `searchsorted` (or `bisect`) over the entity's segment, and
the primitives the aggregations' `online_one` kernels are written against (`count`, `sum`,
`extreme`, `nearest`, `distinct`, `asof`) read single arena positions, never allocating arrays
for a window.  Every primitive repeats the float operations of its vectorised twin in the same
order, so both plans return the same bits.  Aggregations without a scalar kernel (variance,
last_k, extremes of strings) run their vectorised kernel on a one-query `Query` built on demand
(`view`).  Values are Python objects or numpy scalars; None is null.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from fractions import Fraction

import numpy as np

from astra.online.exact_sums import lifetime_bound, window_bound
from astra.online.table import BLOCK, Table, identity, two_sum_err
from astra.online.view import NEVER, Query, WindowView, session_start
from astra.ops.exact import TOLERANCE, exact_mean, exact_sum
from astra.ops.registry import Vec

_MASK64, _HALF64 = (1 << 64) - 1, 1 << 63
SHORT = 512  # windows of up to this many rows take their extremes from one running extreme


def wrap64(x: int) -> int:
    """A Python int reduced to int64 the way numpy's int64 arithmetic wraps."""
    return ((x + _HALF64) & _MASK64) - _HALF64


def _reduce(v: np.ndarray, included: np.ndarray | None, lo: int, hi: int, red: np.ufunc, ident):
    """The min or max (`red`) of the included values at positions [lo, hi); `ident` when none."""
    x = v[lo:hi] if included is None else v[lo:hi][included[lo:hi]]
    return red.reduce(x) if len(x) else ident


class Single:
    """One entity (a slot per table) at one query time `t` (µs)."""

    __slots__ = ("_cache", "_hops", "_vq", "bounds", "lens", "offsets", "sessions", "slots", "start", "t", "tables")

    def __init__(self, tables: list[Table], slots: list, t: int):
        self.tables, self.slots, self.t = tables, slots, t
        n = len(tables)
        self.start: list = [0] * n
        self.lens: list = [0] * n
        self.bounds: list = [None] * n  # table -> [rows before t - offset for each offset..., sessions..., 0]
        self.offsets: list = [None] * n
        self.sessions: list = [()] * n
        self._cache: dict | None = None
        self._vq: Query | None = None
        self._hops: dict | None = None

    def at(self, hop: int) -> Single:
        """The entity asked at the hop boundary floor(t / hop) * hop (see `Query.at`)."""
        if self._hops is None:
            self._hops = {}
        got = self._hops.get(hop)
        if got is None:
            got = self._hops[hop] = Single(self.tables, self.slots, self.t // hop * hop)
        return got

    def prepare(self, ti: int, offsets: np.ndarray, sessions: tuple = ()) -> None:
        """Rows of the entity with time < t - offset, for every offset (offsets[0] is 0), then the
        rows before each session window's first row (see `Query.prepare`)."""
        tb, s = self.tables[ti], self.slots[ti]
        S = tb.slot
        st, ln = int(S["start"][s]), int(S["len"][s])
        self.start[ti], self.lens[ti], self.offsets[ti], self.sessions[ti] = st, ln, offsets, sessions
        if len(offsets) == 1 and not sessions:  # as-of tables: one bisect over a (usually short) segment
            self.bounds[ti] = [bisect_left(tb.pos["time"], self.t, st, st + ln) - st, 0] if ln else [0, 0]
        elif ln:
            b = np.searchsorted(tb.pos["time"][st:st + ln], self.t - offsets).tolist()
            if sessions:
                b.extend(session_start(tb, inp, gap, st, b[0]) for inp, gap in sessions)
            b.append(0)
            self.bounds[ti] = b
        else:
            self.bounds[ti] = [0] * (len(offsets) + len(sessions) + 1)

    def valid_until(self) -> int:
        """The latest query time whose answer equals the one at `t`, as far as the rows stored
        now go (see `astra.online.view.valid_until`); a hopping window's holds until its next boundary."""
        until = NEVER
        for hop, sub in (self._hops or {}).items():
            until = min(until, sub.t + hop - 1)
        for ti, bd in enumerate(self.bounds):
            if bd is None:
                continue
            st, ln, times = self.start[ti], self.lens[ti], self.tables[ti].pos["time"]
            for b, w in zip(bd, self.offsets[ti].tolist()):
                if b < ln:
                    until = min(until, int(times[st + b]) + w)
        return until

    # ------------------------------------------------------------------ prefix differences
    def count(self, ti: int, i: int, j: int, evicted: bool = True) -> int:
        """Included rows of input i in window j (-1: lifetime, evicted rows included unless not
        `evicted`)."""
        bd = self.bounds[ti]
        b, a = bd[0], bd[j]
        tb = self.tables[ti]
        names = tb.names[i]
        if names.cnt is None:  # count(*): the window's length
            d = b - a
        else:
            P, p = tb.pos[names.cnt], self.start[ti] - 1
            d = (int(P[p + b]) if b else 0) - (int(P[p + a]) if a else 0)
        return d + int(tb.slot[names.bcnt][self.slots[ti]]) if j < 0 and evicted else d

    def sum(self, ti: int, i: int, j: int):
        """Sum of input i's included values in window j: int (wrapped like int64) or float."""
        memo = self._cache
        if memo is None:
            memo = self._cache = {}
        got = memo.get((ti, i, j))  # sum and mean of one window share it
        if got is None:
            got = memo[ti, i, j] = self._sum(ti, i, j)
        return got

    def _sum(self, ti: int, i: int, j: int):
        bd = self.bounds[ti]
        b, a = bd[0], bd[j]
        tb = self.tables[ti]
        names, p = tb.names[i], self.start[ti] - 1
        H = tb.pos[names.shi]
        if tb.inputs[i].sum_int:  # integers: exact, wrapped like numpy's int64
            d = (int(H[p + b]) if b else 0) - (int(H[p + a]) if a else 0)
            return wrap64(d + int(tb.slot[names.bshi][self.slots[ti]])) if j < 0 else wrap64(d)
        hb = float(H[p + b]) if b else 0.0
        s, S = self.slots[ti], tb.slot
        shm, sem = float(S[names.shm][s]), float(S[names.sem][s])
        if j >= 0:  # as `Query.spans` and `WindowView.sum`
            out = hb - (float(H[p + a]) if a else 0.0)
            bound = window_bound(b - a, shm, sem, out) if b > a else 0.0  # empty: exactly 0
            base = []
        else:
            bh, bl = float(S[names.bshi][s]), float(S[names.bslo][s])
            t = hb + bh
            out = t + (bl + two_sum_err(hb, bh, t))
            bound = (lifetime_bound(b, shm, sem, bl, float(S[names.bserr][s]), t, out)
                     if b or bh or bl else 0.0)
            base = [bh, bl]
        if not (bound <= TOLERANCE * abs(out) and math.isfinite(out)):  # as `suspect`, in scalars
            return exact_sum([*base, *self.values(ti, i, j)])
        return out

    def values(self, ti: int, i: int, j: int) -> list:
        """Input i's included non-null values in window j (retained rows), as Python numbers."""
        bd, st, tb = self.bounds[ti], self.start[ti], self.tables[ti]
        rows = np.arange(st + (bd[j] if j >= 0 else 0), st + bd[0])
        v = tb.pos[f"v:{tb.inputs[i].column}"][rows][tb.included(i, rows)]
        return (v if tb.inputs[i].sum_int else v.astype(np.float64)).tolist()

    def mean(self, ti: int, i: int, j: int) -> float | None:
        """Input i's mean over window j (None when empty): the sum over the count, recomputed
        exactly when a float sum overflowed or an int64 sum may have wrapped around (as the
        vectorised kernel, `WindowView.exact_mean`)."""
        n = self.count(ti, i, j)
        if not n:
            return None
        tb, s = self.tables[ti], self.slots[ti]
        total = self.sum(ti, i, j)
        if tb.inputs[i].sum_int:
            if n * float(tb.largest(tb.inputs[i].column)) < 2.0 ** 62:
                return float(total) / n  # float64 / float64, as numpy divides
            base = int(tb.slot[f"bshi:{i}"][s]) if j < 0 else 0
            return float(Fraction(base + sum(self.values(ti, i, j)), n))
        if not math.isinf(total):
            return float(total) / n
        base = [float(tb.slot[f"bshi:{i}"][s]), float(tb.slot[f"bslo:{i}"][s])] if j < 0 else []
        return exact_mean([*base, *self.values(ti, i, j)], n)

    # ------------------------------------------------------------------ rows
    def decode(self, ti: int, column: str, code):
        """The Python value of a stored value (dictionary codes for strings, narrow int64s)."""
        tb = self.tables[ti]
        d = tb.dicts.get(column)
        if d is not None:
            strings = d[0]
            return strings[code] if strings else ""
        return code.item()

    def _included(self, tb: Table, i: int, p: int) -> bool:
        key = tb.inc_key[i]
        return True if key is None else bool(tb.pos[key][p])

    def nearest(self, ti: int, i: int, j: int, latest: bool):
        """The value of the latest (or earliest) included row of input i in window j; for lifetime
        windows the last (first) included evicted value stands in when there is none (first: always
        first).  None when there is neither."""
        tb = self.tables[ti]
        bd, st = self.bounds[ti], self.start[ti]
        b, a = bd[0], bd[j]
        col = tb.inputs[i].column
        p = -1
        if b > a:
            p = st + b - 1 if latest else st + a
            if not self._included(tb, i, p):  # nulls or a rarely true filter at the edge: scan
                got = np.flatnonzero(tb.pos[tb.inc_key[i]][st + a:st + b])
                p = st + a + int(got[-1 if latest else 0]) if len(got) else -1
        if j < 0:
            S, s = tb.slot, self.slots[ti]
            if latest:
                if p < 0 and S[f"elm:{i}"][s]:
                    return self.decode(ti, col, S[f"elv:{i}"][s])
            elif S[f"efm:{i}"][s]:
                return self.decode(ti, col, S[f"efv:{i}"][s])
        return None if p < 0 else self.decode(ti, col, tb.pos[f"v:{col}"][p])

    def extreme(self, ti: int, i: int, j: int, largest: bool):
        """The smallest or largest included value of input i in window j (None when empty); a
        lifetime window also counts the extreme of the entity's evicted values."""
        tb = self.tables[ti]
        kind = "max" if largest else "min"
        tbl = tb.blocks.get(f"{kind}:{i}")
        if tbl is None:
            return self.vector(ti, i, j, lambda w: w.extreme(largest))
        got = self._extreme(ti, i, j, largest, kind, tbl)
        flags = tb.slot.get(f"exm:{kind}:{i}") if j < 0 else None
        if flags is not None and flags[self.slots[ti]]:
            old = self.decode(ti, tb.inputs[i].column, tb.slot[f"ex:{kind}:{i}"][self.slots[ti]])
            if got is None:
                return old
            both = (np.maximum if largest else np.minimum)(got, old)  # NaN as the vectorised plan has it
            return both.item() if isinstance(both, np.generic) else both
        return got

    def _extreme(self, ti: int, i: int, j: int, largest: bool, kind: str, tbl: np.ndarray):
        """`extreme` over the retained rows.  Every window ends at the same row, so when the widest
        one is short, one running extreme from the newest row backwards answers them all;
        otherwise a window is its partial head block, two sparse-table lookups over its full
        blocks and the partial tail block, which all windows share (reduced once per query)."""
        tb = self.tables[ti]
        bd, st = self.bounds[ti], self.start[ti]
        b, a = bd[0], bd[j]
        if b <= a:
            return None
        col = tb.inputs[i].column
        v, key = tb.pos[f"v:{col}"], tb.inc_key[i]
        ident = identity(v.dtype, kind)
        red = np.maximum if largest else np.minimum
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        widest = 0 if j < 0 else min(bd[1:-1])
        if b - widest <= SHORT:
            got = cache.get((ti, i, kind, widest))
            if got is None:
                lo, hi = st + widest, st + b
                x = v[lo:hi] if key is None else np.where(tb.pos[key][lo:hi], v[lo:hi], ident)
                got = cache[ti, i, kind, widest] = red.accumulate(x[::-1]).tolist()
            out = got[b - a - 1]
        else:
            lo, hi = st + a, st + b
            lb, hb = -(-lo // BLOCK), hi // BLOCK
            inc = None if key is None else tb.pos[key]
            if hb - lb < 2:
                out = _reduce(v, inc, lo, hi, red, ident)
            else:
                tail = cache.get((ti, i, kind, "tail"))
                if tail is None:
                    tail = cache[ti, i, kind, "tail"] = _reduce(v, inc, hb * BLOCK, hi, red, ident)
                lev = min((hb - lb).bit_length() - 1, tbl.shape[0] - 1)
                head = _reduce(v, inc, lo, lb * BLOCK, red, ident)
                out = red(red(head, tail), red(tbl[lev, lb], tbl[lev, hb - (1 << lev)]))
            out = out.item() if isinstance(out, np.generic) else out
        if out == ident and self.count(ti, i, j, evicted=False) == 0:  # the identity, or a value equal to it
            return None
        return out  # numbers and times only: strings have no block table

    def distinct(self, ti: int, i: int, j: int) -> int:
        """Distinct included values of input i in window j (see `WindowView.distinct`)."""
        tb = self.tables[ti]
        if j >= len(self.offsets[ti]):  # a session window: its values, counted
            return int(self.vector(ti, i, j, lambda w: Vec(w.distinct(), w.ones)))
        window = None if j < 0 else int(self.offsets[ti][j])
        end = tb.pos[f"dend:{i}:{window}"]
        st, s = self.start[ti], self.slots[ti]
        ln = int(tb.slot["len"][s])
        # short segments: a bisect over the array beats a slice and a numpy call
        gone = bisect_left(end, self.t, st, st + ln) - st if ln <= 64 else int(np.searchsorted(end[st:st + ln], self.t))
        return self.bounds[ti][0] - gone

    def asof(self, ti: int, column: str):
        """`column` of the latest row with time < t (None when there is none or it is null)."""
        b = self.bounds[ti][0]
        if not b:
            return None
        tb = self.tables[ti]
        p = self.start[ti] + b - 1
        if not tb.pos[f"m:{column}"][p]:
            return None
        return self.decode(ti, column, tb.pos[f"v:{column}"][p])

    # ------------------------------------------------------------------ vectorised fallback
    def view(self, ti: int, i: int, j: int) -> WindowView:
        """Input i over window j as a one-query `WindowView`, for kernels without a scalar form."""
        q = self._vq
        if q is None:
            slots = [None if s is None else np.array([s], np.int64) for s in self.slots]
            q = self._vq = Query(self.tables, slots, np.array([self.t], np.int64))
        if ti not in q.bounds:
            q.prepare(ti, self.offsets[ti], self.sessions[ti])
        return WindowView(q, ti, i, j)

    def vector(self, ti: int, i: int, j: int, kernel):
        """`kernel(view)` (a Vec of one) as a scalar: its value, or None when null."""
        v = kernel(self.view(ti, i, j))
        return v.values[0] if v.valid[0] else None
