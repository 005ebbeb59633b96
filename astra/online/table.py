"""One source keyed by one entity: a columnar arena of retained rows, one contiguous segment per entity.

Arrays indexed by arena position live in `Table.pos` (times, column values and validity, and per
aggregation input its inclusion mask and prefix structures); arrays indexed by entity slot live in
`Table.slot` (segment start, length, capacity and the running state of evicted rows).  A segment
holds its entity's rows sorted by (time, arrival), so a window is a contiguous range found by
binary search and most aggregations are a difference of two prefix values.  Slot 0 is a
permanently empty entity that unknown keys map to.  Rows carry no arrival number: a pushed row
always arrived after every stored one, so it goes after equal times.

Every per-position structure is *segment-relative* (prefixes restart at each segment), so a
segment moves or a compaction copies without recomputing, and eviction rebases only the evicted
segments, folding the dropped prefix into a per-slot base.  Float sums are running sums computed
per segment, one rounding a row, so that an entity's prefixes depend on its own rows alone, with
per slot what bounds a window's error (`astra.online.exact_sums`): a window whose bound is not far
below its sum is summed exactly from its rows instead.  The last/first included row of a window
is found at query time (the edge row almost always qualifies).

Range min/max use blocks of `BLOCK` arena positions and a sparse table over blocks (`Table.blocks`):
a window is two partial blocks scanned directly plus two table lookups.  count_distinct keeps
per row when it stops counting (`astra.online.distinct_ends`).

Every structure is updated from the first changed row on, so a push costs what its rows change,
not the entity's history: prefixes from the insertion point, blocks from the first changed block,
and count_distinct ends from the rows still inside a window of it.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable

import attrs
import numpy as np

from astra.online import exact_sums
from astra.online.append import Appending
from astra.online.arrays import BIG, BLOCK, _seg_cumsum, count_before, identity, ranges, two_sum_err
from astra.online.blocks import Blocks
from astra.online.compaction import Compacting
from astra.online.distinct_ends import DistinctEnds
from astra.online.evict import Evicting
from astra.online.last_seen import LastSeen
from astra.ops.registry import Vec

# the array kernels view.py and single.py import from here too
__all__ = ["BIG", "BLOCK", "Input", "Names", "Table", "count_before", "identity", "ranges", "two_sum_err"]

_I32 = np.iinfo(np.int32)


@attrs.define
class Input:
    """Rows an aggregation sees: `where` holds and `column` is non-null (every row for count(*)).

    `needs` names structures: "cnt", "sum", "min"/"max" (block sparse tables), "distinct" (sorted
    ends, one per window in `windows`); "li"/"ni" (last/first included row) need no per-row array,
    only, for lifetime views, the last/first included value among evicted rows."""

    column: str | None
    where: Callable[[dict[str, Vec], int], Vec] | None
    needs: set[str]
    sum_int: bool = False
    windows: tuple[int | None, ...] = ()  # count_distinct windows (None: lifetime)
    numeric: bool = False  # the column is a number or time (block extremes apply)
    lifetime: bool = True  # a lifetime aggregation reads it: keep running state of evicted rows
    last_k: int = 0  # keep the last_k newest included evicted values (a lifetime last_k reads it)

    @property
    def all_rows(self) -> bool:
        """count(*) without a filter: its count is the window's length, no array needed."""
        return self.column is None and self.where is None


@attrs.frozen
class Names:
    """The array names of one aggregation input (None: it has no such array)."""

    cnt: str | None  # prefix count of included rows (None for count(*): windows' lengths)
    shi: str
    bcnt: str
    bshi: str
    bslo: str
    shm: str  # float sums' error bounds per segment (`astra.online.exact_sums`)
    sem: str
    bserr: str


