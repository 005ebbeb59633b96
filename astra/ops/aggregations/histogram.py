"""histogram: how many of a window's values equal each of a list of literals, one numpy kernel
over `Segments` that both engines call.

`histogram(src.col, [v1, v2, ...][, window])` is a `list<int64>` with one count per listed value,
in the list's order: the non-null values of the window equal to it (nulls ignored), so an empty
window gives all zeros, never null.  The values are literals of the column's kind (integers,
strings or booleans), distinct and at least one (E0214).  Floats are refused, as `mode` and
`count_distinct` refuse them: they have no exact identity (0.1 + 0.2 is no literal's value).

The state is the tuple of counts: it merges and subtracts exactly, count by count.
"""

from __future__ import annotations

from astra.lang.types import INT64, Type
from astra.ops.aggregations.algebra import Algebra
from astra.ops.aggregations.base import _need, _present
from astra.ops.aggregations.segmented import SegmentAggregation
from astra.ops.registry import LazyModule, TypeRuleError
from astra.ops.segments import Segments

np = LazyModule("numpy", "np", globals())  # numpy loads on first use, never at compile time

CODE = "E0214"  # the listed values: not literals of the column's kind, none, or one twice
INT32_RANGE = (-(2**31), 2**31 - 1)


def _literal_type(column: Type) -> Type:
    """The type of the literals that can equal a value of the column (an int32's are int64)."""
    return INT64 if column.is_integer else column.non_null()


def _is_of(v: object, column: Type) -> bool:
    """Whether the literal value `v` is of the column's kind (bool is no integer here)."""
    if column.is_integer:
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, str) if column.name == "string" else isinstance(v, bool)


def _same(x: object, v: object) -> bool:
    """x equals the listed value v (true is not 1: booleans and integers never meet)."""
    return isinstance(x, bool) == isinstance(v, bool) and x == v


class Tally(Algebra):
    """histogram's state: the count of each listed value, a tuple in the list's order."""

    invertible = True

    def empty(self, param):
        return (0,) * len(param)

    def update(self, state, value, key, param):
        return tuple(c + _same(value, v) for c, v in zip(state, param))

    def merge(self, a, b, param):
        return tuple(x + y for x, y in zip(a, b))

    def subtract(self, a, b, param):
        return tuple(x - y for x, y in zip(a, b))

    def finalize(self, state, param, at=None):
        return state


def _counts(seg: Segments, listed: tuple) -> Segments:
    """Each query's counts of the listed values, as a run of len(listed) int64 per query: every
    value is found among the listed ones, sorted, by a binary search, then counted per (query,
    listed value) by one bincount."""
    m, n = len(listed), seg.n
    values = seg.values
    if values.dtype.kind in "OT":  # strings: Python's comparisons, as the literals compare
        values, table = values.astype(object), np.array(listed, dtype=object)
    elif values.dtype.kind == "b":
        table = np.array(listed, dtype=bool)
    else:
        values, table = values.astype(np.int64), np.array(listed, dtype=np.int64)
    order = np.argsort(table, kind="stable")
    ranked = table[order]
    at = np.minimum(np.searchsorted(ranked, values), m - 1)
    hit = np.asarray(ranked[at] == values, dtype=bool)
    cell = seg.query_ids()[hit] * m + order[at[hit]]
    counts = np.bincount(cell, minlength=n * m).astype(np.int64)
    return Segments(values=counts, offsets=np.arange(n + 1, dtype=np.int64) * m)


class Histogram(SegmentAggregation):
    name, takes_param = "histogram", True
    param_kind, param_label = "literal", "values"
    algebra = Tally()
    doc = ("how many non-null values equal each listed value (distinct literals of the column's kind), "
           "a list of counts in the list's order")
    empty_doc = "`[0, ...]` (one 0 per listed value)"

    def _column(self, column: Type | None) -> None:
        _need(column, column is not None and (column.is_integer or column.name in ("string", "bool")), self.name,
              "a column of integers, strings or booleans (floats have no exact identity)")

    def _example(self, column: Type | None) -> str:
        return self.param_text(self.example_param(column))

    def check_param_type(self, column, param):
        self._column(column)
        want = _literal_type(column)
        if param.name != "list" or not (param.item.is_null or param.item == want):
            raise TypeRuleError(f"`{self.name}` of `{column.non_null()}` values needs a list of `{want}` literals, "
                                f"got `{param}`", arg=1, code=CODE,
                                help=f"e.g. `{self.name}(src.col, {self._example(column)}, 7d)`")

    def infer(self, column, param):
        self._column(column)
        if not isinstance(param, tuple) or not param:
            raise TypeRuleError(f"`{self.name}` needs at least one value to count", arg=1, code=CODE,
                                help=f"e.g. `{self.name}(src.col, {self._example(column)}, 7d)`")
        seen = set()
        for v in param:
            if not _is_of(v, column):
                raise TypeRuleError(f"`{self.name}` of `{column.non_null()}` values cannot count {v!r}", arg=1,
                                    code=CODE)
            if column.name == "int32" and not INT32_RANGE[0] <= v <= INT32_RANGE[1]:
                raise TypeRuleError(f"`{self.name}` value {v} is not an int32: no value of the column equals it",
                                    arg=1, code=CODE)
            if v in seen:
                raise TypeRuleError(f"`{self.name}` lists the value {self.param_text(v)} twice", arg=1, code=CODE,
                                    help="each value gets one count, at its place in the list")
            seen.add(v)
        return Type.list_of(INT64)

    def example_param(self, column):
        if column is not None and column.name == "string":
            return ("a", "b")
        if column is not None and column.name == "bool":
            return (False, True)
        return (1, 2)

    def reference(self, values, param):
        present = _present(values)
        return tuple(sum(_same(x, v) for x in present) for v in param)

    def kernel(self, seg, param):
        return _counts(seg, param)

