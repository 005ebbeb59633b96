"""Every documented operator is registered and carries all of its implementations, so the engines
cannot drift apart unnoticed (and an empty or shrunken registry fails here instead of passing)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from astra.ops import functions as _functions  # noqa: F401  (registers the built-in functions)
from astra.ops.aggregations import AGGREGATIONS, Aggregation
from astra.ops.registry import SCALARS

LANGUAGE_DOC = Path(__file__).resolve().parents[1] / "docs" / "language.md"

# The operators docs/language.md promises, by their registry names.
EXPECTED_SCALARS = {
    "+", "-", "*", "/", "%", "neg", "==", "!=", "<", "<=", ">", ">=", "in", "and", "or", "not", "??", "if",
    "is_null", "cast", "abs", "floor", "ceil", "round", "log", "sqrt", "exp", "clip", "lower", "upper", "length",
    "list_length", "contains", "starts_with", "ends_with", "seconds", "minutes", "hours", "days", "hour_of_day",
    "day_of_week", "assignment",
}
EXPECTED_AGGREGATIONS = {"count", "sum", "mean", "min", "max", "first", "last", "count_distinct", "variance",
                         "stddev", "last_k", "first_k", "top_k", "bottom_k", "median", "percentile", "skew",
                         "kurtosis", "exp_decay_sum", "approx_count_distinct", "approx_percentile"}


def _section(title: str) -> str:
    text = LANGUAGE_DOC.read_text()
    start = text.index(title)
    return text[start:text.index("\n#", start + len(title))]


def test_the_documented_operators_are_exactly_the_registered_ones() -> None:
    assert set(SCALARS) == EXPECTED_SCALARS
    assert set(AGGREGATIONS) == EXPECTED_AGGREGATIONS


def test_every_function_and_aggregation_of_the_language_reference_is_registered() -> None:
    functions = set(re.findall(r"`([a-z_]+)\(", _section("### Functions"))) - {"now"}  # now() is an IR node
    assert functions and functions <= set(SCALARS), functions - set(SCALARS)
    table = _section("<!-- aggregations-table -->")
    documented = {name for row in re.findall(r"^\| (`.*?`) \|", table, re.M) for name in re.findall(r"`(\w+)`", row)}
    assert documented == set(AGGREGATIONS)


def test_every_scalar_op_has_a_type_rule_a_reference_and_both_lowerings() -> None:
    assert SCALARS
    for name, op in SCALARS.items():
        for part in ("infer", "reference", "polars", "numpy"):
            assert callable(getattr(op, part)), f"{name} lacks {part}"
        assert op.doc, f"{name} lacks a doc line"
        assert op.null_policy in ("strict", "custom"), name
        assert 1 <= op.arity[0] <= op.arity[1] <= 3, name


def _overrides(cls: type, part: str) -> bool:
    impl = inspect.getattr_static(cls, part, None)
    return impl is not None and impl is not inspect.getattr_static(Aggregation, part, None)


def test_every_aggregation_overrides_all_of_its_parts() -> None:
    assert AGGREGATIONS
    for name, agg in AGGREGATIONS.items():
        cls = type(agg)
        for part in ("infer", "reference", "online"):
            assert _overrides(cls, part), f"aggregation {name} lacks its own {part}"
        # offline: one window at a time, or all windows of a column at once
        assert _overrides(cls, "offline_window") or _overrides(cls, "offline"), f"{name} lacks an offline lowering"
        assert agg.doc and agg.name == name
