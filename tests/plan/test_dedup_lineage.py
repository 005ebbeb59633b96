"""Shared sub-expressions are one plan node; plan.json carries column-level lineage."""

from __future__ import annotations

import json

from astra.compiler import compile_project
from astra.offline.evaluate import leaves
from astra.plan import ir
from astra.plan.artifact import plan_path, write_plan


def test_an_aggregation_written_twice_is_one_node(write_project, base) -> None:
    text = base + """
features twice v1 for user {
    a: float64 = sum(transactions.amount, 7d)
    b: float64 = sum(transactions.amount,   7d) * 2.0
    c: float64 = sum(transactions.amount, 30d)
}
"""
    plan = compile_project(write_project(text), lock="ignore").plan
    feats = [plan.feature(f"twice@v1.{n}") for n in "abc"]
    aggs = [n for f in feats for n in ir.walk(f.expr) if isinstance(n, ir.Aggregate)]
    assert len(aggs) == 3 and aggs[0] == aggs[1] != aggs[2]  # same logic, different spans
    distinct = [n for nodes in leaves(tuple(feats)).values() for n in nodes]
    assert len(distinct) == 2


def test_plan_json_has_lineage(write_project, base) -> None:
    d = write_project(base)
    result = compile_project(d, lock="ignore")
    write_plan(plan_path(d), result.plan, result.sources)
    lineage = json.loads(plan_path(d).read_text())["lineage"]
    assert lineage["derived@v1.double_sum"] == {"depends_on": ["spend@v1.tx_sum_7d"], "columns": [],
                                               "requests": []}
    assert lineage["spend@v1.tx_sum_7d"]["columns"] == ["transactions.amount", "transactions.ts",
                                                        "transactions.user_id"]
    assert lineage["profile@v1.country"]["columns"] == ["profiles.country", "profiles.updated_at",
                                                       "profiles.user_id"]
