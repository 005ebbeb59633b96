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


def _overrides(cls: type, part: str) -> bool:
    impl = inspect.getattr_static(cls, part, None)
    return impl is not None and impl is not inspect.getattr_static(Aggregation, part, None)


def test_every_aggregation_overrides_all_of_its_parts() -> None:
    for name, agg in AGGREGATIONS.items():
        cls = type(agg)
        for part in ("infer", "reference", "online"):
            assert _overrides(cls, part), f"aggregation {name} lacks its own {part}"
        # offline: one window at a time, or all windows of a column at once
        assert _overrides(cls, "offline_window") or _overrides(cls, "offline"), f"{name} lacks an offline lowering"