class Table(Appending, Evicting, DistinctEnds, LastSeen, Compacting, Blocks):
    """The retained rows of one source under one key, plus what its aggregations need."""

    def __init__(self, name: str, key_columns: tuple[str, ...], columns: dict[str, np.dtype],
                 inputs: list[Input], evict_window: int | None, keep_last: bool):
        self.name, self.key_columns, self.inputs = name, key_columns, inputs
        self.strings = [c for c, dt in columns.items() if dt.kind in "TUO"]
        # int64 columns are stored as int32 until a value does not fit (then widened in place)
        self.narrow = {c for c, dt in columns.items() if dt == np.int64}
        self.columns = {c: (np.dtype(np.int32) if c in self.strings or c in self.narrow else dt)
                        for c, dt in columns.items()}
        self.dicts: dict[str, tuple[list, dict]] = {c: ([], {}) for c in self.strings}  # codes -> strings
        self._decoded: dict[str, np.ndarray] = {}
        self.evict_window = evict_window  # longest window; None: never evict (lifetime state not mergeable)
        self.keep_last = keep_last  # as-of lookups need the last row before the cutoff
        self.magnitude: dict[str, int] = {}  # integer column -> an upper bound of |value| (`largest`)
        self.keys: dict[object, int] = {}
        self.n_slots, self.used, self.holes = 1, 0, 0
        self.cutoff: int | None = None  # rows with time < cutoff have been evicted
        self.ends_touched = 0  # rows whose count_distinct ends were recomputed (a work count)
        # input -> (slot << 64 | value of each included row, the slots those are known for): what a
        # lifetime count_distinct append asks (`DistinctEnds._held_before`)
        self.distinct_values: dict[int, tuple[set[int], set[int]]] = {}
        # input -> slot -> (its values sorted, each one's latest included row's time), for the
        # segments a windowed count_distinct append found long (`LastSeen`)
        self.last_seen: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        self.pos: dict[str, np.ndarray] = {k: np.zeros(BLOCK, dt) for k, dt in self._pos_dtypes().items()}
        self.slot: dict[str, np.ndarray] = {k: np.zeros(16, dt) for k, dt in self._slot_dtypes().items()}
        self.blocks: dict[str, np.ndarray] = {}  # "max:i" -> (levels, n_blocks) sparse table over blocks
        # inclusion masks: none for count(*), the column's validity without a filter, else stored
        self.inc_key = [None if inp.all_rows else f"m:{inp.column}" if inp.where is None else f"inc:{i}"
                        for i, inp in enumerate(inputs)]
        self.names = [Names(None if inp.all_rows else f"cnt:{i}", f"shi:{i}",
                            f"bcnt:{i}", f"bshi:{i}", f"bslo:{i}", f"shm:{i}", f"sem:{i}", f"bserr:{i}")
                      for i, inp in enumerate(inputs)]
        self.raw_keys = ["time", *(f"{p}:{c}" for c in self.columns for p in ("v", "m")),
                         *(f"inc:{i}" for i, inp in enumerate(inputs) if inp.where is not None)]

    # ------------------------------------------------------------------ layout
    def _pos_dtypes(self) -> dict[str, np.dtype]:
        d = {"time": np.dtype(np.int64)}
        for c, dt in self.columns.items():
            d[f"v:{c}"], d[f"m:{c}"] = dt, np.dtype(bool)
        for i, inp in enumerate(self.inputs):
            if inp.where is not None:
                d[f"inc:{i}"] = np.dtype(bool)
            if "cnt" in inp.needs and not inp.all_rows:
                d[f"cnt:{i}"] = np.dtype(np.int32)
            if "sum" in inp.needs:
                d[f"shi:{i}"] = np.dtype(np.int64 if inp.sum_int else np.float64)
            for w in inp.windows:
                d[f"dend:{i}:{w}"] = np.dtype(np.int64)
        return d

    def _slot_dtypes(self) -> dict[str, np.dtype]:
        d = {"start": np.dtype(np.int32), "len": np.dtype(np.int32), "cap": np.dtype(np.int32)}  # see _grow
        pos = self._pos_dtypes()
        for i, inp in enumerate(self.inputs):
            floats = "sum" in inp.needs and not inp.sum_int
            if floats:  # what bounds a window's error (`astra.online.exact_sums`; NaN: "sum again")
                d[f"shm:{i}"] = d[f"sem:{i}"] = d[f"slast:{i}"] = np.dtype(np.float64)
            if not inp.lifetime:
                continue
            for k in ("cnt", "shi"):
                if f"{k}:{i}" in pos:
                    d[f"b{k}:{i}"] = np.dtype(np.int64) if k == "cnt" else np.dtype(pos[f"shi:{i}"])
            if floats:  # the evicted rows' double-double sum: its low part and its error bound
                d[f"bslo:{i}"] = d[f"bserr:{i}"] = np.dtype(np.float64)
            if inp.all_rows and "cnt" in inp.needs:
                d[f"bcnt:{i}"] = np.dtype(np.int64)
            if inp.column is not None and "ni" in inp.needs:
                d[f"efv:{i}"], d[f"efm:{i}"] = self.columns[inp.column], np.dtype(bool)  # first evicted value
            if inp.column is not None and "li" in inp.needs:
                d[f"elv:{i}"], d[f"elm:{i}"] = self.columns[inp.column], np.dtype(bool)  # last evicted value
            for kind in ("min", "max"):  # the extreme of the included evicted values (numbers, times, strings)
                if kind in inp.needs and (inp.numeric or inp.column in self.strings):
                    d[f"ex:{kind}:{i}"], d[f"exm:{kind}:{i}"] = self.columns[inp.column], np.dtype(bool)
            if "moments" in inp.needs:  # the included evicted values' count, and sums of x - c and
                # (x - c)^2 about c, the slot's first evicted value: equal values give exactly 0
                d[f"vn:{i}"] = np.dtype(np.int64)
                d[f"vc:{i}"] = d[f"vs1:{i}"] = d[f"vs2:{i}"] = np.dtype(np.float64)
            if inp.last_k and inp.column is not None:  # the newest included evicted values, newest first
                d[f"lkn:{i}"] = np.dtype(np.int32)
                for r in range(inp.last_k):
                    d[f"lk:{i}:{r}"] = self.columns[inp.column]
        return d

    def _grow(self, need: int) -> None:
        cap = len(self.pos["time"])
        if need <= cap:
            return
        new = -(-max(need, cap + cap // 8) // BLOCK) * BLOCK  # a whole number of blocks
        if new >= 2**31:  # slot arrays hold positions as int32
            raise MemoryError(f"table `{self.name}` would exceed 2^31 arena rows")
        for k, a in self.pos.items():
            b = np.zeros(new, a.dtype)
            b[:self.used] = a[:self.used]  # not the spare capacity: copying its zeros would make it resident
            self.pos[k] = b
        for k, a in self.blocks.items():
            b = np.zeros((a.shape[0], new // BLOCK), a.dtype)
            b[:, :a.shape[1]] = a
            self.blocks[k] = b

    # ------------------------------------------------------------------ keys and strings
    def lookup(self, keys: list) -> np.ndarray:
        """Slots of the given keys (scalars for one key column, tuples otherwise); 0 when unknown."""
        get = self.keys.get
        if len(keys) == 1:
            return np.array([get(keys[0], 0)], np.int64)
        return np.fromiter(map(get, keys, itertools.repeat(0)), dtype=np.int64, count=len(keys))

    def assign(self, keys: list) -> np.ndarray:
        """Slots for keys, allocating new (empty) slots for keys not seen before."""
        table = self.keys
        get = table.get
        if len(keys) <= 8:  # a few rows: plain Python
            got = []
            for k in keys:
                s = get(k)
                if s is None:
                    s = table[k] = self.n_slots
                    self.n_slots += 1
                got.append(s)
            out = np.array(got, np.int64)
        else:
            out = np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
            for j in np.flatnonzero(out < 0).tolist():  # new entities only
                k = keys[j]
                s = get(k)
                if s is None:
                    s = table[k] = self.n_slots
                    self.n_slots += 1
                out[j] = s
        if self.n_slots > len(self.slot["start"]):
            cap = max(self.n_slots, len(self.slot["start"]) * 2)
            for k, a in self.slot.items():
                b = np.zeros(cap, a.dtype)
                b[:len(a)] = a
                self.slot[k] = b
        return out

    def encode(self, column: str, values: np.ndarray) -> np.ndarray:
        """Dictionary codes (int32) of string values, adding new strings to the column's dictionary."""
        strings, codes = self.dicts[column]
        if len(values) <= 4:  # single-row pushes: no sort
            vals = values.tolist()
            for v in sorted(set(vals)):  # new strings get codes in sorted order, as below
                if v not in codes:
                    codes[v] = len(strings)
                    strings.append(v)
                    self._decoded.pop(column, None)
            return np.array([codes[v] for v in vals], np.int32)
        uniq, inv = np.unique(values, return_inverse=True)
        mapped = np.empty(len(uniq), np.int32)
        for j, s in enumerate(uniq.tolist()):
            c = codes.get(s)
            if c is None:
                c = codes[s] = len(strings)
                strings.append(s)
                self._decoded.pop(column, None)
            mapped[j] = c
        return mapped[inv.reshape(-1)] if len(values) else np.zeros(0, np.int32)

    def included(self, i: int, idx) -> np.ndarray:
        """Whether the rows at arena positions `idx` are in aggregation input i."""
        key = self.inc_key[i]
        return np.ones(len(idx), bool) if key is None else self.pos[key][idx]

    def values(self, column: str, idx) -> np.ndarray:
        """Stored values of `column` at arena positions `idx` (strings decoded)."""
        return self.decode(column, self.pos[f"v:{column}"][idx])

    def _widen(self, column: str) -> None:
        """Store an int64 column at full width from now on (a value left the int32 range)."""
        self.narrow.discard(column)
        self.columns[column] = np.dtype(np.int64)
        self.pos[f"v:{column}"] = self.pos[f"v:{column}"].astype(np.int64)
        for i, inp in enumerate(self.inputs):
            if inp.column == column:
                for k in (f"efv:{i}", f"elv:{i}", f"ex:min:{i}", f"ex:max:{i}",
                          *(f"lk:{i}:{r}" for r in range(inp.last_k))):
                    if k in self.slot:
                        self.slot[k] = self.slot[k].astype(np.int64)
        self._rebuild_blocks()

    def sync_widths(self, derive: bool = False) -> None:
        """After loading arrays: columns saved at full width are no longer narrow, and derived
        arrays the saving version did not keep (per position, or `derive`: per slot, e.g. `sem`)
        are derived again."""
        cap = len(self.pos["time"])
        stale = [k for k, a in self.pos.items() if len(a) != cap]
        for k in stale:
            self.pos[k] = np.zeros(cap, self.pos[k].dtype)
        if stale or derive:
            S = self.slot
            st, ln = S["start"][1:self.n_slots].astype(np.int64), S["len"][1:self.n_slots].astype(np.int64)
            live = np.flatnonzero(ln > 0)
            zero = np.zeros(len(live), np.int64)
            self._derive(live + 1, st[live], ln[live], zero, zero)
        for c in list(self.narrow):
            if self.pos[f"v:{c}"].dtype == np.int64:
                self._widen(c)

    def largest(self, column: str) -> int:
        """An upper bound of |value| over an integer column's stored values (0 when none): int64
        sums of fewer than 2^62 / bound values cannot wrap around."""
        got = self.magnitude.get(column)
        if got is None:
            v = self.pos[f"v:{column}"][:self.used]
            got = self.magnitude[column] = max(-int(v.min()), int(v.max()), 0) if len(v) else 0
        return got

    def decode(self, column: str, codes: np.ndarray) -> np.ndarray:
        """Values of a column from what the arena stores (dictionary codes for strings, int32 for
        narrow int64 columns)."""
        if column not in self.dicts:
            return codes.astype(np.int64) if column in self.narrow else codes
        table = self._decoded.get(column)
        if table is None:
            table = self._decoded[column] = np.array(self.dicts[column][0] or [""], dtype=np.dtypes.StringDType())
        return table[codes]

    # ------------------------------------------------------------------ ingestion
    def raw_rows(self, time: np.ndarray, cols: dict[str, Vec]) -> dict[str, np.ndarray]:
        """The stored per-row arrays of a batch: times, columns and inclusion masks."""
        n = len(time)
        raw = {"time": time}
        for c in self.columns:
            v = cols[c].values
            if c in self.dicts:
                v = self.encode(c, v)
            elif c in self.narrow:
                lo, hi = (int(v[0]), int(v[0])) if len(v) == 1 else (int(v.min()), int(v.max())) if len(v) else (0, 0)
                if lo < _I32.min or hi > _I32.max:
                    self._widen(c)
                v = v.astype(self.columns[c])
            if c in self.magnitude and len(v):  # kept up to date once asked for
                self.magnitude[c] = max(self.magnitude[c], -int(v.min()), int(v.max()))
            raw[f"v:{c}"], raw[f"m:{c}"] = v, cols[c].valid
        for i, inp in enumerate(self.inputs):
            if inp.where is not None:
                w = inp.where(cols, n)
                inc = w.valid & w.values.astype(bool)
                raw[f"inc:{i}"] = inc if inp.column is None else inc & cols[inp.column].valid
        return raw

    def insert(self, slots: np.ndarray, raw: dict[str, np.ndarray]) -> None:
        """Place a batch of rows in their entities' segments, keeping (time, arrival) order.

        Vectorised over the touched segments: segments without room move to the arena's end,
        each segment's rows from the first new time on are merged with the new rows, and the
        derived structures are recomputed from that point only."""
        order = np.lexsort((raw["time"], slots))  # stable: batch order on ties
        slots = slots[order]
        raw = {k: v[order] for k, v in raw.items()}
        first = np.flatnonzero(np.concatenate(([True], slots[1:] != slots[:-1])))
        u, k = slots[first], np.diff(np.append(first, len(slots)))
        S, P = self.slot, self.pos
        st, ln, cap = S["start"][u], S["len"][u], S["cap"][u]
        # old rows with time <= the first new time stay in place (new rows go after equal times)
        p = count_before(P["time"], st, ln, raw["time"][first] + 1) if self.used else np.zeros(len(u), np.int64)
        need = ln + k
        move = need > cap
        derive_from = p.copy()
        end = np.flatnonzero(move & (ln > 0) & (st.astype(np.int64) + cap == self.used))
        if len(end):  # the arena's last segment grows where it is: no copy, no hole
            (e,) = end
            grown = int(need[e]) + max(int(need[e]) // 4, 4)
            self._grow(int(st[e]) + grown)
            self.used = int(st[e]) + grown
            cap[e] = S["cap"][u[e]] = grown
            move[e] = False
        if move.any():
            mv = np.flatnonzero(move)
            newcap = need[mv] + np.maximum(need[mv] // 4, 4)
            new_st = self.used + np.cumsum(newcap) - newcap
            self._grow(self.used + int(newcap.sum()))
            src, dst = ranges(st[mv], ln[mv]), ranges(new_st, ln[mv])
            for a in self.pos.values():
                a[dst] = a[src]
            self.holes += int(cap[mv].sum())
            self.used += int(newcap.sum())
            st[mv], cap[mv] = new_st, newcap
            S["start"][u[mv]], S["cap"][u[mv]] = new_st, newcap
            derive_from[mv] = 0  # blocks must be rebuilt at the new place
        tail = ln - p
        src = ranges(st + p, tail)  # old rows after the insertion point
        dst = ranges(st + p, tail + k)
        g_old = np.repeat(np.arange(len(u)), tail)
        g_new = np.repeat(np.arange(len(u)), k)
        if len(src):
            t_all = np.concatenate((P["time"][src], raw["time"]))
            g_all = np.concatenate((g_old, g_new))
            perm = np.lexsort((t_all, g_all))  # stable: old rows (first) before new ones on ties
            for key in self.raw_keys:
                a = P[key]
                a[dst] = np.concatenate((a[src], raw[key]))[perm]
        else:  # pure appends: rows are already in (segment, time, arrival) order
            for key in self.raw_keys:
                P[key][dst] = raw[key]
        S["len"][u] = need
        self._derive(u, st, need, p, derive_from, ln)  # compaction is the caller's (`compact`)

    def _derive(self, slots: np.ndarray, st: np.ndarray, n: np.ndarray, p: np.ndarray, pb: np.ndarray,
                old_n: np.ndarray | None = None) -> None:
        """Recompute the structures of segments (slots, start st, length n) from relative position
        p on (block structures from pb on), given correct values before p; `old_n`: the segments'
        lengths before rows were merged in from p on (None: their structures are rebuilt)."""
        with np.errstate(invalid="ignore", over="ignore"):  # infinite sums: queries sum those rows again
            self._derive_all(slots, st, n, p, pb, old_n)

    def _derive_all(self, slots: np.ndarray, st: np.ndarray, n: np.ndarray, p: np.ndarray, pb: np.ndarray,
                    old_n: np.ndarray | None) -> None:
        P = self.pos
        m = len(st)
        span = n - p
        rows = ranges(st + p, span)
        g = np.repeat(np.arange(m), span)
        gstart = np.cumsum(span) - span
        has_prev = p > 0
        prev = np.where(has_prev, st + p - 1, 0)
        for i, inp in enumerate(self.inputs):
            inc = self.included(i, rows)
            if f"cnt:{i}" in P:
                base = np.where(has_prev, P[f"cnt:{i}"][prev], 0)
                P[f"cnt:{i}"][rows] = _seg_cumsum(inc.astype(np.int64), gstart, g) + base[g]
            if "sum" in inp.needs:
                x = np.where(inc, P[f"v:{inp.column}"][rows], 0)
                if inp.sum_int:
                    base = np.where(has_prev, P[f"shi:{i}"][prev], 0)
                    P[f"shi:{i}"][rows] = _seg_cumsum(x.astype(np.int64), gstart, g) + base[g]
                else:  # each segment's running sum continued from its prefix before p
                    exact_sums.derive(self, i, slots, rows, x.astype(np.float64), g, gstart, span, p, prev, old_n)
            if inp.windows:
                if old_n is None:  # ends depend on later rows: whole segments
                    self._rebuild_ends(i, inp, st, n, inp.windows)
                    self._forget_values(i, slots)
                else:
                    self._derive_ends(i, inp, slots, st, n, p, old_n)
            if {"min", "max"} & inp.needs and inp.numeric:
                for kind in ("min", "max"):
                    if kind in inp.needs:
                        self._derive_blocks(i, inp, kind, st, st + pb, st + n)

    def bulk_load(self, slots: np.ndarray, raw: dict[str, np.ndarray]) -> None:
        """Replace the contents with a batch in one vectorised pass (the table must be empty)."""
        assert self.used == 0, "bulk_load needs an empty table"
        order = np.lexsort((raw["time"], slots))
        slots = slots[order]
        n = len(slots)
        self._grow(n)
        for k, v in raw.items():
            self.pos[k][:n] = v[order]
        self.used = n
        counts = np.bincount(slots, minlength=self.n_slots)
        starts = np.cumsum(counts) - counts
        S = self.slot
        S["start"][:self.n_slots], S["len"][:self.n_slots], S["cap"][:self.n_slots] = starts, counts, counts
        live = np.flatnonzero(counts)
        self._derive(live, starts[live], counts[live], np.zeros(len(live), np.int64), np.zeros(len(live), np.int64))

    def nbytes(self) -> int:
        """Bytes held by the arena up to its used length (holes included; the capacity beyond is
        zero pages never written), its block tables, slot arrays, string dictionaries and the
        values lifetime count_distinct appends look up."""
        used = max(-(-self.used // BLOCK) * BLOCK, BLOCK)
        total = sum(a.itemsize * used for a in self.pos.values())
        total += sum(a.itemsize * a.shape[0] * (used // BLOCK) for a in self.blocks.values())
        total += sum(a.nbytes for a in self.slot.values())
        total += sum(sys.getsizeof(held) + sys.getsizeof(known) + 36 * len(held) + 28 * len(known)
                     for held, known in self.distinct_values.values())  # the sets, and their ints
        total += sum(v.nbytes + t.nbytes for index in self.last_seen.values() for v, t in index.values())
        return total + sum(len(s) + 8 for strings, _ in self.dicts.values() for s in strings)
