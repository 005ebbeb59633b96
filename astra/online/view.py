"""What the generated query code and the aggregations' online kernels see of the store.

`Query` holds one batch (entity slots per table, query times).  `prepare` finds, for every window
offset a table's features use, how many of each entity's rows precede t - offset, in one search;
prefix structures are then gathered for all windows at once (one fancy index per structure) and
cached, so a kernel's window value is a difference of two cached rows.  `WindowView` is one
aggregation input over one window for every query of the batch, with the generic primitives the
kernels in `astra.ops.aggregations` are written against.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from astra.online.exact_sums import lifetime_bound, window_bound
from astra.online.table import BIG, BLOCK, Table, count_before, identity, ranges, two_sum_err
from astra.ops.exact import exact_mean, exact_sum, suspect
from astra.ops.registry import Vec
from astra.ops.segments import Segments, offsets_of

_COLS = np.arange(BLOCK)
SHORT_EXTREME = 2 * BLOCK  # windows of up to this many rows skip the block sparse table
_LEFT = np.arange(2 * BLOCK) < BLOCK  # the head block's columns of a partial-block gather


NEVER = np.iinfo(np.int64).max  # `valid_until` of an answer no stored row can change


def valid_until(t0: np.ndarray, bounds: dict[int, np.ndarray], start: list, length: list, offsets: dict,
                tables: list[Table]) -> np.ndarray:
    """Per query, the latest time t >= t0 whose answer is the one at t0, given the rows stored now.

    A window [t - w, t) changes as t grows only when a row enters it (the first row with time
    >= t0 is visible once t > its time) or leaves it (a row at time r is in it while t <= r + w,
    and the first to leave is the first row with time >= t0 - w, which the bound of offset w
    points at).  So the answer holds while t <= min over read windows of that row's time + w
    (w = 0 for entering rows; as-of and lifetime reads only have that one).  Pushes are outside
    this: a push that adds rows of an entity must drop what was derived for it."""
    until = np.full(len(t0), NEVER, np.int64)
    for ti, m in bounds.items():
        times = tables[ti].pos["time"]
        if not times.size:
            continue
        st, ln = start[ti], length[ti]
        for b, w in zip(m, offsets[ti].tolist()):
            has = b < ln
            if has.any():
                r = times[np.where(has, st + b, 0)] + w
                np.minimum(until, r, out=until, where=has)
    return until


def session_start(tb: Table, inp: int, gap: int, st: int, b: int) -> int:
    """Rows of one entity's segment (arena rows st...) before the first row of the session of its
    latest included row among the first b (b when there is none): sessions are formed from the
    rows input `inp` includes, split where consecutive ones are `gap` or more apart
    (docs/semantics.md, W3-W4).  Walks back from the latest row a block at a time."""
    times = tb.pos["time"]
    end, first = st + b, None  # first: the time of the earliest session row found so far
    while end > st:
        lo = max(st, end - 256)
        rows = np.arange(lo, end)
        t = times[rows][tb.included(inp, rows)]
        if t.size:
            cut = np.flatnonzero(np.diff(t) >= gap)
            if first is not None and first - t[-1] >= gap:
                break
            if cut.size:
                first = int(t[cut[-1] + 1])
                break
            first = int(t[0])
        end = lo
    if first is None:
        return b
    return int(np.searchsorted(times[st:st + b], first, side="left"))


def session_starts(tb: Table, inp: int, gap: int, st: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`session_start` for every query of a batch."""
    return np.fromiter((session_start(tb, inp, gap, int(s), int(n)) for s, n in zip(st.tolist(), b.tolist())),
                       np.int64, len(b))


