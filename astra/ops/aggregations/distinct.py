"""Exact distinct counts: `count_distinct` of values with an exact identity (no floats).
"""

from __future__ import annotations

from astra.lang.types import INT64
from astra.ops.aggregations.algebra import Distinct
from astra.ops.aggregations.base import Aggregation, _need, _present
from astra.ops.registry import Vec


class CountDistinct(Aggregation):
    algebra = Distinct()
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

