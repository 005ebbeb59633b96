"""Renaming or reordering features keeps a saved store (docs/serving.md, "Plan changes"): a
table's columns and aggregation inputs are numbered in a canonical order, not in the order the
plan reads them, so a plan whose features were only renamed or declared in another order migrates
with every table kept and answers as before."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from astra.online import Store, persist
from astra.online.layout import plan_layout
from astra.project import Project

FEATURES = Path(__file__).resolve().parents[2] / "features"


def _project(tmp_path, name: str, rename: bool) -> Path:
    """The example project; with `rename`, user_spend v2's `grocery_7d` is called `aa_grocery_7d`
    (the plan orders features by name, so its filtered count is now read first) and its lines are
    declared in reverse order (the service selects `user_spend@v2.*`)."""
    d = tmp_path / name
    shutil.copytree(FEATURES, d, ignore=shutil.ignore_patterns("build", "astra.lock"))
    if rename:
        text = (d / "spend.feat").read_text()
        head, body = text.split("features user_spend v2 for user {", 1)
        body, tail = body.split("\n}", 1)
        lines = body.split("\n")
        decl = [j for j, ln in enumerate(lines) if re.match(r"\s+\w+: ", ln)]
        for j, ln in zip(decl, [lines[j] for j in reversed(decl)]):
            lines[j] = ln
        body = re.sub(r"\bgrocery_7d\b", "aa_grocery_7d", "\n".join(lines))
        (d / "spend.feat").write_text(f"{head}features user_spend v2 for user {{{body}\n}}{tail}")
    return d


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from astra import demo_data

    d = tmp_path_factory.mktemp("demo")
    demo_data.generate(d, events=3000, users=80, labels=200, seed=5)
    return d


def test_reordered_declarations_keep_every_table(tmp_path, demo):
    old_plan = Project.load(_project(tmp_path, "old", rename=False)).plan
    new_plan = Project.load(_project(tmp_path, "new", rename=True)).plan
    assert old_plan != new_plan
    old_inputs = [[(i.column, repr(i.where)) for i in t.inputs] for t in plan_layout(old_plan).tables]
    assert old_inputs == [[(i.column, repr(i.where)) for i in t.inputs] for t in plan_layout(new_plan).tables]
    old = Store(old_plan)
    old.materialize(demo)
    t = old.watermark["transactions"]
    old.push("transactions", [{"user_id": 7, "merchant_id": 3, "amount": 250.0, "category": "cat_03",
                               "ts": t + 1_000_000}])
    old.save(tmp_path / "snap")
    migration = persist.plan_migration(Store, tmp_path / "snap", new_plan, demo)
    assert migration is not None and not migration.rebuilt and not migration.dropped
    assert len(migration.kept) == len(plan_layout(new_plan).tables)
    new = persist.load(Store, tmp_path / "snap", new_plan, migration)
    users = [{"user_id": u, "merchant_id": 3} for u in (7, 8, 12345678)]
    at = t + 2_000_000
    for svc in ("fraud_model@v1", "fraud_model@v2"):
        request = {"amount": 10.0, "channel": "web"} if svc.endswith("v2") else None
        got = new.get(svc, users, at=at, request=request).rows()
        want = old.get(svc, users, at=at, request=request).rows()
        assert [sorted(r.values(), key=repr) for r in got] == [sorted(r.values(), key=repr) for r in want]
        assert [r.get("aa_grocery_7d", r.get("grocery_7d")) for r in got] == [r.get("grocery_7d") for r in want]


def test_a_store_numbered_in_the_plans_reading_order_loads(tmp_path, demo):
    """A store saved before inputs were numbered canonically (arrays named by the order the plan
    read the inputs, no `inputs` list in the manifest) loads with each array under its input."""
    import json

    from astra.online.layout import input_id

    plan = Project.load(_project(tmp_path, "p", rename=False)).plan
    store = Store(plan)
    store.materialize(demo)
    store.save(tmp_path / "snap")
    manifest = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    legacy = plan_layout(plan, None, canonical=False).tables
    moved = False
    for ti, meta in enumerate(manifest["tables"]):
        now = [tuple(x) for x in meta.pop("inputs")]
        old = [tuple(input_id(i)) for i in legacy[ti].inputs]
        to_old = {j: old.index(x) for j, x in enumerate(now)}
        moved |= any(j != k for j, k in to_old.items())
        meta["arrays"] = {f"{g}:{persist._renumber(k, to_old)}": v
                          for g, k, v in ((*full.split(":", 1), v) for full, v in meta["arrays"].items())}
    assert moved  # the example project's plan reads its inputs in another order
    (tmp_path / "snap" / "manifest.json").write_text(json.dumps(manifest))
    loaded = Store.load(tmp_path / "snap", plan)
    users = [{"user_id": u, "merchant_id": 3} for u in range(1, 40)]
    at = store.watermark["transactions"] + 1
    for svc in ("fraud_model@v1", "fraud_model@v2"):
        request = {"amount": 10.0, "channel": "web"} if svc.endswith("v2") else None
        want = store.get(svc, users, at=at, request=request).rows()
        assert loaded.get(svc, users, at=at, request=request).rows() == want
