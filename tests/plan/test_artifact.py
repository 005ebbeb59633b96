"""build/plan.json: an exact copy of the plan, reused only while every input is unchanged."""

from __future__ import annotations

import json

from astra.compiler import compile_project
from astra.plan.artifact import plan_path, read_fresh_plan, write_plan
from astra.plan.serialize import from_data, to_data
from astra.project import Project


def test_the_plan_survives_json_exactly() -> None:
    plan = compile_project("features", lock="ignore").plan
    assert from_data(json.loads(json.dumps(to_data(plan)))) == plan


def test_a_cached_plan_is_reused_until_an_input_changes(write_project, base) -> None:
    d = write_project(base)
    (d / "extra.feat").write_text("features more v1 for user { n: int64 = count(transactions, 1d) }\n")
    first = Project.load(d)
    assert read_fresh_plan(d) == first.plan
    # an edited file makes it stale
    (d / "extra.feat").write_text("features more v1 for user { n: int64 = count(transactions, 2d) }\n")
    assert read_fresh_plan(d) is None
    reloaded = Project.load(d)
    assert reloaded.plan != first.plan and read_fresh_plan(d) == reloaded.plan
    # so does a new top-level file
    (d / "third.feat").write_text("features third v1 for user { n: int64 = count(transactions, 3d) }\n")
    assert read_fresh_plan(d) is None
    assert "third@v1" in {g.id for g in Project.load(d).plan.groups}


def test_a_corrupt_or_foreign_plan_file_is_ignored(write_project, base) -> None:
    d = write_project(base)
    result = compile_project(d, lock="ignore")
    write_plan(plan_path(d), result.plan, result.sources)
    data = json.loads(plan_path(d).read_text())
    data["compiler"] = "another-version"
    plan_path(d).write_text(json.dumps(data))
    assert read_fresh_plan(d) is None
    plan_path(d).write_text("{not json")
    assert read_fresh_plan(d) is None
    assert Project.load(d).plan == result.plan
