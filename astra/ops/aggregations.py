"""Windowed aggregations over the visible rows of an events source.


Every aggregation sees the rows of one entity with `t - window <= time < t` (lifetime: `time < t`),
in (time, source position) order, and ignores null inputs except `count(*)`.  Each one is declared
once here with its type rule, its empty-window value and its plain-Python reference; its engine
kernels (`offline`, `online`, `online_one`) sit beside them in the same class so the engines cannot
drift apart unnoticed, written only against the window structures of `astra.ops.structures`
(this module imports no engine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

from astra.lang.types import FLOAT64, INT64, Type
from astra.ops.exact import exact_mean, exact_sum, exact_variance
from astra.ops.registry import LazyModule, TypeRuleError, Vec

if TYPE_CHECKING:
    import polars as pl

    from astra.ops.structures import OfflineWindow, OnlineSingle, OnlineWindow

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time


class Aggregation:
    """Base: subclasses set `name`, `column` and implement `infer` and `reference`."""

    name: str = ""
    column: str = "required"  # "required" | "optional" (count(*) when absent)
    takes_param: bool = False  # last_k's k
    doc: str = ""

    def infer(self, column: Type | None, param: int | None) -> Type:
        raise NotImplementedError

    def null_policy(self, column: str | None) -> str:
        """What the aggregation does with null inputs, in words (docs/semantics.md rule 3)."""
        return f"null values of `{column}` ignored"

    def reference(self, values: Sequence[object], param: int | None) -> object:
        """The value over visible rows' inputs in (time, position) order; None entries are nulls.

        The result is converted to the result type by the caller (e.g. an int 0 sum to 0.0)."""
        raise NotImplementedError

    def offline(self, windows: Sequence[OfflineWindow], column: str | None, param: int | None) -> list[pl.Series]:
        """Offline kernel: the value for every query of each window (several windows of one sorted
        source at once, so they can share work), in the index's sorted-query order.

        `OfflineWindow` (astra.ops.structures) exposes the rows [lo, hi) of each query's window."""
        return [self.offline_window(w, column, param) for w in windows]

    def offline_window(self, w: OfflineWindow, column: str | None, param: int | None) -> pl.Series:
        raise NotImplementedError

    # the offline kernel reads its column over every sorted row (False: at a few positions only)
    offline_reads_rows: bool = True
    # ... and only to tell values apart: small integer codes serve as well as the values
    offline_reads_codes: bool = False

    # online kernel (astra.online): `online_needs` names the store structures it reads
    # ("cnt", "sum", "li", "ni" prefix structures, or "gather" for the window's rows)
    online_needs: frozenset[str] = frozenset({"gather"})
    online_mergeable: bool = False  # True when the lifetime value stays exact after old rows are evicted

    def online_mergeable_for(self, column: Type | None) -> bool:
        """`online_mergeable` for a column of this type (None: count(*))."""
        return self.online_mergeable

    def online(self, w: OnlineWindow, out: Type, param: int | None) -> Vec:
        """Online kernel: the value over one window for every query of a batch (numpy, vectorised)."""
        raise NotImplementedError

    def online_one(self, q: OnlineSingle, ti: int, i: int, j: int, out: Type, param: int | None) -> object:
        """Single-entity online kernel: the value (None: null) of input i of table ti over window j
        (-1: lifetime) for the one query of `q`, bit-identical to `online`.  By default `online`
        itself on a one-query view; kernels with a scalar form override it."""
        return q.vector(ti, i, j, lambda w: self.online(w, out, param))


def _need(column: Type | None, ok: bool, fn: str, what: str) -> None:
    if column is not None and not ok:
        raise TypeRuleError(f"`{fn}` expects {what}, got `{column.non_null()}`", arg=0)


def _masked(values, ok) -> pl.Series:
    """A Series of `values`, null where `ok` is False."""
    import polars as pl

    return pl.select(pl.when(pl.Series(ok)).then(pl.Series(values))).to_series()


def _present(values: Sequence[object]) -> list[object]:
    return [v for v in values if v is not None]


class Count(Aggregation):
    name, column = "count", "optional"
    doc = "number of rows (count(source)) or of non-null values (count(source.col)); 0 when empty"

    def infer(self, column, param):
        return INT64

    def null_policy(self, column):
        if column is None:
            return "counts every row, nulls included"
        return f"counts non-null values of `{column}`"

    def reference(self, values, param):
        # count(*) is fed a non-null marker per row, so it counts rows
        return len(_present(values))

    def offline_window(self, w, column, param):
        import polars as pl

        return pl.Series(w.count(column))


    online_needs, online_mergeable = frozenset({"cnt"}), True

    def online(self, w, out, param):
        return Vec(w.count(), w.ones)

    def online_one(self, q, ti, i, j, out, param):
        return q.count(ti, i, j)


