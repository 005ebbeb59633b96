"""Floats in JSON answers: orjson writes inf and NaN as null, which a client cannot tell from a
null, so a float feature's non-finite value travels as "Infinity", "-Infinity" or "NaN" (the
protobuf JSON mapping; docs/serving.md)."""

from __future__ import annotations

import math

import numpy as np

from astra.plan import ir

NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}  # and NaN: "NaN"


def float_positions(plan: ir.Plan, svc: ir.Service) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The service's outputs that are floats, and those that are lists or vectors of floats."""
    types = [plan.feature(o.feature).type for o in svc.outputs]
    return (tuple(i for i, t in enumerate(types) if t.is_float),
            tuple(i for i, t in enumerate(types) if t.item is not None and t.item.is_float))


def _json_float(v):
    """A float as the JSON answer carries it: a number (or null), or "Infinity", "-Infinity", "NaN"."""
    return v if v is None or math.isfinite(v) else NON_FINITE.get(v, "NaN")


def json_floats(values: tuple, scalars: tuple[int, ...], lists: tuple[int, ...]) -> tuple:
    """`values` with its non-finite floats (at the given positions) as JSON strings: orjson would
    write them as null, which a client cannot tell from a null."""
    fix = None
    for i in scalars:
        v = values[i]
        if v is not None and not math.isfinite(v):
            fix = fix or list(values)
            fix[i] = NON_FINITE.get(v, "NaN")
    for i in lists:
        v = values[i]
        if v is not None and not all(x is None or math.isfinite(x) for x in v):
            fix = fix or list(values)
            fix[i] = [_json_float(x) for x in v]
    return values if fix is None else tuple(fix)


def encode_floats(res, tuples: list[tuple], scalars: tuple[int, ...], lists: tuple[int, ...]) -> list[tuple]:
    """`json_floats` of every entity's values.  A vectorised answer is checked column by column
    first, so the common case (all finite) costs a few numpy calls, not a Python loop."""
    cols = res._values  # the batch plan's columns; None when the answer came as tuples
    if cols is not None and not lists and len(tuples) > 8:
        bad = None
        for i in scalars:
            v = cols[res.types[i][0]]
            b = v.valid & ~np.isfinite(v.values)
            bad = b if bad is None else bad | b
        if bad is None or not bad.any():
            return tuples
        tuples = list(tuples)
        for j in np.flatnonzero(bad).tolist():
            tuples[j] = json_floats(tuples[j], scalars, lists)
        return tuples
    return [json_floats(t, scalars, lists) for t in tuples]
