"""The random programs and the independent oracle cover the operator registry, checked in
milliseconds (the differential suite itself takes minutes): every registered operator is either
drawn by tests/strategies_plan.py and spelled out by tests/oracle.py, or listed in `UNREACHABLE`
with the reason and the test that covers it instead.  A new operator in `astra.ops` fails here
until both know it."""

from __future__ import annotations

import oracle
from strategies_plan import AGG_SIGNATURES, PARAMS, SIGNATURES, UNREACHABLE, registered_ops

from astra.ops.aggregations import AGGREGATIONS
from astra.ops.aggregations.base import PARAM_KINDS
from astra.ops.registry import SCALARS


def test_every_drawable_operator_is_spelled_out_by_the_oracle():
    drawable = registered_ops()
    missing_scalars = {op for op in drawable if not op.startswith("agg:")} - oracle.SCALAR_OPS
    missing_aggs = {op[4:] for op in drawable if op.startswith("agg:")} - oracle.AGGREGATION_OPS
    assert not missing_scalars, f"tests/oracle.py does not know these operators: {sorted(missing_scalars)}"
    assert not missing_aggs, f"tests/oracle.py does not know these aggregations: {sorted(missing_aggs)}"


def test_the_oracle_names_only_registered_operators():
    assert set(SCALARS) >= oracle.SCALAR_OPS, oracle.SCALAR_OPS - set(SCALARS)
    assert set(AGGREGATIONS) >= oracle.AGGREGATION_OPS, oracle.AGGREGATION_OPS - set(AGGREGATIONS)


def test_every_unreachable_operator_is_registered_and_has_a_reason():
    for op, why in UNREACHABLE.items():
        assert op in SCALARS, f"UNREACHABLE lists `{op}`, which is not registered"
        assert "tests/" in why, f"`{op}`: say which test covers it instead"


def test_every_registered_operator_has_a_signature_the_generator_can_draw():
    for op in set(SCALARS) - set(UNREACHABLE):
        assert SIGNATURES.get(op), f"no argument types make `{op}` well typed over the generator's types"
    for name in AGGREGATIONS:
        assert AGG_SIGNATURES.get(name), f"no column of `ev` suits aggregation `{name}`"


def test_every_parameter_kind_is_drawn():
    used = {agg.param_kind for agg in AGGREGATIONS.values() if agg.takes_param}
    assert used <= set(PARAM_KINDS)
    assert used <= set(PARAMS), f"tests/strategies_plan.py PARAMS lacks the kinds {sorted(used - set(PARAMS))}"


def test_the_oracle_answers_every_aggregation_it_names():
    """Its name list is not a promise it breaks: each aggregation it names answers a small window."""
    from astra.lang.types import INT64, STRING
    from astra.ops.registry import TypeRuleError

    for name in sorted(oracle.AGGREGATION_OPS):
        agg = AGGREGATIONS[name]
        for column, values in ((INT64, [3, None, 1, 3]), (STRING, ["b", None, "a", "b"])):
            param = agg.example_param(column)
            try:
                out = agg.infer(column.nullable(), param)
            except TypeRuleError:
                continue
            oracle.aggregate(name, values, param, out, times=[1, 2, 3, 4], t=5)  # raises if unknown
            break
        else:
            raise AssertionError(f"`{name}` takes neither int64 nor string columns: extend this test")
