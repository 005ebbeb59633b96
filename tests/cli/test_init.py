"""`astra init NAME` as a new user runs it: the project it makes compiles, backfills, materializes
and serves as it is, its README's commands run, and its own test passes.

Expected values are computed here from the sample data file and the feature definitions (counts,
sums and means over `[t - 7d, t)` and `[t - 30d, t)`, the latest category before t), not taken
from astra's output.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin, where the installed `astra` lives

_spec = importlib.util.spec_from_file_location("serve_harness", ROOT / "tests" / "serve" / "serve_harness.py")
serve_harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_harness)


def astra(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180)


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def readme_blocks(readme: str) -> list[list[str]]:
    """The commands of each ```sh block (continuation lines joined, comments kept for bash)."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", readme, re.S):
        blocks.append([line for line in body.replace("\\\n", " ").splitlines() if line.strip()])
    return blocks


def orders(project: Path) -> list[dict]:
    """The sample orders, read with the csv module (not with astra or Polars)."""
    import csv

    with open(project / "data" / "orders.csv", newline="") as f:
        return [{"ts": dt.datetime.fromisoformat(r["ts"]), "customer_id": int(r["customer_id"]),
                 "amount": float(r["amount"]), "category": r["category"]} for r in csv.DictReader(f)]


def expected(rows: list[dict], customer: int, t: dt.datetime) -> dict:
    """customer_orders@v1 by its definition: windows [t - w, t), `last` the latest row before t."""
    mine = [r for r in rows if r["customer_id"] == customer and r["ts"] < t]
    week = [r for r in mine if r["ts"] >= t - dt.timedelta(days=7)]
    month = [r for r in mine if r["ts"] >= t - dt.timedelta(days=30)]
    return {"orders_7d": len(week), "spend_7d": math.fsum(r["amount"] for r in week),
            "mean_order_30d": math.fsum(r["amount"] for r in month) / len(month) if month else None,
            "last_category": max(mine, key=lambda r: r["ts"])["category"] if mine else None}


def same(got: dict, want: dict) -> bool:
    return all(got[k] == pytest.approx(v, rel=1e-9) if isinstance(v, float) else got[k] == v for k, v in want.items())


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("newcomer")
    r = astra("init", "shop", cwd=home)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and "created shop/" in r.stdout and "cd shop" in r.stdout
    return home / "shop"


def test_the_project_has_every_part_and_compiles_clean_under_its_lock(shop: Path) -> None:
    for part in ("entities.feat", "sources.feat", "features.feat", "astra.lock", "README.md", "data/orders.csv",
                 "data/spine.csv", "tests/test_features.py", ".gitignore"):
        assert (shop / part).is_file(), part
    assert "customer_orders@v1" in json.loads((shop / "astra.lock").read_text())["groups"]
    r = astra("compile", "--locked", cwd=shop)  # the lock is current: nothing left to release
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr
    assert astra("fmt", "--check", cwd=shop).returncode == 0  # written in the canonical layout
    assert (shop / "README.md").read_text().startswith("# shop\n")


def test_readme_commands_backfill_materialize_and_run_the_projects_own_test(shop: Path) -> None:
    first = readme_blocks((shop / "README.md").read_text())[0]
    assert any("backfill" in c for c in first) and any("pytest" in c for c in first)
    for command in first:
        r = shell(command, shop)
        assert r.returncode == 0, f"`{command}` exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, command
    import polars as pl

    training = pl.read_csv(shop / "build" / "training.csv", try_parse_dates=True)
    spine = pl.read_csv(shop / "data" / "spine.csv", try_parse_dates=True)
    assert training.height == spine.height == 7
    rows = orders(shop)
    for row in training.iter_rows(named=True):
        want = expected(rows, row["customer_id"], row["ts"])
        assert same(row, want), (row, want)
    assert training["orders_7d"].sum() > 0 and training["mean_order_30d"].null_count() >= 1  # both cases seen
    assert (shop / "build" / "serve").is_dir()  # materialized where astra serve reads by default


def test_serving_answers_the_readme_query_as_the_definitions_say(shop: Path, tmp_path: Path) -> None:
    blocks = readme_blocks((shop / "README.md").read_text())
    serve, curl = blocks[1]
    words = shlex.split(serve, comments=True)
    # serve what `astra materialize` (the first block) wrote, in build/serve, or load the data
    assert words == ["astra", "serve", "--data-root", "."], serve
    body = json.loads(shlex.split(curl)[shlex.split(curl).index("-d") + 1])
    project = tmp_path / "project"
    shutil.copytree(shop, project, ignore=shutil.ignore_patterns("build"))
    assert shell("astra compile && astra materialize", project).returncode == 0  # in the README order
    # no --data-root: an answer can only come from the store materialize wrote
    server = serve_harness.launch(project, project / "build" / "serve")
    try:
        status, _, answer = server.client.post("/v1/features", body)
        assert status == 200, answer
        got = dict(zip([f["name"] for f in answer["features"]], answer["results"][0]["values"]))
        t = dt.datetime.fromisoformat(body["at"])
        want = expected(orders(shop), body["entities"][0]["customer_id"], t)
        assert want["orders_7d"] > 0 and same(got, want), (got, want)
        status, headers, page = server.client.get("/docs")  # the API explorer the README points at
        assert status == 200 and headers["content-type"].startswith("text/html") and "openapi.json" in page
    finally:
        server.stop()


def test_existing_non_empty_directories_and_bad_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine\n")
    (tmp_path / "afile").write_text("x")
    for name, code, words in (("taken", 1, "not empty"), ("afile", 1, "not a directory"),
                              ("no/such/dir/p", 1, "does not exist"), ("bad name", 2, "not a project name"),
                              ("9lives", 2, "not a project name"), ("x" * 65, 2, "not a project name"),
                              ("..", 2, "not a project name"), ("shop\nrm", 2, "not a project name")):
        r = astra("init", name, cwd=tmp_path)
        assert r.returncode == code, (name, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (name, r.stderr)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine\n"  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "taken"]  # nothing half made


def test_an_empty_directory_is_filled(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = astra("init", "empty", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "empty" / "features.feat").is_file()
    assert astra("compile", "empty", cwd=tmp_path).returncode == 0
    (tmp_path / "here").mkdir()
    r = astra("init", ".", cwd=tmp_path / "here")  # the working directory, named after itself
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "here" / "README.md").read_text().startswith("# here\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "here"]  # no work directory left behind
    assert astra("compile", cwd=tmp_path / "here").returncode == 0


def test_templates_and_explorer_assets_go_into_the_wheel() -> None:
    """The wheel takes every file under astra/ except those git ignores (hatch's rule): none of the
    project templates or the explorer's assets may be ignored."""
    import shutil

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = [p for d in (ROOT / "astra" / "scaffold", ROOT / "astra" / "serve" / "explorer") for p in d.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) >= 10
    r = subprocess.run(["git", "check-ignore", "--no-index", *map(str, files)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", f"ignored by git, so left out of the wheel:\n{r.stdout}"


def test_init_dot_in_a_directory_whose_name_is_not_a_name_says_which_name(tmp_path: Path) -> None:
    """`astra init .` takes the working directory's name: when that is not a project name, the
    error names it (saying only that `.` is not a name leaves the user guessing)."""
    odd = tmp_path / "my.project"
    odd.mkdir()
    r = astra("init", ".", cwd=odd)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "`my.project`" in r.stderr and "not a project name" in r.stderr, r.stderr
    assert list(odd.iterdir()) == []
