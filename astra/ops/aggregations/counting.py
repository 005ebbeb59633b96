"""Counting rows or non-null values: `count`.
"""

from __future__ import annotations

from astra.lang.types import INT64
from astra.ops.aggregations.algebra import Counting
from astra.ops.aggregations.base import Aggregation, _present
from astra.ops.registry import Vec


class Count(Aggregation):
    name, column = "count", "optional"
    algebra = Counting()
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

