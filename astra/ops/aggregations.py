"""Windowed aggregations over the visible rows of an events source.

Every aggregation sees the rows of one entity with `t - window <= time < t` (lifetime: `time < t`),
in (time, source position) order, and ignores null inputs except `count(*)`.  Each one is declared
once here with its type rule, its empty-window value and its plain-Python reference; the engines'
kernels (`offline`, Polars/numpy over sorted columns; `online`, numpy over the store's buffers)
sit beside them in the same class so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from astra.lang.types import FLOAT64, INT64, Type
from astra.ops.registry import TypeRuleError


class Aggregation:
    """Base: subclasses set `name`, `column` and implement `infer` and `reference`."""

    name: str = ""
    column: str = "required"  # "required" | "optional" (count(*) when absent)
    takes_param: bool = False  # last_k's k
    doc: str = ""

    def infer(self, column: Type | None, param: int | None) -> Type:
        raise NotImplementedError

    def reference(self, values: Sequence[object], param: int | None) -> object:
        """The value over visible rows' inputs in (time, position) order; None entries are nulls.

        The result is converted to the result type by the caller (e.g. an int 0 sum to 0.0)."""
        raise NotImplementedError


def _need(column: Type | None, ok: bool, fn: str, what: str) -> None:
    if column is not None and not ok:
        raise TypeRuleError(f"`{fn}` expects {what}, got `{column.non_null()}`", arg=0)


def _present(values: Sequence[object]) -> list[object]:
    return [v for v in values if v is not None]


class Count(Aggregation):
    name, column = "count", "optional"
    doc = "number of rows (count(source)) or of non-null values (count(source.col)); 0 when empty"

    def infer(self, column, param):
        return INT64

    def reference(self, values, param):
        # count(*) is fed a non-null marker per row, so it counts rows
        return len(_present(values))


class Sum(Aggregation):
    name = "sum"
    doc = "sum of non-null values; 0 when empty (int64 for integers, float64 for floats)"

    def infer(self, column, param):
        _need(column, column.is_numeric, "sum", "a numeric column")
        return INT64 if column.is_integer else FLOAT64

    def reference(self, values, param):
        xs = _present(values)
        # exact float sum; callers convert to the result type (0 becomes 0.0 for float columns)
        return math.fsum(xs) if any(isinstance(x, float) for x in xs) else sum(xs)


class Mean(Aggregation):
    name = "mean"
    doc = "arithmetic mean of non-null values; null when there are none"

    def infer(self, column, param):
        _need(column, column.is_numeric, "mean", "a numeric column")
        return FLOAT64.nullable()

    def reference(self, values, param):
        xs = _present(values)
        return math.fsum(xs) / len(xs) if xs else None


class _Extreme(Aggregation):
    def infer(self, column, param):
        _need(column, column.is_orderable, self.name, "an ordered column (number, string, time)")
        return column.nullable()


class Min(_Extreme):
    name, doc = "min", "smallest non-null value; null when there are none"

    def reference(self, values, param):
        xs = _present(values)
        return min(xs) if xs else None


class Max(_Extreme):
    name, doc = "max", "largest non-null value; null when there are none"

    def reference(self, values, param):
        xs = _present(values)
        return max(xs) if xs else None


class _Positional(Aggregation):
    def infer(self, column, param):
        _need(column, column.name not in ("list",), self.name, "a scalar column")
        return column.nullable()


class First(_Positional):
    name, doc = "first", "earliest non-null value (ties: the earlier row in the source); null when none"

    def reference(self, values, param):
        xs = _present(values)
        return xs[0] if xs else None


class Last(_Positional):
    name, doc = "last", "latest non-null value (ties: the later row in the source); null when none"

    def reference(self, values, param):
        xs = _present(values)
        return xs[-1] if xs else None


class CountDistinct(Aggregation):
    name, doc = "count_distinct", "number of distinct non-null values; 0 when empty"

    def infer(self, column, param):
        _need(column, column.name not in ("list", "vector") and not column.is_float, "count_distinct",
              "a column of integers, strings, booleans or times (floats have no exact identity)")
        return INT64

    def reference(self, values, param):
        return len(set(_present(values)))


class Variance(Aggregation):
    name, doc = "variance", "sample variance (n - 1) of non-null values; null with fewer than two"

    def infer(self, column, param):
        _need(column, column.is_numeric, self.name, "a numeric column")
        return FLOAT64.nullable()

    def reference(self, values, param):
        xs = _present(values)
        return float(statistics.variance(xs)) if len(xs) >= 2 else None


class Stddev(Variance):
    name, doc = "stddev", "sample standard deviation (n - 1) of non-null values; null with fewer than two"

    def reference(self, values, param):
        v = super().reference(values, param)
        return None if v is None else math.sqrt(v)


class LastK(Aggregation):
    name, takes_param = "last_k", True
    doc = "the k latest non-null values, newest first; an empty list when none"

    def infer(self, column, param):
        _need(column, column.name not in ("list", "vector"), "last_k", "a scalar column")
        if param is None or param < 1:
            raise TypeRuleError("`last_k` needs a positive integer k, e.g. `last_k(src.col, 5, 7d)`", arg=1)
        return Type.list_of(column.non_null())

    def reference(self, values, param):
        return tuple(reversed(_present(values)[-param:]))


AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (Count(), Sum(), Mean(), Min(), Max(), First(), Last(), CountDistinct(), Variance(), Stddev(),
              LastK())
}
