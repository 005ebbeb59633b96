"""An empty window's sum is 0 (docs/semantics.md), also for an entity whose earlier rows hold NaN
or infinities, and whatever else is in the spine: one row asked alone gets the answer it gets
beside others."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from astra.compiler import compile_project
from astra.offline import backfill

PROJECT = """
entity user { key user_id: int64 }
events tx for user { path "tx.parquet"  time ts  columns { user_id: int64  amount: float64? } }
features f v1 for user { paid_1d: float64 = sum(tx.amount, 1d)  paid: float64 = sum(tx.amount) }
service s v1 { f@v1.* }
"""
S, DAY = 1_000_000, 86_400_000_000
T0 = 1_770_000_000 * S


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[object, Path]:
    root = tmp_path_factory.mktemp("p")
    (root / "p.feat").write_text(PROJECT)
    result = compile_project(root, lock="ignore")
    assert result.ok, result.diagnostics
    pl.DataFrame({
        "user_id": [1, 1, 2, 3, 3],
        "amount": [math.nan, 2.0, 5.0, math.inf, -math.inf],
        "ts": pl.Series([T0, T0 + 1, T0, T0, T0 + 1]).cast(pl.Datetime("us")),
    }).write_parquet(root / "tx.parquet")
    return result.plan, root


def spine(rows: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame({"user_id": [u for u, _ in rows],
                         "ts": pl.Series([t for _, t in rows]).cast(pl.Datetime("us"))})


@pytest.mark.parametrize("user", [1, 3])
def test_an_empty_window_after_non_finite_rows_is_zero_alone_and_beside_others(project, user):
    plan, root = project
    later = T0 + 10 * DAY  # the 1d window holds none of the entity's rows
    alone = backfill(plan, "s", 1, spine([(user, later)]), root)
    beside = backfill(plan, "s", 1, spine([(user, later), (2, T0 + 1), (user, T0 + 2)]), root)
    assert alone["paid_1d"].to_list() == [0.0]
    assert beside["paid_1d"][0] == 0.0
    assert math.isnan(alone["paid"][0])  # the lifetime sum holds NaN, or inf + -inf
    assert math.isnan(beside["paid"][0])
