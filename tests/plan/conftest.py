from __future__ import annotations

from pathlib import Path

import pytest
from project_fixtures import data, project  # noqa: F401 - fixtures (demo data, a copy of features/), found by name

BASE = """
entity user { key user_id: int64 }

events transactions for user {
    path "transactions.parquet"
    time ts
    columns { user_id: int64  amount: float64?  category: string }
}

snapshot profiles for user {
    path "profiles.parquet"
    time updated_at
    columns { user_id: int64  country: string }
}

features spend v1 for user {
    owner "risk@example.com"
    description "spend"
    tx_sum_7d: float64 = sum(transactions.amount, 7d)
    tx_count_7d: int64 = count(transactions, 7d)
    mean_7d: float64? = tx_sum_7d / tx_count_7d
}

features derived v1 for user {
    double_sum: float64 = spend@v1.tx_sum_7d * 2.0
}

features profile v1 for user {
    country: string? = profiles.country
}

service model v1 {
    spend@v1.*
    derived@v1.double_sum
}
"""


@pytest.fixture
def base() -> str:
    """A small project: two sources, three groups (one reading another), one service."""
    return BASE


@pytest.fixture
def write_project(tmp_path: Path):
    """Write `text` as the only file of a fresh project directory and return the directory."""

    def write(text: str, name: str = "p") -> Path:
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        (d / "main.feat").write_text(text)
        return d

    return write
