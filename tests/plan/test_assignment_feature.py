"""`assignment(experiment)` as a feature: the arm docs/language.md defines (hash version 2 of the
unit key), the same in a backfill, the online store (batch and single-entity plans) and the
reference interpreter, part of the group's fingerprint, and rejected where it cannot apply."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from experiment_project import bucket
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.compiler import compile_project
from astra.diagnostics import render_all
from astra.offline import backfill
from astra.online import Store
from astra.online.store import SMALL
from astra.plan import reference

T = dt.datetime(2026, 1, 2)
PROJECT = """
entity user {{ key user_id: {key} }}
events tx for user {{
    path "tx.parquet"
    time ts
    columns {{ user_id: {key}  amount: float64 }}
}}
experiment checkout_test {{
    unit user
    layer checkout {slice}
    salt "{salt}"
    arms {{ control 30%, treatment 70% }}
    holdout {holdout}%
}}
features g v1 for user {{
    arm: string? = assignment(checkout_test)
    treated: bool = assignment(checkout_test) == "treatment" ?? false
    spend: float64 = sum(tx.amount, 7d)
}}
service svc v1 {{ g@v1.* }}
"""


# --- the arm ranges, written from docs/language.md (hash v2: tests/plan/experiment_project.py)
def documented_arm(key, salt: str, holdout: float, lo: float = 0.0, hi: float = 100.0) -> str | None:
    text = key if isinstance(key, str) else str(key)
    if not (lo * 100 <= bucket("checkout:", text) < hi * 100):
        return None
    b = bucket("checkout:" + salt + ":", text)
    held = holdout * 100
    if b < held:
        return None
    split = held + (10000 - held) * 0.30
    return "control" if b < split else "treatment"


def make(tmp: Path, key: str = "string", salt: str = "s-2026", holdout: float = 5, slice_: str = ""):
    (tmp / "p.feat").write_text(PROJECT.format(key=key, salt=salt, holdout=holdout, slice=slice_))
    ids = ["a", "b"] if key == "string" else [1, 2]
    pl.DataFrame({"user_id": ids, "ts": [T - dt.timedelta(hours=1)] * 2, "amount": [1.0, 2.0]}).write_parquet(
        tmp / "tx.parquet")
    result = compile_project(tmp, lock="ignore")
    assert result.ok, render_all(result.diagnostics, result.sources)
    return result.plan


def answers(plan, root: Path, keys: list) -> dict[str, list]:
    spine = pl.DataFrame({"user_id": keys, "ts": [T] * len(keys)})
    off = backfill(plan, "svc", 1, spine, data_root=root)
    store = Store(plan)
    store.materialize(root)
    batch = store.get("svc@v1", [{"user_id": k} for k in keys] + [{"user_id": keys[0]}] * (SMALL + 1), at=T).rows()
    single = [store.get("svc@v1", [{"user_id": k}], at=T).rows()[0] for k in keys[:40]]
    t_us = int((T - dt.datetime(1970, 1, 1)).total_seconds()) * 10**6
    tables = {"tx": pl.read_parquet(root / "tx.parquet").with_columns(pl.col("ts").dt.epoch("us")).to_dicts()}
    ref = [r["arm"] for r in reference.evaluate(plan, "svc", 1, [{"user_id": k, "ts": t_us} for k in keys[:40]],
                                                 tables)]
    return {"offline": off["arm"].to_list(), "batch": [r["arm"] for r in batch[:len(keys)]],
            "single": [r["arm"] for r in single], "reference": ref,
            "treated": off["treated"].to_list() if "treated" in off.columns else None}


@pytest.mark.parametrize("key", ["string", "int64"])
def test_every_engine_gives_the_documented_arm(tmp_path, key):
    plan = make(tmp_path, key=key, salt="checkout-button-2026", holdout=5)
    keys = [f"user-{i}" for i in range(1500)] + ["", "ü…🙂", "a"] if key == "string" \
        else [*range(-200, 1300), 2**62, -(2**63), 1]
    got = answers(plan, tmp_path, keys)
    want = [documented_arm(k, "checkout-button-2026", 5) for k in keys]
    assert got["offline"] == want
    assert got["batch"] == want
    assert got["single"] == want[:40]
    assert got["reference"] == want[:40]
    assert got["treated"] == [w == "treatment" for w in want]
    arms = {a: want.count(a) for a in ("control", "treatment", None)}
    assert 0 < arms[None] < arms["control"] < arms["treatment"]  # 5% held out, then 30/70


def test_a_layer_slice_leaves_units_outside_it_unassigned(tmp_path):
    plan = make(tmp_path, slice_="20%-60%", holdout=0)
    keys = [f"u{i}" for i in range(2000)]
    got = answers(plan, tmp_path, keys)
    assert got["offline"] == [documented_arm(k, "s-2026", 0, 20, 60) for k in keys] == got["batch"]
    share = sum(a is not None for a in got["offline"]) / len(keys)
    assert 0.35 < share < 0.45


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=30, unique=True))
def test_engines_agree_on_any_string_key(tmp_path_factory, keys):
    tmp = tmp_path_factory.mktemp("keys")
    plan = make(tmp)
    got = answers(plan, tmp, keys)
    want = [documented_arm(k, "s-2026", 5) for k in keys]
    assert got["offline"] == want == got["batch"]


def test_the_experiment_is_part_of_the_groups_fingerprint(tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    fp = lambda plan: plan.groups[0].data_fingerprint  # noqa: E731
    base = fp(make(a, salt="s1"))
    assert fp(make(b, salt="s2")) != base  # another salt: other arms, so other logic
    assert fp(make(c, salt="s1", holdout=10)) != base
    renamed = (a / "p.feat").read_text().replace("checkout_test", "checkout_renamed")
    (a / "p.feat").write_text(renamed)
    assert fp(compile_project(a, lock="ignore").plan) == base  # a new name is not new logic


def test_plan_lists_its_experiments(tmp_path):
    plan = make(tmp_path)
    (e,) = plan.experiments
    assert (e.name, e.unit, e.layer, e.arms) == ("checkout_test", "user", "checkout",
                                                 (("control", 30.0), ("treatment", 70.0)))


def test_composite_unit_keys_are_refused_with_a_located_error(tmp_path):
    (tmp_path / "p.feat").write_text("""
