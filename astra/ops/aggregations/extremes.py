"""Range extremes: `min` and `max` of ordered values (numbers, strings, times); NaN wins.
"""

from __future__ import annotations

import math

from astra.ops.aggregations.algebra import Extreme
from astra.ops.aggregations.base import Aggregation, _need, _present


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
    algebra = Extreme(largest=False)
    name, doc = "min", "smallest non-null value (NaN when one is NaN); null when there are none"
    online_needs = frozenset({"cnt", "min"})

    def reference(self, values, param):
        return _nan_or(min, values)


class Max(_Extreme):
    algebra = Extreme(largest=True)
    name, doc = "max", "largest non-null value (NaN when one is NaN); null when there are none"
    online_needs = frozenset({"cnt", "max"})

    def reference(self, values, param):
        return _nan_or(max, values)

