"""`astra.lock` binds every entry point that builds a plan, not only `astra compile`.

A released version whose logic changed is refused by backfill, materialize, parity, serve,
explain, graph and `Project.load` (a fresh cached build/plan.json included) with the E0601
diagnostic compile prints; `--allow-unlocked` / `allow_unlocked=True` is the explicit escape
hatch.  Versions not in the lock yet run, with a note.  `compile --locked` never rewrites the lock.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import astra
from astra.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
OLD = "tx_sum_7d: float64 = sum(transactions.amount, 7d)"
NEW = "tx_sum_7d: float64 = sum(transactions.amount, 8d)"


def changed(project: Path) -> Path:
    """The released user_spend@v1 with one window changed, and no version bump."""
    spend = project / "spend.feat"
    text = spend.read_text()
    assert OLD in text
    spend.write_text(text.replace(OLD, NEW, 1))
    return project


def commands(project: Path, data: Path, tmp: Path) -> dict[str, list[str]]:
    spine = str(data / "spine.parquet")
    return {
        "backfill": ["backfill", str(project), "--service", "fraud_model@v1", "--spine", spine,
                     "--data-root", str(data), "--out", str(tmp / "out.parquet")],
        "materialize": ["materialize", str(project), "--data-root", str(data), "--state", str(tmp / "state")],
        "parity": ["parity", str(project), "--service", "fraud_model@v1", "--spine", spine, "--data-root", str(data)],
        "explain": ["explain", "user_spend@v1.tx_sum_7d", str(project)],
        "graph": ["graph", str(project)],
        "serve": ["serve", str(project), "--state", str(tmp / "serve"), "--port", "1"],
    }


def run(args: list[str]):
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("command", ["backfill", "materialize", "parity", "explain", "graph", "serve"])
def test_changed_logic_under_a_released_version_is_refused_by_every_command(project, data, tmp_path, command):
    args = commands(changed(project), data, tmp_path)[command]
    r = run(args)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert "Traceback" not in r.output
    # the diagnostic compile prints: located, the change, the services pinning the version
    assert "spend.feat:" in r.stderr and "error[E0601]" in r.stderr and "window 7d -> 8d" in r.stderr
    assert "fraud_model@v1" in r.stderr
    assert "--allow-unlocked" in r.stderr and "allow_unlocked=True" not in r.stderr
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "state").exists()


def test_compile_prints_the_same_diagnostic(project) -> None:
    r = run(["compile", str(changed(project))])
    assert r.exit_code == 1 and "error[E0601]" in r.stderr and "window 7d -> 8d" in r.stderr


@pytest.mark.parametrize("command", ["backfill", "materialize", "explain"])
def test_allow_unlocked_runs_it_and_says_so(project, data, tmp_path, command) -> None:
    r = run([*commands(changed(project), data, tmp_path)[command], "--allow-unlocked"])
    assert r.exit_code == 0, r.output
    assert "note:" in r.stderr and "user_spend@v1" in r.stderr and "differs from astra.lock" in r.stderr


def test_python_api_refuses_and_names_the_keyword(project) -> None:
    with pytest.raises(astra.ProjectError) as err:
        astra.Project.load(changed(project))
    text = str(err.value)
    assert "error[E0601]" in text and "window 7d -> 8d" in text
    assert "allow_unlocked=True" in text and "--allow-unlocked" not in text
    loaded = astra.Project.load(project, allow_unlocked=True)
    assert any("differs from astra.lock" in n for n in loaded.notes)


def test_a_fresh_cached_plan_is_checked_against_the_lock_too(project) -> None:
    # a development run with the hatch writes build/plan.json for the changed logic ...
    astra.Project.load(changed(project), allow_unlocked=True)
    assert (project / "build" / "plan.json").exists()
    # ... which is fresh (same .feat files), yet without the hatch it is refused all the same
    with pytest.raises(astra.ProjectError, match="E0601"):
        astra.Project.load(project)


def test_a_lock_edited_under_a_fresh_cache_is_checked(project) -> None:
    astra.Project.load(project)  # caches the plan
    lock = json.loads((project / "astra.lock").read_text())
    lock["groups"]["user_spend@v1"]["data"] = "0" * 16
    (project / "astra.lock").write_text(json.dumps(lock))
    with pytest.raises(astra.ProjectError, match="E0601"):
        astra.Project.load(project)


def test_a_new_version_not_yet_in_the_lock_runs_with_a_note(project, data, tmp_path) -> None:
    spend = project / "spend.feat"
    spend.write_text(spend.read_text() + "\nfeatures user_spend v3 for user {\n"
                     "    tx_sum_8d: float64 = sum(transactions.amount, 8d)\n}\n")
    r = run(commands(project, data, tmp_path)["backfill"])
    assert r.exit_code == 0, r.output
    assert "note:" in r.stderr and "user_spend@v3" in r.stderr and "under development" in r.stderr
    assert any("user_spend@v3" in n for n in astra.Project.load(project).notes)
    # compile still asks for it to be released
    assert "E0602" in run(["compile", str(project)]).stderr


def test_compile_locked_fails_instead_of_rewriting_the_lock(project) -> None:
    spend = project / "spend.feat"
    spend.write_text(spend.read_text().replace('description "Card spend over sliding windows"',
                                               'description "Card spend, sliding windows"', 1))
    before = (project / "astra.lock").read_text()
    r = run(["compile", str(project), "--locked"])
    assert r.exit_code == 1 and "error[E0603]" in r.stderr and "user_spend@v1" in r.stderr
    assert (project / "astra.lock").read_text() == before
    # plain compile records the metadata change, and says what it rewrote
    r = run(["compile", str(project)])
    assert r.exit_code == 0, r.output
    assert "metadata of user_spend@v1 changed" in r.stderr and "rewrote" in r.stderr and "astra.lock" in r.stderr
    assert (project / "astra.lock").read_text() != before
    assert run(["compile", str(project), "--locked"]).exit_code == 0


def test_compile_locked_with_lock_is_a_usage_error(project) -> None:
    r = run(["compile", str(project), "--locked", "--lock"])
    assert r.exit_code == 2 and r.stderr.startswith("error: ")
