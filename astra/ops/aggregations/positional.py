"""Positional aggregations: the `first` and `last` non-null value, and the newest k (`last_k`).
"""

from __future__ import annotations

from astra.lang.types import Type
from astra.ops.aggregations.algebra import Buffer, Nearest
from astra.ops.aggregations.base import Aggregation, _need, _present
from astra.ops.registry import TypeRuleError


class _Positional(Aggregation):
    offline_reads_rows = False  # validity flags, then values at one position per query

    def infer(self, column, param):
        _need(column, column.name not in ("list",), self.name, "a scalar column")
        return column.nullable()


class First(_Positional):
    algebra = Nearest(latest=False)
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
    algebra = Nearest(latest=True)
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


class LastK(Aggregation):
    name, takes_param = "last_k", True
    algebra = Buffer("latest")
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

    def online_evicted_kept(self, param):
        return param

    def online(self, w, out, param):
        return w.last_k(param)  # lifetime: the newest evicted values follow when fewer are retained

