"""A declared non-optional column (not a key, not the time) holding nulls (docs/semantics.md,
"Nulls in source data"): every engine rejects it the same way (backfill, materialize, push,
parity), whether or not the service reads the column; declared `T?`, the same data is accepted.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from astra.cli.main import cli
from astra.offline import backfill
from astra.offline.errors import BackfillError
from astra.online import Store
from astra.online.errors import SchemaError
from astra.parity import run_parity
from astra.project import Project

PROJECT = """
entity user {
    key user_id: int64
}

events tx for user {
    path "tx.parquet"
    time ts
    columns {
        user_id: int64
        amount: float64?
        category: %(category)s
    }
}

features u v1 for user {
    n: int64 = count(tx)
    last_cat: string? = last(tx.category)
}

service reads_category v1 {
    u@v1.n
    u@v1.last_cat
}

service counts_only v1 {
    u@v1.n
}
"""

ROWS = {"user_id": [1, 1, 2, 2], "amount": [1.0, None, 3.0, 4.0], "category": ["a", None, "c", None],
        "ts": [1, 2, 3, 4]}


def _project(d: Path, category: str) -> Project:
    d.mkdir(parents=True, exist_ok=True)
    (d / "p.feat").write_text(PROJECT % {"category": category})
    pl.DataFrame(ROWS).with_columns(pl.col("ts").cast(pl.Datetime("us"))).write_parquet(d / "tx.parquet")
    pl.DataFrame({"user_id": [1, 2], "ts": [10, 10]}).with_columns(
        pl.col("ts").cast(pl.Datetime("us"))).write_parquet(d / "spine.parquet")
    return Project.load(d)


@pytest.fixture
def strict(tmp_path) -> Project:
    return _project(tmp_path / "strict", "string")


MESSAGE = (r"tx\.parquet\): column `category` is declared `string` but holds 2 null value\(s\), first at "
           r"row\(s\) 1, 3; declare it `string\?`")


@pytest.mark.parametrize("service", ["reads_category", "counts_only"])
def test_backfill_rejects_the_file(strict, tmp_path, service):
    spine = pl.read_parquet(tmp_path / "strict" / "spine.parquet")
    with pytest.raises(BackfillError, match=MESSAGE):
        backfill(strict.plan, service, 1, spine, tmp_path / "strict")


@pytest.mark.parametrize("services", [None, ["reads_category@v1"], ["counts_only@v1"]])
def test_materialize_rejects_the_file(strict, tmp_path, services):
    with pytest.raises(BackfillError, match=MESSAGE):
        Store(strict.plan, services=services).materialize(tmp_path / "strict")


@pytest.mark.parametrize("service", ["reads_category", "counts_only"])
def test_parity_rejects_the_file(strict, tmp_path, service):
    spine = pl.read_parquet(tmp_path / "strict" / "spine.parquet")
    with pytest.raises(BackfillError, match=MESSAGE):
        run_parity(strict.plan, service, 1, spine, tmp_path / "strict")


@pytest.mark.parametrize("command", ["parity", "backfill", "materialize"])
def test_commands_say_so_in_one_line(strict, tmp_path, command):
    d = tmp_path / "strict"
    args = {"parity": ["parity", str(d), "--service", "counts_only@v1", "--spine", str(d / "spine.parquet"),
                       "--data-root", str(d)],
            "backfill": ["backfill", str(d), "--service", "counts_only@v1", "--spine", str(d / "spine.parquet"),
                         "--out", str(tmp_path / "out.parquet"), "--data-root", str(d)],
            "materialize": ["materialize", str(d), "--data-root", str(d), "--state", str(tmp_path / "state")]}
    r = CliRunner().invoke(cli, args[command])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    lines = [line for line in r.output.strip().splitlines()  # notes and progress lines come first
             if not line.startswith(("note: ", f"{command}: "))]
    assert len(lines) == 1 and lines[0].startswith("error: source `tx`") and "`category`" in lines[0]


def test_push_rejects_the_rows(strict):
    store = Store(strict.plan)
    ok = {"user_id": 1, "amount": 1.0, "category": "a", "ts": 1}
    with pytest.raises(SchemaError, match=r"row 1 pushed to `tx` has no `category` \(declared `string`, not "
                                          r"optional\); declare it `string\?`"):
        store.push("tx", [ok, {**ok, "category": None}])
    with pytest.raises(SchemaError, match=r"row 0 pushed to `tx` has no `category`"):
        store.push("tx", [{"user_id": 1, "ts": 1}])  # omitted: not optional, so required
    frame = pl.DataFrame({"user_id": [1, 1], "amount": [1.0, 2.0], "category": ["a", None], "ts": [1, 2]})
    with pytest.raises(SchemaError, match=r"row 1 pushed to `tx` has no `category` \(declared `string`, not "
                                          r"optional\); declare it `string\?`"):
        store.push("tx", frame)
    with pytest.raises(SchemaError, match=r"lack column\(s\) category"):
        store.push("tx", frame.drop("category"))
    assert store.watermark == {}  # nothing stored
    store.push("tx", [{"user_id": 1, "category": "a", "ts": 1}])  # an optional column may be omitted
    assert store.get("counts_only@v1", [{"user_id": 1}], at=5).rows()[0]["n"] == 1


def test_declared_optional_the_same_data_is_read_by_both_engines(tmp_path):
    project = _project(tmp_path / "loose", "string?")
    spine = pl.read_parquet(tmp_path / "loose" / "spine.parquet")
    report = run_parity(project.plan, "reads_category", 1, spine, tmp_path / "loose")
    assert report.ok, report.table()
    out = backfill(project.plan, "reads_category", 1, spine, tmp_path / "loose")
    assert out["last_cat"].to_list() == ["a", "c"]  # a null category is ignored by `last` (rule 3)
    assert out["n"].to_list() == [2, 2]
