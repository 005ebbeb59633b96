"""A plan's experiments as users read them (`GET /v1/experiments`, `astra assign`), and the arms
of given unit keys, computed by the same operator the features use."""

from __future__ import annotations

from collections.abc import Sequence

from astra.ops.assignment import BUCKETS, assign_many, parse_spec
from astra.plan import ir

HASH_VERSION = 2


def experiments(plan: ir.Plan) -> tuple[ir.Experiment, ...]:
    return plan.experiments or ()


def find(plan: ir.Plan, name: str) -> ir.Experiment:
    """The experiment called `name`; KeyError listing the others when there is none."""
    for e in experiments(plan):
        if e.name == name:
            return e
    have = ", ".join(e.name for e in experiments(plan)) or "none"
    raise KeyError(f"no experiment `{name}` in the plan; experiments: {have}")


def describe(plan: ir.Plan, e: ir.Experiment) -> dict:
    """The declaration, in the percentages it was written with (JSON-ready)."""
    s = parse_spec(e.spec)
    pct = 100.0 / BUCKETS
    rest = BUCKETS - s.holdout
    first_name, first_lo, first_hi = s.arms[0]
    first_share = dict(e.arms)[first_name]
    coverage = 100.0 if rest == 0 or first_share == 0 else (first_hi - first_lo) / (rest * first_share / 100.0) * 100.0
    (key, key_type), = plan.entity(e.unit).keys
    return {
        "name": e.name,
        "unit": {"entity": e.unit, "key": key, "type": str(key_type)},
        "layer": e.layer,
        "slice": [round(s.slice[0] * pct, 9), round(s.slice[1] * pct, 9)],
        "salt": s.salt,
        "holdout": round(s.holdout * pct, 9),
        "coverage": round(coverage, 9),
        "arms": [{"name": name, "percent": share} for name, share in e.arms],
        "within": None if e.within is None else {"experiment": e.within[0], "arm": e.within[1]},
        "hash": f"v{HASH_VERSION}",
    }


def document(plan: ir.Plan) -> dict:
    """`GET /v1/experiments`: every experiment of the plan."""
    return {"experiments": [describe(plan, e) for e in experiments(plan)]}


def arms(e: ir.Experiment, keys: Sequence[object]) -> list[str | None]:
    """The arm of each unit key (None: not in the experiment), as `assignment(e)` computes it."""
    texts = [k if isinstance(k, str) else str(k) for k in keys]
    got, valid = assign_many(parse_spec(e.spec), texts)
    return [a if ok else None for a, ok in zip(got.tolist(), valid.tolist(), strict=True)]