entity pair { key a: int64  key b: int64 }
experiment e { unit pair; layer l; salt "s"; arms { x 50%, y 50% } }
request r { v: int64 }
features g v1 for pair { arm: string? = assignment(e) }
""")
    result = compile_project(tmp_path, lock="ignore")
    (d,) = [d for d in result.diagnostics if d.code == "E0706"]
    assert "one string or integer key" in d.message


NESTED = """
entity user { key user_id: string }
events tx for user { path "tx.parquet"  time ts  columns { user_id: string  amount: float64 } }
experiment checkout_test { unit user; layer checkout; salt "s-2026"; arms { control 30%, treatment 70% } holdout 5% }
experiment button_test {
    unit user
    within checkout_test.treatment
    layer button
    salt "b-2026"
    arms { blue 50%, green 50% }
}
features g v1 for user {
    arm: string? = assignment(button_test)
    parent_arm: string? = assignment(checkout_test)
}
service svc v1 { g@v1.* }
"""


def test_a_nested_experiment_assigns_only_its_parents_arm_in_every_engine(tmp_path):
    (tmp_path / "p.feat").write_text(NESTED)
    pl.DataFrame({"user_id": ["a"], "ts": [T - dt.timedelta(hours=1)], "amount": [1.0]}).write_parquet(
        tmp_path / "tx.parquet")
    result = compile_project(tmp_path, lock="ignore")
    assert result.ok, render_all(result.diagnostics, result.sources)
    keys = [f"user-{i}" for i in range(600)]
    got = answers(result.plan, tmp_path, keys)
    spine = pl.DataFrame({"user_id": keys, "ts": [T] * len(keys)})
    parent = backfill(result.plan, "svc", 1, spine, data_root=tmp_path)["parent_arm"].to_list()
    assert parent == [documented_arm(k, "s-2026", 5) for k in keys]

    def child(k):
        if documented_arm(k, "s-2026", 5) != "treatment":
            return None
        return "blue" if bucket("button:b-2026:", k) < 5000 else "green"

    want = [child(k) for k in keys]
    assert got["offline"] == want == got["batch"]
    assert got["single"] == got["reference"] == want[:40]
    assert {"blue", "green", None} == set(want)
