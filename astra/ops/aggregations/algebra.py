"""Aggregations as an algebra: the state each aggregation folds its values into, in plain Python.

An `Algebra` says what an aggregation keeps of the rows it has seen: `empty` is the state of no
rows, `update` folds one non-null value in (with its row's key, `(time, arrival)`: the order of
the language, docs/semantics.md), `merge` joins the states of two disjoint sets of rows,
`subtract` (where `invertible`) takes away the state of a subset, and `finalize` gives the
aggregation's value.  The laws, tested for every aggregation in tests/ops/test_agg_algebra.py:

- `finalize(fold(xs)) == reference(xs)`, and the same for any split of xs merged back;
- `merge` is associative and commutative: order-dependent states (first, last, first_k, ...)
  keep their rows' keys, so a merge never depends on which operand came first;
- `subtract(fold(a + b), fold(b)) == fold(a)` for invertible ones, exactly (rationals, counts).

States are immutable (ints, tuples, Fractions) so they can be shared and compared.  Beside each
pure form sits its numpy form over arrays of states (one per entity slot), which the engines call
(the online store folds evicted rows into lifetime states with them): `fold_runs` reduces runs of
values to one state each and `merge_arrays` joins two arrays of states.  Runs are given as the
included flags of the values and the start of each run (`cuts`), or as each value's run (`seg`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

from astra.ops import sketches
from astra.ops.exact import _rounded
from astra.ops.registry import LazyModule

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time

Key = tuple  # a row's (time, arrival) position: the language's order of rows


class Algebra:
    """Base: the state of no rows, and how states fold, merge, subtract and finalize."""

    ordered = False  # the state keeps its rows' keys (the value depends on the rows' order)
    invertible = False  # `subtract` is defined
    reads_time = False  # `finalize` needs the query time

    def empty(self, param) -> object:
        """The state of no rows (`param`: the aggregation's literal, k or q, else None)."""
        raise NotImplementedError

    def update(self, state, value, key: Key, param) -> object:
        """The state after one more non-null value; `key` is its row's (time, arrival) position,
        which order-dependent states keep (rows may come in any order)."""
        raise NotImplementedError

    def merge(self, a, b, param) -> object:
        """The state of the rows of a and of b (disjoint sets of rows, in either order)."""
        raise NotImplementedError

    def subtract(self, a, b, param) -> object:
        """The state of a's rows that are not b's (b's rows a subset of a's)."""
        raise TypeError(f"{type(self).__name__} is not invertible")

    def finalize(self, state, param, at: int | None = None) -> object:
        """The aggregation's value (None: null); `at` is the query time, for `reads_time` ones."""
        raise NotImplementedError

    def fold(self, values: Sequence[object], keys: Sequence[Key] | None = None, param=None) -> object:
        """The state of `values` (None entries are nulls, skipped); keys default to positions."""
        state = self.empty(param)
        for i, v in enumerate(values):
            if v is not None:
                state = self.update(state, v, keys[i] if keys is not None else (i, i), param)
        return state


# --------------------------------------------------------------------------- counts and sums


class Counting(Algebra):
    """count: the number of non-null values (count(*) is fed a marker per row)."""

    invertible = True

    def empty(self, param):
        return 0

    def update(self, state, value, key, param):
        return state + 1

    def merge(self, a, b, param):
        return a + b  # also the numpy form: int64 arrays of counts

    def subtract(self, a, b, param):
        return a - b

    def finalize(self, state, param, at=None):
        return state

    def fold_runs(self, inc, cuts):
        """The number of included values of each run."""
        return np.add.reduceat(inc.astype(np.int64), cuts)


def _is_float(x) -> bool:
    return isinstance(x, float)


class Summing(Algebra):
    """sum and mean: (n, exact total of the finite values, NaNs, +infs, -infs, floats among them).

    The total is an exact rational, so sums merge and subtract without rounding; `finalize` rounds
    once, as `exact_sum` does, and wraps integer sums to int64 (semantics rule 11)."""

    invertible = True

    def __init__(self, mean: bool = False):
        self.mean = mean

    def empty(self, param):
        return (0, Fraction(0), 0, 0, 0, 0)

    def update(self, state, value, key, param):
        n, total, nan, pos, neg, floats = state
        if _is_float(value) and not math.isfinite(value):
            nan, pos, neg = nan + math.isnan(value), pos + (value == math.inf), neg + (value == -math.inf)
        else:
            total += Fraction(value)
        return (n + 1, total, nan, pos, neg, floats + _is_float(value))

    def merge(self, a, b, param):
        return tuple(x + y for x, y in zip(a, b))

    def subtract(self, a, b, param):
        return tuple(x - y for x, y in zip(a, b))

    def finalize(self, state, param, at=None):
        n, total, nan, pos, neg, floats = state
        special = math.nan if nan or (pos and neg) else math.inf if pos else -math.inf if neg else None
        if not self.mean:
            if floats:
                return special if special is not None else _rounded(total)
            return int((total + (1 << 63)) % (1 << 64) - (1 << 63))
        if not n:
            return None
        if not floats:
            return float(total / n)
        if special is not None:
            return special / n
        s = _rounded(total)
        return s / n if math.isfinite(s) else _rounded(total / n)  # finite values may overflow their sum

    @staticmethod
    def merge_int64(a, b):
        """The numpy form of integer sums: int64 arrays added, wrapping as the finalized sum does
        (exact float sums merge as double-doubles in the store, `astra.online.exact_sums`)."""
        with np.errstate(over="ignore"):
            return a + b


# --------------------------------------------------------------------------- extremes and positions


def _is_nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


class Extreme(Algebra):
    """min and max: (the extreme value and its row's key, or None; saw a NaN).  Equal values
    (0.0 and -0.0) keep the earliest row's, as Python's min and max do over rows in order."""

    def __init__(self, largest: bool):
        self.largest = largest

    def empty(self, param):
        return (None, False)

    def _better(self, a, b):
        """The winner of two (value, key) candidates (either may be None)."""
        if a is None or b is None:
            return a if b is None else b
        (va, ka), (vb, kb) = a, b
        if va == vb:
            return a if ka <= kb else b
        return a if (va > vb) == self.largest else b

    def update(self, state, value, key, param):
        if _is_nan(value):
            return (state[0], True)
        return (self._better(state[0], (value, key)), state[1])

    def merge(self, a, b, param):
        return (self._better(a[0], b[0]), a[1] or b[1])

    def finalize(self, state, param, at=None):
        if state[1]:
            return math.nan
        return None if state[0] is None else state[0][0]

    def _reduce(self):
        return np.maximum if self.largest else np.minimum

    def fold_runs(self, v, inc, cuts):
        """(extreme, has) of the included values of each run (numbers: NaN wins; strings: their
        ranks in string order)."""
        if v.dtype.kind == "f":
            none = -np.inf if self.largest else np.inf
        else:
            none = np.iinfo(v.dtype).min if self.largest else np.iinfo(v.dtype).max
        return self._reduce().reduceat(np.where(inc, v, none), cuts), np.logical_or.reduceat(inc, cuts)

    def merge_arrays(self, a, b):
        """Two arrays of (extreme, has) states joined; where neither has one, a's value stays."""
        (va, ha), (vb, hb) = a, b
        return np.where(ha & hb, self._reduce()(va, vb), np.where(hb, vb, va)), ha | hb


class Nearest(Algebra):
    """first and last: the (key, value) of the earliest (or latest) row, or None."""

    ordered = True

    def __init__(self, latest: bool):
        self.latest = latest

    def empty(self, param):
        return None

    def update(self, state, value, key, param):
        return self.merge(state, (key, value), param)

    def merge(self, a, b, param):
        if a is None or b is None:
            return a if b is None else b
        return max(a, b, key=_key0) if self.latest else min(a, b, key=_key0)

    def finalize(self, state, param, at=None):
        return None if state is None else state[1]

    def fold_runs(self, positions, inc, cuts):
        """The position of the earliest (latest) included value of each run; -1 where none."""
        if self.latest:
            return np.maximum.reduceat(np.where(inc, positions, -1), cuts)
        big = np.iinfo(np.int64).max
        got = np.minimum.reduceat(np.where(inc, positions, big), cuts)
        return np.where(got == big, -1, got)

    def merge_arrays(self, a_has, b_has):
        """Where a later part b's value replaces an earlier part a's (the other way round for
        first): the keys of the merge, known from which part came first."""
        return b_has if self.latest else b_has & ~a_has


def _key0(item):
    return item[0]


class Buffer(Algebra):
    """first_k, last_k, top_k and bottom_k: the k best (key, value) rows, best first, where
    `rank` orders rows; the k best of a union are among the k best of each part."""

    ordered = True

    def __init__(self, rank: str):
        self.rank = rank  # "earliest" | "latest" | "largest" | "smallest"

    def empty(self, param):
        return ()

    def _best(self, items: Iterable, k: int) -> tuple:
        items = sorted(items, key=_key0, reverse=self.rank == "latest")
        if self.rank in ("largest", "smallest"):  # stable: equal values keep their row order
            items = sorted(items, key=lambda kv: _order_key(kv[1]), reverse=self.rank == "largest")
        return tuple(items[:k])

    def update(self, state, value, key, param):
        return self._best((*state, (key, value)), param)

    def merge(self, a, b, param):
        return self._best((*a, *b), param)

    def finalize(self, state, param, at=None):
        return tuple(v for _, v in state)

    def update_runs(self, old, old_n, v, seg, m: int, k: int):
        """last_k's numpy form: slots' newest-first buffers `old` (k arrays) holding `old_n`
        values, with each run of later values `v` (their slot in `seg`, in row order) folded
        in; returns (k arrays, counts)."""
        assert self.rank == "latest", "only last_k folds later rows into a buffer"
        c = np.bincount(seg, minlength=m)
        from_end = np.cumsum(c)[seg] - 1 - np.arange(len(seg))  # 0 for each slot's newest
        cols = np.arange(m)
        out = []
        for r in range(k):
            new = np.zeros(m, v.dtype)
            at = from_end == r
            new[seg[at]] = v[at]
            back = np.clip(r - c, 0, k - 1)  # the r-th value is the (r - c)-th kept one
            out.append(np.where(r < c, new, np.where(r - c < old_n, old[back, cols], 0)))
        return out, np.minimum(c + old_n, k)


def _order_key(v):
    """Ascending order with NaN above every number (docs/semantics.md)."""
    return (1, 0.0) if _is_nan(v) else (0, v)


# --------------------------------------------------------------------------- multisets


def _canon(v):
    """A value's identity in a multiset: floats by their bits (0.0 and -0.0 apart, NaNs together)."""
    if isinstance(v, float):
        return ("nan",) if math.isnan(v) else (v.hex(),)
    if isinstance(v, tuple):  # e.g. exp_decay_sum's (time, value): its float by its bits too
        return tuple(_canon(x) for x in v)
    return (v,)


def bag_add(a: tuple, b: tuple, sign: int = 1) -> tuple:
    """Two bags ((identity, value, count) sorted by identity) added (sign -1: b taken from a)."""
    out = {c: [v, n] for c, v, n in a}
    for c, v, n in b:
        out.setdefault(c, [v, 0])[1] += sign * n
    return tuple(sorted((c, v, n) for c, (v, n) in out.items() if n))


class Bag(Algebra):
    """A multiset of values (exact percentiles, distinct counts, sketches' inputs): merge adds
    counts, subtract takes them away; `finalize` reads the values, whose order it ignores."""

    invertible = True

    def empty(self, param):
        return ()

    def item(self, value, key):
        """What the bag holds of one row."""
        return value

    def update(self, state, value, key, param):
        item = self.item(value, key)
        return bag_add(state, ((_canon(item), item, 1),))

    def merge(self, a, b, param):
        return bag_add(a, b)

    def subtract(self, a, b, param):
        return bag_add(a, b, -1)

    @staticmethod
    def values(state) -> list:
        return [v for _, v, n in state for _ in range(n)]


class Distinct(Bag):
    """count_distinct: the number of identities in the bag."""

    def finalize(self, state, param, at=None):
        return len(state)


class Quantile(Bag):
    """median and percentile: the order statistics of the bag (param: q; None: the median).  Its
    rows keep their keys: equal values 0.0 and -0.0 stay in row order, as the engines sort them."""

    ordered = True

    def item(self, value, key):
        return (key, value)

    def finalize(self, state, param, at=None):
        from astra.ops.aggregations.order import _reference_percentile

        rows = sorted(self.values(state), key=_key0)
        return _reference_percentile([v for _, v in rows], 0.5 if param is None else param)


class Mode(Bag):
    """mode: the most frequent value of the bag; ties: the smallest of them."""

    def finalize(self, state, param, at=None):
        if not state:
            return None
        top = max(n for _, _, n in state)
        return min(v for _, v, n in state if n == top)


class DecayTerms(Bag):
    """exp_decay_sum: the bag of (time, value) terms, weighed at the query time by `finalize`
    (a weight 2^(-age / half_life) is a float of the age: no exact running sum folds them)."""

    reads_time = True

    def item(self, value, key):
        return (key[0], value)

    def finalize(self, state, param, at=None):
        terms = self.values(state)
        from astra.ops.aggregations import AGGREGATIONS

        return AGGREGATIONS["exp_decay_sum"].reference_at([x for _, x in terms], [t for t, _ in terms], at, param)


class DDSketch(Algebra):
    """approx_percentile: DDSketch buckets (code, count) sorted by code; counts add and subtract."""

    invertible = True

    def empty(self, param):
        return ()

    def update(self, state, value, key, param):
        c = sketches.dd_code_ref(value)
        return bag_add(state, ((c, c, 1),))

    def merge(self, a, b, param):
        return bag_add(a, b)

    def subtract(self, a, b, param):
        return bag_add(a, b, -1)

    def finalize(self, state, param, at=None):
        return sketches.dd_quantile_ref({c: n for c, _, n in state}, param)


class HyperLogLog(Algebra):
    """approx_count_distinct: the non-zero HyperLogLog registers (index, rank), merged by max."""

    def empty(self, param):
        return ()

    def update(self, state, value, key, param):
        h = sketches.hash_ref(value)
        rank = sketches.Q - (h & ((1 << sketches.Q) - 1)).bit_length() + 1
        return self.merge(state, ((h >> sketches.Q, rank),), param)

    def merge(self, a, b, param):
        regs = dict(a)
        for i, r in b:
            regs[i] = max(regs.get(i, 0), r)
        return tuple(sorted(regs.items()))

    def finalize(self, state, param, at=None):
        regs = [0] * sketches.M
        for i, r in state:
            regs[i] = r
        return round(sketches.hll_estimate_ref(regs))


# --------------------------------------------------------------------------- moments


class PowerSums(Algebra):
    """variance, stddev, skew and kurtosis: (n, non-finite values, exact sums of x, x^2, ..., x^k
    over the finite ones).  Central moments follow exactly from them, so they merge and subtract
    without rounding; `finalize` computes what the references compute from the same rationals."""

    invertible = True

    def __init__(self, kind: str):
        self.kind = kind  # "variance" | "stddev" | "skew" | "kurtosis"
        self.order = {"variance": 2, "stddev": 2, "skew": 3, "kurtosis": 4}[kind]

    def empty(self, param):
        return (0, 0) + (Fraction(0),) * self.order

    def update(self, state, value, key, param):
        n, bad, *s = state
        if _is_float(value) and not math.isfinite(value):
            return (n + 1, bad + 1, *s)
        x = Fraction(value)
        return (n + 1, bad, *(sp + x ** (p + 1) for p, sp in enumerate(s)))

    def merge(self, a, b, param):
        return tuple(x + y for x, y in zip(a, b))

    def subtract(self, a, b, param):
        return tuple(x - y for x, y in zip(a, b))

    def central(self, state) -> list[Fraction]:
        """[m2, ..., mk]: (1/n) sum (x - mean)^p from the power sums (binomial expansion)."""
        n, _, *s = state
        raw = [Fraction(1)] + [sp / n for sp in s]  # raw moments E[x^p]
        mean = raw[1]
        return [sum((math.comb(p, j) * raw[j] * (-mean) ** (p - j) for j in range(p + 1)), Fraction(0))
                for p in range(2, self.order + 1)]

    def finalize(self, state, param, at=None):
        n, bad = state[0], state[1]
        if n < (2 if self.order == 2 else self.order):
            return None
        if bad:
            return math.nan
        m = self.central(state)
        if self.order == 2:
            v = _rounded(m[0] * n / (n - 1))
            return math.sqrt(v) if self.kind == "stddev" else v
        from astra.ops.aggregations.shape import kurtosis_of, skew_of

        return skew_of(n, *m) if self.order == 3 else kurtosis_of(n, *m)

    @staticmethod
    def update_runs(n, shift, s1, s2, x, seg, m: int):
        """The numpy form of second-order power sums, in float64: sums of d = x - shift and d^2,
        where a slot's shift is its first value (so no cancellation exceeds the values' own
        spread); each slot's run of values `x` (slot in `seg`, in row order) is folded in.
        Returns the new (n, shift, s1, s2)."""
        c = np.bincount(seg, minlength=m)
        shift = shift.copy()
        first = (n == 0) & (c > 0)
        shift[first] = x[(np.cumsum(c) - c)[first]]
        d = x - shift[seg]
        s1 = s1 + np.bincount(seg, weights=d, minlength=m)
        s2 = s2 + np.bincount(seg, weights=d * d, minlength=m)
        return n + c, shift, s1, s2

