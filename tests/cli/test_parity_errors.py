"""`astra parity` never ends in a traceback: every bad input is one `error:` line and exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from astra.cli.main import cli
from astra.demo_data import generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, events=3_000, users=100, labels=200)
    return out


def _parity(spine: Path, data_root: Path, *extra: str, service: str = "fraud_model@v1"):
    return CliRunner().invoke(cli, ["parity", str(ROOT / "features"), "--service", service, "--spine", str(spine),
                                    "--data-root", str(data_root), *extra])


def _one_error_line(r, *words: str) -> None:
    assert r.exit_code == 1, r.output
    assert isinstance(r.exception, SystemExit), r.exception  # not an uncaught exception
    # progress lines (`parity: <stage> (<seconds> s)`) may come before the error, nothing else
    lines = [line for line in r.output.strip().splitlines() if not line.startswith("parity: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    for w in words:
        assert w in lines[0], lines[0]


def _spine(demo: Path, tmp: Path, change, name: str = "spine.parquet") -> Path:
    out = tmp / name
    change(pl.read_parquet(demo / "spine.parquet"), out)
    return out


def test_a_clean_run_for_contrast(demo):
    r = _parity(demo / "spine.parquet", demo)
    assert r.exit_code == 0 and r.stdout.strip().endswith("OK"), r.output  # the report; stderr ends with a summary


@pytest.mark.parametrize("case, words", [
    ("unknown service", ["fraud_model@v9", "v1"]),
    ("no spine file", ["nowhere.parquet", "no such file"]),
    ("corrupt spine", ["bad.parquet", "cannot read"]),
    ("spine format", ["spine.txt", "unknown table format"]),
    ("no time column", ["no time column `ts`"]),
    ("string time", ["`ts` should be a datetime"]),
    ("null time", ["null"]),
    ("no key column", ["user_id"]),
    ("null key", ["spine key column `user_id`"]),
    ("output-named column", ["tx_count_1h"]),
])
def test_bad_spines(demo, tmp_path, case, words):
    spine = {
        "unknown service": lambda: demo / "spine.parquet",
        "no spine file": lambda: tmp_path / "nowhere.parquet",
        "corrupt spine": lambda: _write_bytes(tmp_path / "bad.parquet", b"not parquet at all"),
        "spine format": lambda: _write_bytes(tmp_path / "spine.txt", b"user_id,ts\n1,2\n"),
        "no time column": lambda: _spine(demo, tmp_path, lambda df, p: df.drop("ts").write_parquet(p)),
        "string time": lambda: _spine(demo, tmp_path, lambda df, p: df.with_columns(
            pl.col("ts").cast(pl.String)).write_parquet(p)),
        "null time": lambda: _spine(demo, tmp_path, lambda df, p: df.with_columns(
            _null_first("ts")).write_parquet(p)),
        "no key column": lambda: _spine(demo, tmp_path, lambda df, p: df.drop("user_id").write_parquet(p)),
        "null key": lambda: _spine(demo, tmp_path, lambda df, p: df.with_columns(
            _null_first("user_id")).write_parquet(p)),
        "output-named column": lambda: _spine(demo, tmp_path, lambda df, p: df.with_columns(
            tx_count_1h=pl.lit(1)).write_parquet(p)),
    }[case]()
    service = "fraud_model@v9" if case == "unknown service" else "fraud_model@v1"
    _one_error_line(_parity(spine, demo, service=service), *words)


def _null_first(column: str) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col(column)).alias(column)


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case, words", [
    ("no data root", ["data root `", "is not a directory"]),
    ("corrupt source", ["transactions", "cannot read"]),
    ("missing column", ["transactions", "missing column", "amount"]),
    ("wrong dtype", ["transactions", "`amount` should be float64"]),
    ("null in a non-optional column", ["transactions", "`category`", "string?"]),
])
def test_bad_sources(demo, tmp_path, case, words):
    root = tmp_path / "data"
    if case != "no data root":
        shutil.copytree(demo, root)
        tx = pl.read_parquet(root / "transactions.parquet")
        if case == "corrupt source":
            (root / "transactions.parquet").write_bytes(b"PAR1 truncated")
        elif case == "missing column":
            tx.drop("amount").write_parquet(root / "transactions.parquet")
        elif case == "wrong dtype":
            tx.with_columns(pl.col("amount").cast(pl.String)).write_parquet(root / "transactions.parquet")
        else:
            tx.with_columns(_null_first("category")).write_parquet(root / "transactions.parquet")
    _one_error_line(_parity(demo / "spine.parquet", root), *words)


def test_a_project_that_does_not_compile_is_a_diagnostic_not_a_traceback(demo, tmp_path):
    (tmp_path / "bad.feat").write_text("features broken v1 for nobody {\n    x: int64 = count(nothing)\n}\n")
    r = CliRunner().invoke(cli, ["parity", str(tmp_path), "--service", "s@v1", "--spine",
                                 str(demo / "spine.parquet"), "--data-root", str(demo)])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    # rendered as `astra compile` renders it: located, with the source line
    assert r.output.startswith("bad.feat:1:24: error[E0101]") and "Traceback" not in r.output
