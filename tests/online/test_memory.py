"""Memory per pushed row (docs/online.md, "The store"): a pushed row costs about what a
materialized one does.  Segments that outgrow their room move with a quarter's slack, their old
place is a hole until a compaction (once holes are a quarter of the arena), and the arena's last
segment grows in place, so a store fed by pushes holds at most about 1.25 x 1.33 of the bytes a
materialized store of the same retained rows holds; the test allows 1.4x.  Measured with
`Store.nbytes` against the raw bytes of the retained rows (as bench/online.py counts them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from astra.online import Store
from astra.online.arrays import ranges
from astra.project import Project

FEATURES = Path(__file__).resolve().parents[2] / "features"
SERVICES = ["fraud_model@v1"]


def raw_bytes(store: Store) -> int:
    """8 bytes a time, each fixed-width column's declared width, each string's length."""
    total = 0
    for tb in store.tables:
        live = ranges(tb.slot["start"][:tb.n_slots], tb.slot["len"][:tb.n_slots])
        total += len(live) * 8
        for c, dt in tb.columns.items():
            if c in tb.dicts:
                lens = np.array([len(s) for s in tb.dicts[c][0]] or [0], np.int64)
                total += int(lens[tb.pos[f"v:{c}"][live]].sum())
            else:
                total += len(live) * (8 if c in tb.narrow else dt.itemsize)
    return total


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from astra import demo_data

    d = tmp_path_factory.mktemp("mem")
    demo_data.generate(d, events=24_000, users=300, labels=10, seed=3)
    return d


def _stores(data: Path, tmp: Path, rows_of):
    """(materialized store of every row, store materialized with the first half and fed the
    rest by pushes of `rows_of(rest)`)."""
    plan = Project.load(FEATURES).plan
    tx = pl.read_parquet(data / "transactions.parquet").sort("ts")
    full = Store(plan, services=SERVICES)
    full.materialize(data)
    half = tmp / "half"
    half.mkdir()
    (half / "profiles.parquet").write_bytes((data / "profiles.parquet").read_bytes())
    tx.head(len(tx) // 2).write_parquet(half / "transactions.parquet")
    pushed = Store(plan, services=SERVICES)
    pushed.materialize(half)
    for batch in rows_of(tx.slice(len(tx) // 2).to_dicts()):
        pushed.push("transactions", batch)
    return full, pushed


def _per_row(store: Store) -> float:
    rows = sum(int(tb.slot["len"][:tb.n_slots].sum()) for tb in store.tables)
    return store.nbytes() / rows


@pytest.mark.parametrize("batch", [1, 50])
def test_a_pushed_row_costs_about_a_materialized_one(data, tmp_path, batch):
    full, pushed = _stores(data, tmp_path, lambda rows: (rows[j:j + batch] for j in range(0, len(rows), batch)))
    assert _per_row(pushed) <= 1.4 * _per_row(full)
    assert pushed.nbytes() <= 1.4 * (full.nbytes() / raw_bytes(full)) * raw_bytes(pushed)


def test_pushes_to_hot_entities_cost_about_a_materialized_row(data, tmp_path):
    """The same rows, but every pushed row goes to one of the five busiest users (their
    segments grow much more than the others')."""
    tx = pl.read_parquet(data / "transactions.parquet")
    hot = tx["user_id"].value_counts().sort("count", descending=True)["user_id"].head(5).to_list()

    def to_hot(rows):
        for j in range(0, len(rows), 50):
            yield [{**r, "user_id": hot[(j + k) % 5]} for k, r in enumerate(rows[j:j + 50])]

    full, pushed = _stores(data, tmp_path, to_hot)
    assert _per_row(pushed) <= 1.4 * _per_row(full)
