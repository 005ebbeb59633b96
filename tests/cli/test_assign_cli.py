"""`astra assign`: an experiment's declaration, and the documented arm of unit keys, from the
command line; bad input is one located line and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plan"))

from experiment_project import DECLARED, documented_arm, write

KEYS = [f"user-{i}" for i in range(200)] + ["", "ü🙂"]


def astra(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = write(tmp_path_factory.mktemp("exp") / "features")
    assert astra("compile", str(root), "--lock", cwd=root.parent).returncode == 0
    return root


def test_without_keys_it_describes_the_experiment(project):
    got = astra("assign", "checkout_test", str(project), "--format", "json", cwd=project.parent)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == DECLARED
    text = astra("assign", "checkout_test", str(project), cwd=project.parent).stdout
    assert "control 40%, treatment 60%" in text and "10%-90%" in text


def test_keys_get_their_documented_arm(project):
    args = [a for k in KEYS for a in ("--key", k)]
    got = astra("assign", "checkout_test", str(project), *args, "--format", "json", cwd=project.parent)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == [{"user_id": k, "arm": documented_arm(k)} for k in KEYS]
    assert {documented_arm(k) for k in KEYS} == {"control", "treatment", None}  # the sample reaches every case


def test_a_table_of_keys_comes_back_with_an_arm_column(project, tmp_path):
    pl.DataFrame({"uid": [*KEYS, None], "x": range(len(KEYS) + 1)}).write_csv(tmp_path / "keys.csv")
    got = astra("assign", "checkout_test", str(project), "--keys", str(tmp_path / "keys.csv"), "--column", "uid",
                "--out", str(tmp_path / "arms.parquet"), cwd=project.parent)
    assert got.returncode == 0, got.stderr
    out = pl.read_parquet(tmp_path / "arms.parquet")
    assert out.columns == ["uid", "x", "arm"]
    assert out["arm"].to_list() == [*(documented_arm(k) for k in KEYS), None]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["nope"], 1, "no experiment `nope` in the plan; experiments: checkout_test"),
    (["checkout_test", "--keys", "missing.csv"], 1, "missing.csv"),
    (["checkout_test", "--out", "x.csv"], 2, "--out and --column go with --keys FILE"),
    (["checkout_test", "--key", "a", "--keys", "k.csv"], 2, "not both"),
])
def test_bad_input_is_one_line_and_an_exit_code(project, args, code, message):
    got = astra("assign", args[0], str(project), *args[1:], cwd=project.parent)
    assert got.returncode == code
    assert message in got.stderr and "Traceback" not in got.stderr


def test_a_table_without_the_key_column_names_the_columns(project, tmp_path):
    pl.DataFrame({"uid": ["a"]}).write_csv(tmp_path / "keys.csv")
    got = astra("assign", "checkout_test", str(project), "--keys", str(tmp_path / "keys.csv"), cwd=project.parent)
    assert got.returncode == 1 and "no column `user_id` (columns: uid)" in got.stderr