class Sum(Aggregation):
    name = "sum"
    doc = "sum of non-null values; 0 when empty (int64 for integers, float64 for floats)"

    def infer(self, column, param):
        _need(column, column.is_numeric, "sum", "a numeric column")
        return INT64 if column.is_integer else FLOAT64

    def reference(self, values, param):
        xs = _present(values)
        # exactly rounded float sum (an overflow is +/-inf); callers convert to the result type
        if any(isinstance(x, float) for x in xs):
            return exact_sum(xs)
        return (sum(xs) + (1 << 63)) % (1 << 64) - (1 << 63)  # int64 wraps around (semantics rule 11)

    def offline_window(self, w, column, param):
        import polars as pl

        return pl.Series(w.sum(column))  # exact int64 or compensated float64; 0 when empty


    online_needs, online_mergeable = frozenset({"sum"}), True

    def online(self, w, out, param):
        return Vec(w.sum().astype(np.int64 if out.is_integer else np.float64, copy=False), w.ones)

    def online_one(self, q, ti, i, j, out, param):
        s = q.sum(ti, i, j)
        return s if out.is_integer else float(s)


class Mean(Aggregation):
    name = "mean"
    doc = "arithmetic mean of non-null values; null when there are none"

    def infer(self, column, param):
        _need(column, column.is_numeric, "mean", "a numeric column")
        return FLOAT64.nullable()

    def reference(self, values, param):
        xs = _present(values)
        if not xs:
            return None
        return exact_mean(xs) if any(isinstance(x, float) for x in xs) else float(Fraction(sum(xs), len(xs)))

    def offline_window(self, w, column, param):
        mean, n = w.mean(column)
        return _masked(mean, n > 0)


    online_needs, online_mergeable = frozenset({"cnt", "sum"}), True

    def online(self, w, out, param):
        n = w.count()
        s = w.sum()
        mean = s / np.maximum(n, 1)
        # floats: finite values whose sum overflows still have a finite mean; integers: an
        # int64 sum that may have wrapped around
        floats = s.dtype.kind == "f"
        redo = np.isinf(s) & (n > 0) if floats else n * float(w.magnitude()) >= 2.0 ** 62
        for j in np.flatnonzero(redo).tolist():
            mean[j] = w.exact_mean(j, int(n[j]))
        return Vec(mean, n > 0)

    def online_one(self, q, ti, i, j, out, param):
        return q.mean(ti, i, j)


class _Extreme(Aggregation):
    def infer(self, column, param):
        _need(column, column.is_orderable, self.name, "an ordered column (number, string, time)")
        return column.nullable()

    def offline(self, windows, column, param):
        # every window at once: the engine shares one range structure between them
        return windows[0].extremes(windows, column, largest=self.name == "max")


    def online(self, w, out, param):
        return w.extreme(largest=self.name == "max")  # block sparse table (numbers), else a gather

    def online_mergeable_for(self, column):
        # numbers, times and strings: evicted rows fold into one running extreme per entity
        return column is not None and (column.is_numeric or column.name in ("timestamp", "duration", "string"))

    def online_one(self, q, ti, i, j, out, param):
        return q.extreme(ti, i, j, largest=self.name == "max")


def _nan_or(pick, values):
    """pick(values) over the non-null values (None when there are none); NaN when one is NaN."""
    xs = _present(values)
    if any(isinstance(x, float) and math.isnan(x) for x in xs):
        return math.nan
    return pick(xs) if xs else None  # strings: code-point order, as Python compares them


class Min(_Extreme):
    name, doc = "min", "smallest non-null value (NaN when one is NaN); null when there are none"
    online_needs = frozenset({"cnt", "min"})

    def reference(self, values, param):
        return _nan_or(min, values)


class Max(_Extreme):
    name, doc = "max", "largest non-null value (NaN when one is NaN); null when there are none"
    online_needs = frozenset({"cnt", "max"})

    def reference(self, values, param):
        return _nan_or(max, values)


class _Positional(Aggregation):
    offline_reads_rows = False  # validity flags, then values at one position per query

    def infer(self, column, param):
        _need(column, column.name not in ("list",), self.name, "a scalar column")
        return column.nullable()


class First(_Positional):
    name, doc = "first", "earliest non-null value (ties: the earlier row in the source); null when none"

    def reference(self, values, param):
        xs = _present(values)
        return xs[0] if xs else None

    def offline_window(self, w, column, param):
        return w.gather(column, w.nearest_valid(column, latest=False))


    online_needs, online_mergeable = frozenset({"ni"}), True

    def online(self, w, out, param):
        return w.first()

    def online_one(self, q, ti, i, j, out, param):
        return q.nearest(ti, i, j, latest=False)


