"""Every operator carries all of its implementations, so the engines cannot drift apart unnoticed."""

from __future__ import annotations

import inspect

from astra.ops import functions as _functions  # noqa: F401  (registers the built-in functions)
from astra.ops.aggregations import AGGREGATIONS, Aggregation
from astra.ops.registry import SCALARS


def test_every_scalar_op_has_a_type_rule_a_reference_and_both_lowerings() -> None:
    for name, op in SCALARS.items():
        for part in ("infer", "reference", "polars", "numpy"):
            assert callable(getattr(op, part)), f"{name} lacks {part}"
        assert op.doc, f"{name} lacks a doc line"


def test_every_aggregation_overrides_all_of_its_parts() -> None:
    for name, agg in AGGREGATIONS.items():
        cls = type(agg)
        for part in ("infer", "reference", "offline_window", "online"):
            impl = inspect.getattr_static(cls, part, None)
            assert impl is not None and impl is not inspect.getattr_static(Aggregation, part, None), \
                f"aggregation {name} lacks its own {part}"
