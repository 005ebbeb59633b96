"""What an aggregation is: the `Aggregation` base class and the helpers its families share.

Every aggregation sees the rows of one entity with `t - window <= time < t` (lifetime: `time < t`),
in (time, source position) order, and ignores null inputs except `count(*)`.  Each one is declared
once, with its type rule, its null policy, its empty-window value and its plain-Python reference;
its engine kernels (`offline`, `online`, `online_one`) sit beside them in the same class so the
engines cannot drift apart unnoticed, written only against the window structures of
`astra.ops.structures` (no module of `astra.ops` imports an engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from astra.lang.types import Type
from astra.ops.registry import TypeRuleError, Vec

if TYPE_CHECKING:
    import polars as pl

    from astra.ops.aggregations.algebra import Algebra
    from astra.ops.structures import OfflineWindow, OnlineSingle, OnlineWindow


# The kinds of literal an aggregation may take after its column (its `param_kind`): a valid example
# (for the generated docs and the random programs) and the name signatures give it by default.
# "count", "fraction" and "duration" are checked by the checker itself (E0209, E0210, E0211);
# a "literal" is any literal or list of literals, handed as a value (a tuple for a list) to the
# type rule, which validates it and raises its own `TypeRuleError` code.
PARAM_KINDS: dict[str, tuple[object, str]] = {"count": (3, "k"), "fraction": (0.5, "q"),
                                              "duration": (3_600_000_000, "half_life"), "literal": (None, "value")}


class Aggregation:
    """Base: subclasses set `name`, `column` and implement `infer` and `reference`."""

    name: str = ""
    column: str = "required"  # "required" | "optional" (count(*) when absent)
    takes_param: bool = False  # a literal after the column: last_k's k, percentile's q, ...
    param_kind: str = "count"  # what the checker accepts there: a key of PARAM_KINDS
    param_label: str = ""  # its name in signatures ("": k, q or half_life after its kind)
    empty_doc: str = ""  # the docs' empty-window cell, where the reference's own value would mislead
    doc: str = ""
    # its state: empty, update, merge, subtract where invertible, finalize (astra.ops.aggregations.algebra)
    algebra: Algebra | None = None

    def infer(self, column: Type | None, param: int | None) -> Type:
        raise NotImplementedError

    def check_param_type(self, column: Type | None, param: Type) -> None:
        """For a "literal" parameter: raise `TypeRuleError` (arg=1) when a literal of type `param`
        (a list's is `list<T>`) does not suit a column of this type; `infer` then sees its value."""

    def param_name(self) -> str:
        """The parameter's name in signatures (`k`, `q`, `half_life`, ...); "" without one."""
        return (self.param_label or PARAM_KINDS[self.param_kind][1]) if self.takes_param else ""

    def example_param(self, column: Type | None) -> object:
        """A parameter the type rule accepts with a column of this type (None without one); a
        "literal" parameter depends on the column, so its aggregation overrides this."""
        return PARAM_KINDS[self.param_kind][0] if self.takes_param else None

    def param_text(self, param: object) -> str:
        """The parameter as the language writes it (`3`, `0.9`, `1h`, `["a", "b"]`)."""
        if self.param_kind == "duration":
            from astra.times import format_duration

            return format_duration(param)
        return literal_text(param)

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

    def online_evicted_kept(self, param: int | None) -> int:
        """How many of an entity's newest evicted values the store keeps for a lifetime window of
        this aggregation (its running state when it folds no other way); 0: none."""
        return 0

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


_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"})


def literal_text(v: object) -> str:
    """A literal's source text: `true`, `"a \\"b\\""`, `2.5`, a tuple as `[1, 2]`."""
    if isinstance(v, tuple | list):
        return "[" + ", ".join(literal_text(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.translate(_ESCAPES) + '"'
    return "null" if v is None else repr(v)


def _present(values: Sequence[object]) -> list[object]:
    return [v for v in values if v is not None]

