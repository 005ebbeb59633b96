"""Wrong answers the random differential suite found, pinned as small hand-built cases so they stay
fixed (each is answered five ways, like the random programs)."""

from __future__ import annotations

import math

from engines import answers, describe, mismatches
from strategies_plan import ENTITY_KEYS, EV, REQUEST_FIELDS, SNAP, Case

from astra.lang.types import FLOAT64, Type
from astra.plan import ir


def user_case(exprs: dict[str, tuple[ir.Expr, Type]], ev_rows: list[dict], times: list[int]) -> Case:
    """A case of `user` features over `ev` rows (uid 2), queried for uid 2 at `times`."""
    features = tuple(ir.Feature(id=f"gu@v1.{n}", group="gu", version=1, name=n, entity="user", expr=e, type=t)
                     for n, (e, t) in exprs.items())
    service = ir.Service(name="svc", version=1, requests=("req",), entities=("user",),
                         outputs=tuple(ir.Output(name=f"out_{f.name}", feature=f.id) for f in features))
    plan = ir.Plan(entities=tuple(ir.Entity(name=e, keys=k) for e, k in ENTITY_KEYS.items()), sources=(EV, SNAP),
                   requests=(ir.Request(name="req", fields=REQUEST_FIELDS),), features=features,
                   groups=(ir.Group(name="gu", version=1, entity="user", features=tuple(f.id for f in features)),),
                   services=(service,))
    rows = [{"uid": 2, "region": "a", "f64n": 0.0, **r} for r in ev_rows]
    spine = [{"uid": 2, "region": "a", "ts": t, "amount": None, "code": None, "qty": 1, "when": None} for t in times]
    return Case(plan=plan, tables={"ev": rows, "snap": []}, spine=spine)


def assert_agree(case: Case) -> None:
    for kwargs in ({}, {"materialize": True}, {"batches": [1], "chunk_rows": 1}):
        found = mismatches(case, answers(case, **kwargs))
        assert not found, f"{kwargs}\n" + describe(case, found)


def test_variance_of_infinities_is_nan() -> None:
    """docs/semantics.md, Floating point: the variance of values that include an infinity is NaN
    (online gave 0.0 for two infinities, windowed and lifetime)."""
    def agg(op: str, window: int | None) -> tuple[ir.Expr, Type]:
        return ir.Aggregate(op=op, key=EV.keys[0], column="f64", where=None, window=window, param=None,
                            type=FLOAT64.nullable()), FLOAT64.nullable()

    case = user_case({"var10": agg("variance", 10), "sd10": agg("stddev", 10), "var": agg("variance", None)},
                     [{"ts": 4, "f64": math.inf}, {"ts": 4, "f64": math.inf}, {"ts": 6, "f64": 1.0}], [5, 7, 14])
    assert_agree(case)
