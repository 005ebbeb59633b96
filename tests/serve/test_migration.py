"""Migrating a saved store to a changed plan, table by table (docs/serving.md, "Plan changes"),
without a server: which tables are kept, rebuilt or dropped, and what the migrated store answers."""

from __future__ import annotations

import re
import shutil

import pytest
from serve_harness import FEATURES

from astra.online import Store, persist
from astra.project import Project

USER, MERCHANT = 10**9 + 11, 10**9 + 12


def _without_merchant_features(tmp_path):
    """The example project before `merchant.feat` (and the service reading it) was added."""
    d = tmp_path / "old"
    shutil.copytree(FEATURES, d, ignore=shutil.ignore_patterns("build", "astra.lock"))
    (d / "merchant.feat").unlink()
    services = (d / "services.feat").read_text().replace('import "merchant.feat"\n', "")
    services = re.sub(r"# The next model[^\n]*\nservice fraud_model v2 \{.*?\n\}\n", "", services, flags=re.S)
    (d / "services.feat").write_text(services)
    return d


def _full(tmp_path):
    d = tmp_path / "new"
    shutil.copytree(FEATURES, d, ignore=shutil.ignore_patterns("build", "astra.lock"))
    return d


def _rows(store):
    t = store.watermark["transactions"]
    return [{"user_id": USER, "merchant_id": MERCHANT, "amount": 10.0 * (j + 1), "category": "cat_01",
             "ts": t + 1_000_000 * (j + 1)} for j in range(3)], t + 10_000_000


def test_same_plan_needs_no_migration(tmp_path, demo):
    plan = Project.load(_full(tmp_path)).plan
    store = Store(plan)
    store.materialize(demo)
    store.save(tmp_path / "snap")
    assert persist.plan_migration(Store, tmp_path / "snap", plan, demo) is None


def test_new_tables_are_rebuilt_from_the_files_and_kept_ones_keep_their_pushes(tmp_path, demo):
    old_plan = Project.load(_without_merchant_features(tmp_path)).plan
    new_plan = Project.load(_full(tmp_path)).plan
    old = Store(old_plan)
    old.materialize(demo)
    rows, at = _rows(old)
    old.push("transactions", rows)
    old.save(tmp_path / "snap")
    with pytest.raises(ValueError, match="different plan"):
        Store.load(tmp_path / "snap", new_plan)

    m = persist.plan_migration(Store, tmp_path / "snap", new_plan, demo)
    rebuilt = {m.names[i] for i in m.rebuilt}
    assert rebuilt == {"transactions by merchant_id", "transactions by user_id, merchant_id"}
    assert {m.names[i] for i in m.kept} == {"transactions by user_id", "profiles by user_id"}
    assert m.unlogged == {"transactions": 3}  # pushed before the snapshot: only the kept table has them
    assert "start without them" in m.describe()
    store = persist.load(Store, tmp_path / "snap", new_plan, m)
    persist.rebuild(store, m, demo)

    fresh = Store(new_plan)  # what the files alone give
    fresh.materialize(demo)
    user = [{"user_id": USER}]
    assert store.get("fraud_model@v1", user, at=at).rows() == old.get("fraud_model@v1", user, at=at).rows()
    assert store.get("fraud_model@v1", user, at=at).rows()[0]["tx_count_1h"] == 3
    both = [{"user_id": 7, "merchant_id": 3}, {"user_id": USER, "merchant_id": MERCHANT}]
    assert store.get("fraud_model@v2", both[:1], at=at).rows() == fresh.get("fraud_model@v2", both[:1], at=at).rows()
    # the pushed user: user features keep the pushes, the rebuilt merchant tables start without them
    got = store.get("fraud_model@v2", both[1:], at=at).rows()[0]
    assert got["tx_count_7d"] == 3 and got["customers_7d"] == 0 and got["visits_30d"] == 0
    # the migrated store saves and loads under the new plan like any other
    store.save(tmp_path / "migrated")
    again = Store.load(tmp_path / "migrated", new_plan)
    assert again.get("fraud_model@v2", both[:1], at=at).rows() == store.get("fraud_model@v2", both[:1], at=at).rows()


def test_changed_table_with_pushes_only_in_the_snapshot_is_refused(tmp_path, demo):
    new_dir = _full(tmp_path)
    plan = Project.load(new_dir).plan
    store = Store(plan)
    store.materialize(demo)
    rows, _ = _rows(store)
    store.push("transactions", rows)
    store.save(tmp_path / "snap")
    (new_dir / "big.feat").write_text('import "common/"\n\nfeatures big v1 for user {\n'
                                      '    big_1d: int64 = count(transactions where amount > 5000.0, 1d)\n}\n')
    changed = Project.load(new_dir).plan
    with pytest.raises(persist.MigrationError, match=r"transactions by user_id.*3 row\(s\) pushed"):
        persist.plan_migration(Store, tmp_path / "snap", changed, demo)
    # without the pushes (all rows from the files), the same change rebuilds the table
    clean = Store(plan)
    clean.materialize(demo)
    clean.save(tmp_path / "clean")
    m = persist.plan_migration(Store, tmp_path / "clean", changed, demo)
    assert {m.names[i] for i in m.rebuilt} == {"transactions by user_id"} and not m.unlogged