class Last(_Positional):
    name, doc = "last", "latest non-null value (ties: the later row in the source); null when none"

    def reference(self, values, param):
        xs = _present(values)
        return xs[-1] if xs else None

    def offline_window(self, w, column, param):
        return w.gather(column, w.nearest_valid(column, latest=True))


    online_needs, online_mergeable = frozenset({"li"}), True

    def online(self, w, out, param):
        return w.last()

    def online_one(self, q, ti, i, j, out, param):
        return q.nearest(ti, i, j, latest=True)


class CountDistinct(Aggregation):
    name, doc = "count_distinct", "number of distinct non-null values; 0 when empty"

    def infer(self, column, param):
        _need(column, column.name not in ("list", "vector") and not column.is_float, "count_distinct",
              "a column of integers, strings, booleans or times (floats have no exact identity)")
        return INT64

    def reference(self, values, param):
        return len(set(_present(values)))

    offline_reads_codes = True

    def offline_window(self, w, column, param):
        import polars as pl

        return pl.Series(w.distinct(column))


    online_needs = frozenset({"distinct"})  # sorted per-row window ends, one per window

    def online(self, w, out, param):
        return Vec(w.distinct(), w.ones)

    def online_one(self, q, ti, i, j, out, param):
        return q.distinct(ti, i, j)


class Variance(Aggregation):
    name, doc = "variance", "sample variance (n - 1) of non-null values; null with fewer than two"

    def infer(self, column, param):
        _need(column, column.is_numeric, self.name, "a numeric column")
        return FLOAT64.nullable()

    def reference(self, values, param):
        return exact_variance(_present(values))

    def offline_window(self, w, column, param):
        n, variance = w.variance(column)
        with np.errstate(invalid="ignore"):  # garbage where n < 2 is masked
            return _masked(self.finish(variance), n >= 2)

    def finish(self, variance):
        return variance


    online_needs, online_mergeable = frozenset({"gather", "moments"}), True  # evicted rows: shifted sums

    def online(self, w, out, param):
        n, m2 = w.moments()
        with np.errstate(invalid="ignore", over="ignore"):
            return Vec(self.finish(m2 / np.maximum(n - 1, 1)), n >= 2)



class Stddev(Variance):
    name, doc = "stddev", "sample standard deviation (n - 1) of non-null values; null with fewer than two"

    def reference(self, values, param):
        v = super().reference(values, param)
        return None if v is None else math.sqrt(v)

    def finish(self, variance):
        return np.sqrt(variance)


class LastK(Aggregation):
    name, takes_param = "last_k", True
    offline_reads_rows = False
    doc = "the k latest non-null values, newest first; an empty list when none"

    def infer(self, column, param):
        _need(column, column.name not in ("list", "vector"), "last_k", "a scalar column")
        if param is None or param < 1:
            raise TypeRuleError("`last_k` needs a positive integer k, e.g. `last_k(src.col, 5, 7d)`", arg=1)
        return Type.list_of(column.non_null())

    def reference(self, values, param):
        return tuple(reversed(_present(values)[-param:]))

    def offline_window(self, w, column, param):
        return w.last_k(column, param)


    online_mergeable = True  # the k latest included evicted values are kept per entity

    def online(self, w, out, param):
        return w.last_k(param)  # lifetime: the newest evicted values follow when fewer are retained


AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (Count(), Sum(), Mean(), Min(), Max(), First(), Last(), CountDistinct(), Variance(), Stddev(),
              LastK())
}

# Aggregations over `Segments` (their modules build on the classes above), one line each
from astra.ops import agg_decay, agg_moments, agg_order, agg_sketch  # noqa: E402

AGGREGATIONS["first_k"] = agg_order.FirstK()
AGGREGATIONS["top_k"] = agg_order.TopK()
AGGREGATIONS["bottom_k"] = agg_order.BottomK()
AGGREGATIONS["median"] = agg_order.Median()
AGGREGATIONS["percentile"] = agg_order.Percentile()
AGGREGATIONS["skew"] = agg_moments.Skew()
AGGREGATIONS["kurtosis"] = agg_moments.Kurtosis()
AGGREGATIONS["exp_decay_sum"] = agg_decay.ExpDecaySum()
AGGREGATIONS["approx_count_distinct"] = agg_sketch.ApproxCountDistinct()
AGGREGATIONS["approx_percentile"] = agg_sketch.ApproxPercentile()
