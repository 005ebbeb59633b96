"""The point-in-time rules are plan fields (`Plan.rules`) that every engine reads: a plan states
windows [t - w, t), visibility strictly before t and ties to the later row of the source (the
contract of docs/semantics.md); a plan stating other rules is refused by the offline engine, the
online engine and the reference interpreter with an error naming the rule, never run under the
engine's own."""

from __future__ import annotations

from pathlib import Path

import attrs
import polars as pl
import pytest

from astra.offline import backfill
from astra.online import Store
from astra.plan import ir, reference
from astra.plan.serialize import from_data, to_data
from astra.project import Project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plan() -> ir.Plan:
    return Project.load(ROOT / "features").plan


def test_a_plan_states_the_documented_rules(plan):
    assert plan.rules == ir.PointInTime(window_closed="left", visibility="strictly_before",
                                        tie_break="source_position")
    data = to_data(plan)
    assert data["rules"] == {"node": "PointInTime", "window_closed": "left", "visibility": "strictly_before",
                             "tie_break": "source_position"}
    assert from_data(data) == plan


def test_a_plan_written_before_the_field_reads_as_these_rules(plan):
    data = to_data(plan)
    del data["rules"]
    assert from_data(data).rules == plan.rules


@pytest.mark.parametrize("rule", [{"visibility": "at_or_before"}, {"window_closed": "both"},
                                  {"tie_break": "max_value"}])
def test_every_engine_refuses_other_rules(plan, data, rule):  # `data`: the demo data directory
    other = attrs.evolve(plan, rules=attrs.evolve(plan.rules, **rule))
    (name, value), = rule.items()
    message = f"{name} `{value}`"
    spine = pl.read_parquet(data / "spine.parquet").head(5)
    with pytest.raises(ir.RulesError, match=f"offline engine cannot run this plan: .*{message}"):
        backfill(other, "fraud_model", 1, spine, data, "ts", cross_fitting=False)
    with pytest.raises(ir.RulesError, match=f"online engine cannot run this plan: .*{message}"):
        Store(other)
    with pytest.raises(ir.RulesError, match=f"reference interpreter cannot run this plan: .*{message}"):
        reference.evaluate(other, "fraud_model", 1, [{"user_id": 1, "ts": 10}], {"transactions": []})