class Query:
    """One batch of queries: `n` entities at times `t` (µs), with their slot in each table."""

    def __init__(self, tables: list[Table], slots: list, t: np.ndarray):
        self.tables, self.slots, self.t, self.n = tables, slots, t, len(t)
        self.ones = np.ones(self.n, bool)  # shared validity of never-null results (never mutated)
        self.start: list = [None] * len(tables)
        self.length: list = [None] * len(tables)
        self.bounds: dict[int, np.ndarray] = {}  # table -> (offsets + sessions + 1, n) row bounds; last row 0
        self.offsets: dict[int, np.ndarray] = {}
        self._cache: dict[tuple, object] = {}
        self._hops: dict[int, Query] = {}

    def at(self, hop: int) -> Query:
        """The batch asked at each query's hop boundary floor(t / hop) * hop: a hopping window of
        width w is the sliding window [h - w, h) there (docs/semantics.md, W1)."""
        got = self._hops.get(hop)
        if got is None:
            got = self._hops[hop] = Query(self.tables, self.slots, self.t // hop * hop)
        return got

    def prepare(self, ti: int, offsets: np.ndarray, sessions: tuple = ()) -> None:
        """Rows of each entity with time < t - offset, for every offset (offsets[0] is 0), then
        for each session window (input, gap) the rows before its session's first row."""
        tb, s = self.tables[ti], self.slots[ti]
        st, ln = tb.slot["start"][s], tb.slot["len"][s]
        self.start[ti], self.length[ti] = st, ln
        m = np.zeros((len(offsets) + len(sessions) + 1, self.n), np.int64)  # last row: lifetime windows start at 0
        m[:len(offsets)] = count_before(tb.pos["time"], st, ln, self.t - offsets[:, None])
        for k, (inp, gap) in enumerate(sessions):
            m[len(offsets) + k] = session_starts(tb, inp, gap, st, m[0])
        self.bounds[ti], self.offsets[ti] = m, offsets

    def valid_until(self) -> np.ndarray:
        """Per query, the latest time whose answer is this one (see `valid_until`); a hopping
        window's answer holds until its next boundary."""
        until = valid_until(self.t, self.bounds, self.start, self.length, self.offsets, self.tables)
        for hop, sub in self._hops.items():
            np.minimum(until, sub.t + (hop - 1), out=until)
        return until

    def prefix(self, ti: int, key: str) -> np.ndarray:
        """Prefix `key` (e.g. "cnt:0") after each bound of table ti: a (windows + 1, n) matrix."""
        got = self._cache.get((ti, key))
        if got is None:
            m = self.bounds[ti]
            idx = self.start[ti] + m - 1
            got = self.tables[ti].pos[key][np.maximum(idx, 0)]
            got[m == 0] = 0
            self._cache[ti, key] = got
        return got

    def spans(self, ti: int, key: str) -> np.ndarray:
        """Prefix `key` over every prepared window at once: row j is the value over
        [t - offset_j, t) (the last row, whose bound is 0, is the retained rows before t)."""
        got = self._cache.get((ti, "span", key))
        if got is None:
            if key == "all":  # count(*): the windows' lengths
                m = self.bounds[ti]
                got = m[0] - m
            elif key.startswith("sum:"):  # float running sums
                hi = self.prefix(ti, f"shi:{key[4:]}")
                with np.errstate(invalid="ignore"):  # inf - inf: such windows are summed again
                    got = hi[0] - hi
            else:
                m = self.prefix(ti, key)
                got = (m[0] - m).astype(np.int64, copy=False)
            self._cache[ti, "span", key] = got
        return got

    def view(self, ti: int, inp: int, j: int) -> WindowView:
        """Input `inp` of table `ti` over window j of its prepared offsets (-1: lifetime)."""
        return WindowView(self, ti, inp, j)

    def asof(self, ti: int, column: str) -> Vec:
        """`column` of the latest row with time < t (null when there is none)."""
        got = self._cache.get((ti, "asof"))
        if got is None:  # the row is shared by every column of the table
            b = self.bounds[ti][0]
            got = self._cache[ti, "asof"] = (np.maximum(self.start[ti] + b - 1, 0), b > 0)
        tb, (idx, found) = self.tables[ti], got
        return Vec(tb.values(column, idx), found & tb.pos[f"m:{column}"][idx])


class WindowView:
    """One aggregation input over one window, for every query in a batch.

    Per query: rows [start + a, start + b) of its segment are in the window; a lifetime view
    also covers the evicted rows folded into the slot's running state."""

    def __init__(self, q: Query, ti: int, inp: int, j: int):
        self.q, self.ti, self.i, self.j = q, ti, inp, j
        self.table = q.tables[ti]
        self.input = self.table.inputs[inp]
        self.lifetime, self.n, self.ones = j < 0, q.n, q.ones
        self.column = self.input.column

    @property
    def a(self) -> np.ndarray:
        return self.q.bounds[self.ti][self.j]

    @property
    def b(self) -> np.ndarray:
        return self.q.bounds[self.ti][0]

    def _base(self, key: str) -> np.ndarray:
        return self.table.slot[f"b{key}:{self.i}"][self.q.slots[self.ti]]

    def count(self) -> np.ndarray:
        """Included rows in the window (int64)."""
        d = self.q.spans(self.ti, "all" if self.input.all_rows else f"cnt:{self.i}")[self.j]
        return d + self._base("cnt") if self.lifetime else d

    def sum(self) -> np.ndarray:
        """Sum of the included values (int64 for integer columns, float64 otherwise).  Float sums
        come from running-sum prefixes; windows whose error bound is not far below their sum are
        summed exactly from their rows (`astra.online.exact_sums`).  Computed once per batch
        and window: sum() and mean() of one window share it (shared, as spans are: never mutated)."""
        q, ti, i = self.q, self.ti, self.i
        if self.input.sum_int:
            d = q.spans(ti, f"shi:{i}")[self.j]
            return d + self._base("shi") if self.lifetime else d
        key = (ti, "float sum", i, self.j)
        got = q._cache.get(key)
        if got is None:
            got = q._cache[key] = self._float_sum()
        return got

    def _float_sum(self) -> np.ndarray:
        """`sum` of a float input: the prefix difference, summed again exactly from the rows
        where its error bound is too large (lifetime windows add the evicted rows' base)."""
        q, ti, i = self.q, self.ti, self.i
        if not self.lifetime:
            out = q.spans(ti, f"sum:{i}")[self.j]
            bad = np.flatnonzero(self._suspect_spans()[self.j])
            base = ()
        else:
            S, s = self.table.slot, q.slots[ti]
            m = q.prefix(ti, f"shi:{i}")
            bh, bl = self._base("shi"), self._base("slo")
            with np.errstate(invalid="ignore", over="ignore"):
                t = m[0] + bh
                out = t + (bl + two_sum_err(m[0], bh, t))
                names = self.table.names[i]
                bound = lifetime_bound(self.b, S[names.shm][s], S[names.sem][s], bl, self._base("serr"), t, out)
            bound[(self.b == 0) & (bh == 0) & (bl == 0)] = 0.0  # nothing retained or evicted
            base = (bh, bl)
            bad = np.flatnonzero(suspect(out, bound))
        if len(bad):
            out = out.copy()  # spans are shared by every kernel of the batch
            for j in bad.tolist():
                out[j] = exact_sum([*(float(b[j]) for b in base), *self.values_of(j)])
        return out

    def _suspect_spans(self) -> np.ndarray:
        """Per prepared window (rows of `Query.spans`) and query, whether the window's float sum
        from the prefixes may be off (`suspect`): checked for every window of the input at once,
        one matrix, and memoised for the batch (each window then reads its row)."""
        q, ti, i = self.q, self.ti, self.i
        key = (ti, "suspect sums", i)
        got = q._cache.get(key)
        if got is None:
            S, s, names = self.table.slot, q.slots[ti], self.table.names[i]
            bd, sums = q.bounds[ti], q.spans(ti, f"sum:{i}")
            rows = bd[0] - bd  # rows in each window [t - offset_j, t)
            with np.errstate(invalid="ignore", over="ignore"):
                bound = window_bound(rows, S[names.shm][s], S[names.sem][s], sums)
            bound[rows == 0] = 0.0  # an empty window's sum is exactly 0 (a prefix minus itself)
            got = q._cache[key] = suspect(sums, bound)
        return got

    def values_of(self, j: int) -> list:
        """Query j's included non-null values in the window (retained rows), as Python numbers."""
        st, b = int(self.q.start[self.ti][j]), int(self.b[j])
        a = 0 if self.lifetime else int(self.a[j])
        rows = np.arange(st + a, st + b)
        v = self.table.pos[f"v:{self.column}"][rows][self.table.included(self.i, rows)]
        return (v if self.input.sum_int else v.astype(np.float64)).tolist()

    def exact_mean(self, j: int, n: int) -> float:
        """Query j's mean over n values, exactly rounded (for sums that overflowed or wrapped)."""
        if self.input.sum_int:  # Python ints do not wrap (the evicted rows' base is int64)
            base = int(self._base("shi")[j]) if self.lifetime else 0
            return float(Fraction(base + sum(self.values_of(j)), n))
        base = [float(self._base(k)[j]) for k in ("shi", "slo")] if self.lifetime else []
        return exact_mean([*base, *self.values_of(j)], n)

    def magnitude(self) -> int:
        """An upper bound of |value| over the input's integer column (see `Table.largest`)."""
        return self.table.largest(self.column)

    def evicted_values(self) -> np.ndarray:
        """Per query, how many values of the input were evicted into the variance's moments."""
        vn = self.table.slot.get(f"vn:{self.i}")
        return np.zeros(self.n, np.int64) if vn is None or not self.lifetime else vn[self.q.slots[self.ti]]

    def _nearest(self, latest: bool) -> tuple[np.ndarray, np.ndarray]:
        """(arena position, found) of the latest or earliest included row in each window.

        The row at the window's edge usually qualifies (one vectorised check); the rest scan
        their window (nulls or a rarely true filter at the edge)."""
        st, b = self.q.start[self.ti], self.b
        a = np.zeros_like(b) if self.lifetime else self.a
        lo, hi = st + a, st + b
        ok = b > a
        idx = np.where(ok, hi - 1 if latest else lo, 0)
        hit = ok & self.table.included(self.i, idx)
        for j in np.flatnonzero(ok & ~hit).tolist():
            got = np.flatnonzero(self.table.included(self.i, np.arange(lo[j], hi[j])))
            if len(got):
                idx[j], hit[j] = lo[j] + got[-1 if latest else 0], True
        return idx, hit

    def last(self) -> Vec:
        """The latest included value in the window (ties: latest arrival)."""
        return self._positional(latest=True)

    def first(self) -> Vec:
        """The earliest included value in the window (ties: earliest arrival)."""
        return self._positional(latest=False)

    def _positional(self, latest: bool) -> Vec:
        """last/first: the nearest included row's stored value (lifetime views: the last/first
        included evicted value stands in when there is no row / always for first), decoded once."""
        idx, ok = self._nearest(latest)
        codes = self.table.pos[f"v:{self.column}"][np.where(ok, idx, 0)]
        if self.lifetime:
            S, s = self.table.slot, self.q.slots[self.ti]
            tag = "l" if latest else "f"
            em = S[f"e{tag}m:{self.i}"][s]
            if em.any():
                ev = S[f"e{tag}v:{self.i}"][s]
                codes = np.where(ok, codes, ev) if latest else np.where(em, ev, codes)
                ok = ok | em
        return Vec(self._decode(codes), ok)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return self.table.decode(self.column, codes)

    def extreme(self, largest: bool) -> Vec:
        """The smallest or largest included value (numbers and times: block sparse table + two
        partial blocks; other types: a gather of the window's rows)."""
        kind = "max" if largest else "min"
        key = f"{kind}:{self.i}"
        tb = self.table
        if key not in tb.blocks:  # strings (and numbers of a table without block tables)
            from astra.online.grouped import group_extreme

            got = group_extreme(*self.gather(), self.n, largest)
            flags = tb.slot.get(f"exm:{kind}:{self.i}") if self.lifetime else None
            if flags is None:
                return got
            s = self.q.slots[self.ti]
            has = flags[s]
            old = tb.decode(self.column, tb.slot[f"ex:{kind}:{self.i}"][s])
            wins = (got.values > old) if largest else (got.values < old)
            out = np.where(got.valid & has, np.where(wins, got.values, old), np.where(has, old, got.values))
            return Vec(out, got.valid | has)
        out = self._extreme(tb, kind)  # the retained rows (the identity where none is included)
        flags = tb.slot.get(f"exm:{kind}:{self.i}") if self.lifetime else None
        if flags is not None:  # and the extreme of the entity's evicted values
            s = self.q.slots[self.ti]
            has = flags[s]
            if has.any():
                old = tb.decode(self.column, tb.slot[f"ex:{kind}:{self.i}"][s])
                both = (np.maximum if largest else np.minimum)(out, old)
                out = np.where(has, both, out)
        return Vec(out, self.count() > 0)

    def _extreme(self, tb: Table, kind: str) -> np.ndarray:
        """Per query: the extreme of the included values at positions [start + a, start + b).

        Windows of up to `SHORT_EXTREME` rows are reduced directly (a gather as wide as the
        longest of them); longer ones use two partial blocks and the block sparse table."""
        m, st = self.q.bounds[self.ti], self.q.start[self.ti]
        lo, hi = st + m[self.j], st + m[0]
        if self.n == 1:
            return self._extreme_one(tb, kind, int(lo[0]), int(hi[0]))
        v = tb.pos[f"v:{self.column}"]
        ident = identity(v.dtype, kind)
        red = np.minimum if kind == "min" else np.maximum
        length = hi - lo
        short = length <= SHORT_EXTREME
        if self.lifetime:
            width = int(np.where(short, length, 0).max(initial=0))
            out = self._direct(tb, v, lo, np.where(short, hi, lo), width, ident, red)
        else:  # every window ends at the same row: one gather of the widest serves them all
            vals, end = self._newest(tb, kind, v, ident)
            ln = np.where(short, length, 0)
            cut = np.stack((end - ln, end), axis=1).ravel()  # [start, end) of each window's rows
            out = np.where(ln > 0, red.reduceat(vals, cut)[::2], ident)
        if not short.all():
            long = np.flatnonzero(~short)
            out[long] = self._blocks(tb, kind, v, lo[long], hi[long], ident, red)
        return tb.decode(self.column, out)

    def _newest(self, tb: Table, kind: str, v: np.ndarray, ident) -> tuple[np.ndarray, np.ndarray]:
        """The included values (others: the identity) of each query's newest rows, up to
        `SHORT_EXTREME` of its widest prepared window, concatenated in query order, with one
        identity after them; and where each query's rows end.  Cached for every window of the input."""
        key = (self.ti, "newest", self.i, kind)
        got = self.q._cache.get(key)
        if got is None:
            m, st = self.q.bounds[self.ti], self.q.start[self.ti]
            take = np.minimum(m[0] - m[1:-1].min(axis=0), SHORT_EXTREME)
            rows = ranges(st + m[0] - take, take)
            vals = np.append(np.where(tb.included(self.i, rows), v[rows], ident), ident)
            got = self.q._cache[key] = (vals, np.cumsum(take))
        return got

    def _direct(self, tb: Table, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, width: int, ident, red) -> np.ndarray:
        """Per query, the extreme of included values in [lo, hi) (at most `width` rows each)."""
        if width == 0:
            return np.full(len(lo), ident, v.dtype)
        idx = lo[:, None] + np.arange(width)
        ok = idx < hi[:, None]
        idx = np.where(ok, idx, 0)
        inc = tb.included(self.i, idx.ravel()).reshape(idx.shape)
        return red.reduce(np.where(ok & inc, v[idx], ident), axis=-1)

    def _blocks(self, tb: Table, kind: str, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, ident, red) -> np.ndarray:
        """Per query, the extreme of included values in [lo, hi): partial blocks + sparse table."""
        tbl = tb.blocks[f"{kind}:{self.i}"]
        lb, hb = -(-lo // BLOCK), hi // BLOCK
        head_hi = np.minimum(hi, lb * BLOCK)
        tail_lo = np.maximum(hb * BLOCK, head_hi)
        # two partial blocks: a (.., 2 * BLOCK) gather, masked outside [lo, head_hi) and [tail_lo, hi)
        idx = np.concatenate((lo[:, None] + _COLS, tail_lo[:, None] + _COLS), axis=1)
        ok = idx < np.where(_LEFT, head_hi[:, None], hi[:, None])
        idx = np.where(ok, idx, 0)
        inc = tb.included(self.i, idx.ravel()).reshape(idx.shape)
        part = red.reduce(np.where(ok & inc, v[idx], ident), axis=-1)
        nfull = hb - lb
        full = nfull > 0
        if full.any():
            lev = np.zeros(nfull.shape, np.int64)
            f = nfull[full]
            lev[full] = np.log2(f).astype(np.int64)
            lev = np.minimum(lev, tbl.shape[0] - 1)
            x = tbl[lev, np.where(full, lb, 0)]
            y = tbl[lev, np.where(full, hb - (1 << lev), 0)]
            part = np.where(full, red(part, red(x, y)), part)
        return part

    def _extreme_one(self, tb: Table, kind: str, lo: int, hi: int) -> np.ndarray:
        """`_extreme` for one query: slices of the partial blocks, scalar sparse-table lookups."""
        v, key = tb.pos[f"v:{self.column}"], tb.inc_key[self.i]
        red = np.minimum if kind == "min" else np.maximum
        lb, hb = -(-lo // BLOCK), hi // BLOCK
        parts = [(lo, hi)] if hb - lb < 2 else [(lo, lb * BLOCK), (hb * BLOCK, hi)]
        out = identity(v.dtype, kind)
        for a, b in parts:
            if b > a:
                x = v[a:b] if key is None else v[a:b][tb.pos[key][a:b]]
                if len(x):
                    out = red(out, red.reduce(x))
        if hb - lb >= 2:
            tbl = tb.blocks[f"{kind}:{self.i}"]
            lev = min((hb - lb).bit_length() - 1, tbl.shape[0] - 1)
            out = red(out, red(tbl[lev, lb], tbl[lev, hb - (1 << lev)]))
        return tb.decode(self.column, np.array([out], v.dtype))

    def distinct(self) -> np.ndarray:
        """Distinct included values in the window: rows before t minus rows whose `end` (their
        value's next occurrence, leaving the window, or at once when excluded) is before t.
        Session windows count their gathered values."""
        if self.j >= len(self.q.offsets[self.ti]):
            qid, vals = self.gather()
            return np.fromiter((len(set(vals[qid == k].tolist())) for k in range(self.n)), np.int64, self.n)
        window = None if self.lifetime else int(self.q.offsets[self.ti][self.j])
        end = self.table.pos[f"dend:{self.i}:{window}"]
        st, ln = self.q.start[self.ti], self.q.length[self.ti]
        return self.b - count_before(end, st, ln, self.q.t)  # excluded rows' ends are their times

    def with_evicted_moments(self, qid: np.ndarray, vals: np.ndarray, n: np.ndarray, m2: np.ndarray):
        """(count, M2) of each query's gathered values (by query: `qid`, `vals`, their own count
        and M2) together with its entity's evicted values, from sums about the slot's shift
        (`Table._fold_moments`); queries with nothing evicted keep their own."""
        tb = self.table
        vn = tb.slot.get(f"vn:{self.i}")
        if vn is None:
            return n, m2
        s = self.q.slots[self.ti]
        gone = vn[s]
        d = vals.astype(np.float64) - tb.slot[f"vc:{self.i}"][s][qid]
        s1 = tb.slot[f"vs1:{self.i}"][s] + np.bincount(qid, weights=d, minlength=self.n)
        s2 = tb.slot[f"vs2:{self.i}"][s] + np.bincount(qid, weights=d * d, minlength=self.n)
        total = n + gone
        both = np.maximum(s2 - s1 * s1 / np.maximum(total, 1), 0.0)
        # squares beyond float64 about one of the values (none infinite: s1 is finite): so is M2
        both[(s2 == np.inf) & np.isfinite(s1)] = np.inf
        has = gone > 0
        return np.where(has, total, n), np.where(has, both, m2)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(count, M2) of the included values per window (lifetime: with the entity's evicted
        values): two passes over the gathered rows, exact where their error may matter."""
        from astra.online.grouped import exact_where_needed, group_moments

        qid, vals = self.gather()
        with np.errstate(invalid="ignore", over="ignore"):
            n, _, m2 = group_moments(qid, vals, self.n)
            # windows over evicted values are combined with their shifted sums instead
            exact_where_needed(m2, qid, vals, n, self.evicted_values() == 0)
            if self.lifetime:  # and the entity's evicted values
                n, m2 = self.with_evicted_moments(qid, vals, n, m2)
        return n, m2

    def last_k(self, k: int) -> Vec:
        """The k latest included values per window, newest first (lifetime: the newest evicted
        ones follow when fewer than k rows are retained)."""
        from astra.online.grouped import group_last_k

        got = group_last_k(*self.gather(), self.n, k)
        if self.lifetime:
            self.extend_with_evicted(got.values, k)
        return got

    def extend_with_evicted(self, lists: np.ndarray, k: int) -> None:
        """Complete each query's newest-first tuple of values (`lists`, shorter than k where the
        retained rows hold fewer) with the newest values of its evicted rows, in place."""
        tb = self.table
        counts = tb.slot.get(f"lkn:{self.i}")
        if counts is None:
            return
        s = self.q.slots[self.ti]
        n_old = counts[s]
        short = np.flatnonzero((n_old > 0) & (np.fromiter(map(len, lists), np.int64, len(lists)) < k))
        if not len(short):
            return
        kept = [tb.decode(self.column, tb.slot[f"lk:{self.i}:{r}"][s[short]]).tolist()
                for r in range(min(k, tb.inputs[self.i].last_k))]
        for j, q in enumerate(short.tolist()):
            have = lists[q]
            more = min(int(n_old[q]), k - len(have), len(kept))
            lists[q] = have + tuple(kept[r][j] for r in range(more))

    def gather(self) -> tuple[np.ndarray, np.ndarray]:
        """(query index, value) of every included row in the window, by query then (time, arrival).

        Gather kernels need every row: under a lifetime view their tables are never evicted (but
        for last_k, which keeps its evicted values, `extend_with_evicted`)."""
        st, b = self.q.start[self.ti], self.b
        a = np.zeros_like(b) if self.lifetime else self.a
        rows = ranges(st + a, b - a)
        qid = np.repeat(np.arange(self.n), b - a)
        keep = self.table.included(self.i, rows)
        rows, qid = rows[keep], qid[keep]
        if self.column is None:
            return qid, np.ones(len(rows), bool)
        return qid, self.table.values(self.column, rows)

    def segments(self, times: bool = False) -> Segments:
        """Each query's included values in (time, arrival) order as CSR arrays (`astra.ops.segments`,
        the same runs as `gather`); with `times`, the rows' event times and the queries' times (µs).
        A lifetime view covers the retained rows: a table read by such kernels is never evicted."""
        st, b = self.q.start[self.ti], self.b
        a = np.zeros_like(b) if self.lifetime else self.a
        rows = ranges(st + a, b - a)
        qid = np.repeat(np.arange(self.n), b - a)
        keep = self.table.included(self.i, rows)
        rows, qid = rows[keep], qid[keep]
        values = np.ones(len(rows), bool) if self.column is None else self.table.values(self.column, rows)
        offsets = offsets_of(np.bincount(qid, minlength=self.n))
        if not times:
            return Segments(values=values, offsets=offsets)
        return Segments(values=values, offsets=offsets, times=self.table.pos["time"][rows].astype(np.int64),
                        query_times=np.asarray(self.q.t, np.int64))


__all__ = ["BIG", "Query", "WindowView"]
