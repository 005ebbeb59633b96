"""Migrating a saved store to a changed plan, table by table (docs/serving.md, "Plan changes"),
without a server: which tables are kept, rebuilt or dropped, and what the migrated store answers."""

from __future__ import annotations

import re
import shutil

import pytest
from serve_harness import FEATURES

from astra.online import Store, persist
from astra.project import Project
from astra.serve import wal

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


def _records(rows):
    """What a server keeps of the pushes before its last snapshot: their log records, in order."""
    return lambda: iter([{"source": "transactions", "rows": rows}])


def test_new_tables_are_rebuilt_from_the_files_and_every_kept_push(tmp_path, demo):
    old_plan = Project.load(_without_merchant_features(tmp_path)).plan
    new_plan = Project.load(_full(tmp_path)).plan
    old = Store(old_plan)
    old.materialize(demo)
    rows, at = _rows(old)
    old.push("transactions", rows)
    old.save(tmp_path / "snap")
    with pytest.raises(ValueError, match="different plan"):
        Store.load(tmp_path / "snap", new_plan)

    m = persist.plan_migration(Store, tmp_path / "snap", new_plan, demo, _records(rows))
    rebuilt = {m.names[i] for i in m.rebuilt}
    assert rebuilt == {"transactions by merchant_id", "transactions by user_id, merchant_id"}
    assert {m.names[i] for i in m.kept} == {"transactions by user_id", "profiles by user_id"}
    assert m.pushed == {"transactions": 3}
    assert "3 row(s) pushed to `transactions` before the snapshot replayed" in m.describe()
    store = persist.load(Store, tmp_path / "snap", new_plan, m)
    persist.rebuild(store, m, demo, _records(rows))

    # what a store of the new plan would hold had it existed all along: the files, then the pushes
    always = Store(new_plan)
    always.materialize(demo)
    always.push("transactions", rows)
    user = [{"user_id": USER}]
    assert store.get("fraud_model@v1", user, at=at).rows() == old.get("fraud_model@v1", user, at=at).rows()
    both = [{"user_id": 7, "merchant_id": 3}, {"user_id": USER, "merchant_id": MERCHANT}]
    assert store.get("fraud_model@v2", both, at=at).rows() == always.get("fraud_model@v2", both, at=at).rows()
    got = store.get("fraud_model@v2", both[1:], at=at).rows()[0]  # the new tables hold the old pushes
    assert got["tx_count_7d"] == 3 and got["customers_7d"] == 1 and got["visits_30d"] == 3
    # the migrated store saves and loads under the new plan like any other
    store.save(tmp_path / "migrated")
    again = Store.load(tmp_path / "migrated", new_plan)
    assert again.get("fraud_model@v2", both, at=at).rows() == store.get("fraud_model@v2", both, at=at).rows()


def test_a_new_table_is_refused_when_pushes_it_needs_were_not_kept(tmp_path, demo):
    """A state directory from before pushes were kept: the new table would silently lack them."""
    old_plan = Project.load(_without_merchant_features(tmp_path)).plan
    new_plan = Project.load(_full(tmp_path)).plan
    old = Store(old_plan)
    old.materialize(demo)
    rows, _ = _rows(old)
    old.push("transactions", rows)
    old.save(tmp_path / "snap")
    for kept in (None, lambda: iter([])):
        with pytest.raises(persist.MigrationError, match=r"adds or changes transactions by merchant_id, "
                           r"transactions by user_id, merchant_id.*3 row\(s\) of `transactions`"):
            persist.plan_migration(Store, tmp_path / "snap", new_plan, demo, kept)
    with pytest.raises(persist.MigrationError, match="cannot read the pushes kept"):
        persist.plan_migration(Store, tmp_path / "snap", new_plan, demo, lambda: iter([{"rows": []}]))


def test_changed_table_is_rebuilt_with_the_kept_pushes_or_refused_without_them(tmp_path, demo):
    new_dir = _full(tmp_path)
    plan = Project.load(new_dir).plan
    store = Store(plan)
    store.materialize(demo)
    rows, at = _rows(store)
    store.push("transactions", rows)
    store.save(tmp_path / "snap")
    (new_dir / "big.feat").write_text('import "common/"\n\nfeatures big v1 for user {\n'
                                      '    big_1d: int64 = count(transactions where amount > 5.0, 1d)\n}\n'
                                      'service big v1 {\n    big@v1.big_1d\n}\n')
    changed = Project.load(new_dir).plan
    with pytest.raises(persist.MigrationError, match=r"transactions by user_id.*3 row\(s\) of `transactions`"):
        persist.plan_migration(Store, tmp_path / "snap", changed, demo)
    m = persist.plan_migration(Store, tmp_path / "snap", changed, demo, _records(rows))
    assert {m.names[i] for i in m.rebuilt} == {"transactions by user_id"} and m.pushed == {"transactions": 3}
    migrated = persist.load(Store, tmp_path / "snap", changed, m)
    persist.rebuild(migrated, m, demo, _records(rows))
    assert migrated.get("big@v1", [{"user_id": USER}], at=at).rows()[0]["big_1d"] == 3
    # without pushes (all rows from the files), the same change needs no kept pushes
    clean = Store(plan)
    clean.materialize(demo)
    clean.save(tmp_path / "clean")
    m = persist.plan_migration(Store, tmp_path / "clean", changed, demo)
    assert {m.names[i] for i in m.rebuilt} == {"transactions by user_id"} and not m.pushed


def test_a_server_state_keeps_every_push_for_a_later_new_table(tmp_path, demo):
    """Through the server's log: pushes before a snapshot (moved to STATE/pushed) and after it (in
    the log) both reach a table the next plan adds."""
    old_plan = Project.load(_without_merchant_features(tmp_path)).plan
    new_plan = Project.load(_full(tmp_path)).plan
    state = wal.StateDir(tmp_path / "state")

    def materialized(plan):
        s = Store(plan)
        s.materialize(demo)
        return s

    store, log, _ = wal.recover(state, old_plan, lambda: materialized(old_plan), read_only=False, data_root=demo)
    rows, at = _rows(store)
    for batch in (rows[:2], rows[2:]):
        store.push("transactions", batch)
        log.append("transactions", batch)
        wal.snapshot(store, state, log)  # the pushes so far leave the log
    late = [{**rows[0], "amount": 1.0, "ts": rows[-1]["ts"] + 1}]
    store.push("transactions", late)
    log.append("transactions", late)  # and this one stays in it
    log.close()
    assert len(state.pushed_segments()) >= 2 and not any(s < state.snapshots()[-1] for s in state.segments())

    migrated, log, stats = wal.recover(state, new_plan, None, read_only=False, data_root=demo)
    log.close()
    assert stats["migration"].pushed == {"transactions": 3} and stats["rows"] == 1
    # the state it came from keeps its pushes too, so the previous project there can migrate later
    pre = state.root / f"pre-migration-{stats['snapshot']:012d}"
    assert sorted(p.name for p in (pre / "pushed").iterdir()) == [f"{n:012d}.log" for n in state.pushed_segments()
                                                                   if n < stats["snapshot"]]
    always = materialized(new_plan)
    always.push("transactions", rows)
    always.push("transactions", late)
    both = [{"user_id": USER, "merchant_id": MERCHANT}]
    got = migrated.get("fraud_model@v2", both, at=at, request={"amount": 1.0}).rows()
    assert got == always.get("fraud_model@v2", both, at=at, request={"amount": 1.0}).rows()
    assert got[0]["visits_30d"] == 4
