"""Functions, aggregations and operators with their signatures and docs, read from the operator
registries (`astra.ops`) so the editor shows what the checker accepts."""

from __future__ import annotations

import functools

import attrs

from astra.lang.check import FUNCTIONS
from astra.ops.aggregations import AGGREGATIONS
from astra.ops.registry import SCALARS
from astra.ops.transforms import TRANSFORMS


@attrs.frozen
class Signature:
    name: str
    label: str  # e.g. `clip(x, lo, hi)`
    doc: str
    kind: str  # "function" | "aggregation" | "operator"


_PARAMS = {1: "x", 2: "a, b", 3: "x, lo, hi"}
# Keyword and symbol operators: how each is written, and the registry entry that documents it.
OPERATORS = {"and": ("a and b", "and"), "or": ("a or b", "or"), "not": ("not a", "not"),
             "in": ("x in [v, ...]", "in"), "if": ("if c then a else b", "if"), "as": ("expr as T", "cast"),
             "??": ("a ?? b", "??"), "/": ("a / b", "/"), "%": ("a % b", "%")}


def _function(name: str) -> Signature:
    if name == "now":
        return Signature("now", "now()", "the query time t", "function")
    op = SCALARS[name]
    doc = op.doc
    head, _, rest = doc.partition(": ")
    if head.startswith(f"{name}(") and rest:
        return Signature(name, head, rest, "function")
    lo, hi = op.arity
    params = _PARAMS.get(lo, ", ".join(f"x{i}" for i in range(lo)))
    if hi > lo:
        params += "".join(f"[, x{i}]" for i in range(lo, hi))
    return Signature(name, f"{name}({params})", doc, "function")


def _aggregation(name: str) -> Signature:
    agg = AGGREGATIONS[name]
    target = "source[.column]" if agg.column == "optional" else "source.column"
    k = f", {agg.param_name()}" if agg.takes_param else ""  # last_k: k, percentile: q, exp_decay_sum: half_life
    return Signature(name, f"{name}({target} [where condition]{k}[, window])", agg.doc, "aggregation")


def _transform(name: str) -> Signature:
    """A fitted transform (`astra fit` computes its statistics from the training data)."""
    return Signature(name, f"{name}(x[, ...])", f"fitted transform: {TRANSFORMS[name].doc}", "function")


@functools.cache
def signatures() -> dict[str, Signature]:
    """Every callable name: the functions, the fitted transforms, then the aggregations."""
    out = {name: _function(name) for name in FUNCTIONS}
    out.update({name: _transform(name) for name in TRANSFORMS if name not in out})
    out.update({name: _aggregation(name) for name in AGGREGATIONS})
    return out


@functools.cache
def operators() -> dict[str, Signature]:
    """The keyword and symbol operators usable in an expression."""
    out = {}
    for word, (label, op) in OPERATORS.items():
        out[word] = Signature(word, label, SCALARS[op].doc, "operator")
    return out
