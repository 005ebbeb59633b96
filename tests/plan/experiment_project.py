"""A small project with one experiment, shared by the `astra assign` and `/v1/experiments`
tests, and hash version 2 written out from docs/language.md (no astra code)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

PROJECT = """
entity user { key user_id: string }
events tx for user {
    path "tx.parquet"
    time ts
    columns { user_id: string  amount: float64 }
}
experiment checkout_test {
    unit user
    layer checkout 10%-90%
    salt "checkout-button-2026"
    arms { control 40%, treatment 60% }
    holdout 5%
    coverage 50%
}
features exposure v1 for user {
    arm: string? = assignment(checkout_test)
    spend: float64 = sum(tx.amount, 7d)
}
service svc v1 { exposure@v1.* }
"""
DECLARED = {"name": "checkout_test", "unit": {"entity": "user", "key": "user_id", "type": "string"},
            "layer": "checkout", "slice": [10.0, 90.0], "salt": "checkout-button-2026", "holdout": 5.0,
            "coverage": 50.0, "arms": [{"name": "control", "percent": 40.0}, {"name": "treatment", "percent": 60.0}],
            "within": None, "hash": "v2"}


def write(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "p.feat").write_text(PROJECT)
    pl.DataFrame({"user_id": ["a", "b"], "ts": [dt.datetime(2026, 1, 1)] * 2, "amount": [1.0, 2.0]}).write_parquet(
        root / "tx.parquet")
    return root


def fnv1a32(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) % 2**32
    return h


def bucket(seed: str, key: str) -> int:
    return fnv1a32(str(fnv1a32((seed + key).encode())).encode()) % 10000


def documented_arm(key: str) -> str | None:
    """The arm of `key` in DECLARED, step by step as docs/language.md states it."""
    if not 1000 <= bucket("checkout:", key) < 9000:  # the 10%-90% slice of the layer
        return None
    b = bucket("checkout:checkout-button-2026:", key)
    if b < 500:  # 5% held out
        return None
    rest = 9500
    control = (500, 500 + rest * 0.40 * 0.50)  # each arm takes the first 50% of its range
    treatment = (500 + rest * 0.40, 500 + rest * 0.40 + rest * 0.60 * 0.50)
    if control[0] <= b < control[1]:
        return "control"
    if treatment[0] <= b < treatment[1]:
        return "treatment"
    return None
