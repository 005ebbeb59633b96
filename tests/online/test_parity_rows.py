"""`astra parity` accounts for every source row: how many each engine read, and how many it
left out and why (null time; null key, per entity), in its text, JSON and Python results.  A
row one engine drops silently makes parity fail on the counts, not only on the values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from astra import demo_data
from astra.cli.main import cli
from astra.online import store as store_module
from astra.parity import run_parity
from astra.project import Project

ROOT = Path(__file__).resolve().parents[2]


def _null_heavy(d: Path, n: int = 4000, seed: int = 5) -> dict[str, int]:
    """The example project's sources with nulls in every column but `category` (declared
    non-optional): keys, times, amounts, profile values.  Returns the counts the documented rule
    gives for transactions."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    base = 1_767_225_600_000_000  # 2026-01-01

    def nulls(values, p=0.1):
        return [None if rng.random() < p else v for v in values]

    ts = nulls((base + rng.integers(0, 10 * 86400, n) * 1_000_000).tolist())
    users = nulls(rng.integers(1, 50, n).tolist())
    merchants = nulls(rng.integers(1, 20, n).tolist())
    def stamps(values):
        return pl.Series(values, dtype=pl.Int64).cast(pl.Datetime("us"))

    tx = pl.DataFrame({"user_id": pl.Series(users, dtype=pl.Int64),
                       "merchant_id": pl.Series(merchants, dtype=pl.Int64),
                       "amount": pl.Series(nulls(rng.random(n).tolist()), dtype=pl.Float64),
                       "category": [f"cat_{i:02d}" for i in rng.integers(0, 5, n)], "ts": stamps(ts)})
    tx.write_parquet(d / "transactions.parquet")
    m = 300
    profiles = pl.DataFrame({"user_id": pl.Series(nulls(rng.integers(1, 50, m).tolist()), dtype=pl.Int64),
                             "country": rng.choice(["US", "DE"], m).tolist(),
                             "tier": pl.Series(rng.integers(0, 3, m), dtype=pl.Int32),
                             "credit_limit": rng.random(m) * 1000,
                             "updated_at": stamps(nulls((base + rng.integers(0, 10 * 86400, m) * 1_000_000).tolist()))})
    profiles.write_parquet(d / "profiles.parquet")
    pl.DataFrame({"user_id": rng.integers(1, 55, 500), "merchant_id": rng.integers(1, 22, 500),
                  "ts": stamps(base + rng.integers(2 * 86400, 11 * 86400, 500) * 1_000_000)}
                 ).write_parquet(d / "spine.parquet")
    demo_data.products(d, base)  # the product catalogue (its vector index) as the demo has it
    timed = [t is not None for t in ts]
    return {"rows": n, "null_time": n - sum(timed),
            "user": sum(t and u is None for t, u in zip(timed, users)),
            "merchant": sum(t and mm is None for t, mm in zip(timed, merchants)),
            "user_merchant": sum(t and (u is None or mm is None) for t, u, mm in zip(timed, users, merchants))}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    d = tmp_path_factory.mktemp("nullheavy")
    return d, _null_heavy(d)


@pytest.fixture(scope="module")
def plan():
    return Project.load(ROOT / "features").plan


@pytest.mark.parametrize("service", ["fraud_model@v1", "fraud_model@v2"])
def test_both_engines_read_and_skip_the_rows_the_rule_says(plan, data, service):
    d, want = data
    name, version = service.split("@v")
    spine = pl.read_parquet(d / "spine.parquet").with_columns(amount=pl.lit(10.0), channel=pl.lit("web"))
    report = run_parity(plan, name, int(version), spine, d)
    assert report.ok, report.table()
    (tx,) = [s for s in report.sources if s.offline.source == "transactions"]
    entities = ["user"] if version == "1" else ["user", "merchant", "user_merchant"]
    for engine in (tx.offline, tx.online):
        assert (engine.rows, engine.null_time) == (want["rows"], want["null_time"])
        assert engine.null_key == {e: want[e] for e in entities}
    assert want["user"] > 0 and want["null_time"] > 0  # the data exercises both reasons


def test_text_and_json_reports_show_the_counts(data):
    d, want = data
    args = ["parity", str(ROOT / "features"), "--service", "fraud_model@v1", "--spine", str(d / "spine.parquet"),
            "--data-root", str(d)]
    text = CliRunner().invoke(cli, args)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert any(line.split() == ["transactions:", "read", str(want["rows"]), str(want["rows"])] for line in lines)
    assert any(line.split() == ["skipped:", "null", "time", str(want["null_time"]), str(want["null_time"])]
               for line in lines)
    assert any(line.split() == ["invisible", "to", "user:", "null", "key", str(want["user"]), str(want["user"])]
               for line in lines)
    js = CliRunner().invoke(cli, [*args, "--format", "json"])
    doc = json.loads(js.stdout)  # progress lines go to stderr
    (tx,) = [s for s in doc["sources"] if s["source"] == "transactions"]
    assert tx["offline"] == tx["online"] == {"rows": want["rows"], "null_time": want["null_time"],
                                             "null_key": {"user": want["user"]},
                                             "skipped": want["null_time"] + want["user"]}
    assert doc["ok"] is True and len(doc["features"]) == 22


def test_a_row_the_online_engine_drops_shows_up_in_the_counts(plan, data, monkeypatch):
    """The old online bug, put back: tables ignore rows with a null in *any* key column."""
    d, want = data
    real = store_module._with_key

    def drop_any_null_key(times, cols, columns):
        return real(times, cols, ("user_id", "merchant_id") if "merchant_id" in cols else columns)

    monkeypatch.setattr(store_module, "_with_key", drop_any_null_key)
    report = run_parity(plan, "fraud_model", 1, pl.read_parquet(d / "spine.parquet"), d)
    assert not report.ok
    (tx,) = [s for s in report.sources if s.offline.source == "transactions"]
    assert not tx.ok
    assert tx.offline.null_key["user"] == want["user"]
    assert tx.online.null_key["user"] == want["user_merchant"]  # rows with a user but no merchant lost
    assert "<- differs" in report.table()


def test_materialize_reports_the_rows_it_read_and_left_out(data, tmp_path):
    d, want = data
    r = CliRunner().invoke(cli, ["materialize", str(ROOT / "features"), "--data-root", str(d), "--state",
                                 str(tmp_path / "state")])
    assert r.exit_code == 0, r.output
    (line,) = [x for x in r.output.splitlines() if x.startswith("transactions:")]
    assert f"{want['rows']} rows read" in line and f"({want['null_time']} null time" in line
    for e in ("user", "merchant", "user_merchant"):
        assert f", {want[e]} invisible to {e} (null key)" in line
