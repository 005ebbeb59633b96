"""Null keys and null times in a source keyed by several entities (docs/semantics.md rule 1 and
"Nulls in source data"): a row is invisible only to the entity whose key is null (any column of
a composite key), a row with a null time to every entity.  Checked for the offline engine, the
online store fed by `materialize` and by `push` (dicts and frames), and the reference interpreter.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra.offline import backfill
from astra.online import Store
from astra.online.errors import SchemaError
from astra.plan import reference
from astra.project import Project

PROJECT = """
entity user {
    key user_id: int64
}

entity merchant {
    key merchant_id: int64
}

entity user_merchant {
    key user_id: int64
    key merchant_id: int64
}

events tx for user, merchant, user_merchant {
    path "tx.parquet"
    time ts
    columns {
        user_id: int64
        merchant_id: int64
        amount: float64?
        category: string
    }
}

features u v1 for user {
    n: int64 = count(tx)
    total: float64 = sum(tx.amount)
    last_cat: string? = last(tx.category)
    merchants: int64 = count_distinct(tx.merchant_id)
}

features m v1 for merchant {
    n: int64 = count(tx, 10d)
}

features um v1 for user_merchant {
    n: int64 = count(tx)
}

service s v1 {
    u@v1.*
    m@v1.n as m_n
    um@v1.n as um_n
}
"""

SCHEMA = {"user_id": pl.Int64, "merchant_id": pl.Int64, "amount": pl.Float64, "category": pl.String,
          "ts": pl.Int64}
OUTPUTS = ("n", "total", "last_cat", "merchants", "m_n", "um_n")


def _row(u, m, ts, amount, cat):
    return {"user_id": u, "merchant_id": m, "ts": ts, "amount": amount, "category": cat}


# (user, merchant, time, amount, category)
ROWS = [
    _row(1, 10, 1, 1.0, "a"),
    _row(1, None, 2, 2.0, "b"),  # user only
    _row(None, 10, 3, 4.0, "c"),  # merchant only
    _row(1, 10, None, 8.0, "d"),  # null time: invisible to all
    _row(None, None, 4, 16.0, "e"),  # every key null: invisible to all
    _row(2, 10, 5, 32.0, "f"),
]
# at t = 10 for (user 1, merchant 10): user 1 sees rows 0 and 1, merchant 10 rows 0, 2 and 5,
# the pair row 0 only
EXPECTED = {"n": 2, "total": 3.0, "last_cat": "b", "merchants": 1, "m_n": 3, "um_n": 1}


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    d = tmp_path_factory.mktemp("nullkeys")
    (d / "p.feat").write_text(PROJECT)
    return Project.load(d).plan


def _frame(rows: list[dict]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    return df.with_columns(pl.col("ts").cast(pl.Datetime("us")))


def _write(tmp: Path, rows: list[dict]) -> None:
    _frame(rows).write_parquet(tmp / "tx.parquet")


def _offline(plan, tmp: Path, spine: list[dict]) -> list[dict]:
    spine_df = pl.DataFrame(spine, schema={"user_id": pl.Int64, "merchant_id": pl.Int64, "ts": pl.Int64},
                            orient="row").with_columns(pl.col("ts").cast(pl.Datetime("us")))
    return backfill(plan, "s", 1, spine_df, tmp).select(OUTPUTS).to_dicts()


def _online(store: Store, spine: list[dict]) -> list[dict]:
    keys = [{"user_id": r["user_id"], "merchant_id": r["merchant_id"]} for r in spine]
    rows = store.get("s@v1", keys, at=[r["ts"] for r in spine]).rows()
    return [{k: r[k] for k in OUTPUTS} for r in rows]


SPINE = [{"user_id": 1, "merchant_id": 10, "ts": 10}]


def test_offline_engine_counts_a_row_for_the_entities_whose_key_it_has(plan, tmp_path):
    _write(tmp_path, ROWS)
    assert _offline(plan, tmp_path, SPINE) == [EXPECTED]


def test_materialized_store_counts_a_row_for_the_entities_whose_key_it_has(plan, tmp_path):
    _write(tmp_path, ROWS)
    store = Store(plan, services=["s@v1"])
    counts = store.materialize(tmp_path)
    assert _online(store, SPINE) == [EXPECTED]
    c = counts["tx"]
    assert (c.rows, c.null_time, c.skipped) == (6, 1, 2)  # rows 3 (null time) and 4 (no key) left out
    assert c.null_key == {"user": 2, "merchant": 2, "user_merchant": 3}


def test_reference_interpreter_agrees(plan):
    rows = [dict(r) for r in ROWS]
    got = reference.evaluate(plan, "s", 1, SPINE, {"tx": rows})
    assert [{k: r[k] for k in OUTPUTS} for r in got] == [EXPECTED]


@pytest.mark.parametrize("as_frame", [False, True])
def test_push_accepts_a_row_with_one_entitys_key(plan, as_frame):
    store = Store(plan, services=["s@v1"])
    visible = [r for j, r in enumerate(ROWS) if j not in (3, 4)]
    store.push("tx", _frame(visible) if as_frame else visible)
    assert _online(store, SPINE) == [EXPECTED]


@pytest.mark.parametrize("as_frame", [False, True])
def test_push_rejects_a_row_visible_to_no_entity(plan, as_frame):
    store = Store(plan, services=["s@v1"])
    for j, bad in ((3, "ts"), (4, "key of every entity")):
        rows = [*ROWS[:3], ROWS[j]]
        with pytest.raises(SchemaError, match=rf"row 3 pushed to `tx`.*{bad}"):
            store.push("tx", _frame(rows) if as_frame else rows)
    assert store.watermark == {}  # nothing from the rejected batches was stored


def test_push_of_a_row_without_a_partial_composite_key_counts_for_the_single_keys(plan):
    """A partly-null composite key: the pair does not see the row, its complete parts do."""
    store = Store(plan, services=["s@v1"])
    store.push("tx", [_row(1, None, 1, 1.0, "a")])
    got = _online(store, [{"user_id": 1, "merchant_id": 10, "ts": 5}])[0]
    assert (got["n"], got["um_n"], got["m_n"]) == (1, 0, 0)


# --------------------------------------------------------------------------- property test

_keys = st.one_of(st.none(), st.integers(1, 3))
_rows = st.lists(st.builds(_row, _keys, _keys, st.one_of(st.none(), st.integers(0, 12)),
                           st.one_of(st.none(), st.floats(-100, 100)), st.sampled_from(["a", "b", "c"])),
                 max_size=25)
_spine = st.lists(st.fixed_dictionaries({"user_id": st.integers(1, 4), "merchant_id": st.integers(1, 4),
                                         "ts": st.integers(0, 14)}), min_size=1, max_size=6)


def _same(a: dict, b: dict) -> bool:
    for k in OUTPUTS:
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > 1e-9 * max(abs(x), abs(y), 1.0):
                return False
        elif x != y:
            return False
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows, spine=_spine, data=st.data())
def test_engines_agree_with_the_reference_on_null_keys(plan, tmp_path, rows, spine, data):
    want = [{k: r[k] for k in OUTPUTS} for r in reference.evaluate(plan, "s", 1, spine, {"tx": rows})]
    _write(tmp_path, rows)
    offline = _offline(plan, tmp_path, spine)
    materialized = Store(plan, allowed_lateness=10**6, services=["s@v1"])
    materialized.materialize(tmp_path)
    pushed = Store(plan, allowed_lateness=10**6, services=["s@v1"])
    visible = [r for r in rows if r["ts"] is not None and (r["user_id"] is not None or r["merchant_id"] is not None)]
    i = 0
    while i < len(visible):
        k = data.draw(st.integers(1, 6))
        pushed.push("tx", visible[i:i + k])
        i += k
    for name, got in (("offline", offline), ("materialize", _online(materialized, spine)),
                      ("push", _online(pushed, spine))):
        for g, w, q in zip(got, want, spine):
            assert _same(g, w), f"{name} at {q}: {g} vs reference {w}"
