"""`astra docs` as a user runs it: the CLI conventions (exit 0/1/2, one-line errors, checks
before any work) and an output directory that never loses a file astra did not write."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from astra.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str):
    return CliRunner().invoke(cli, ["docs", *args])


def error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if not ln.startswith(("docs: ", "note: "))]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "features", tmp_path / "features", ignore=shutil.ignore_patterns("build"))
    return tmp_path / "features"


def test_builds_with_statistics_and_says_where(project: Path, demo_data: Path, tmp_path: Path):
    out = tmp_path / "site"
    result = run(str(project), "--out", str(out), "--data-root", str(demo_data))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}/index.html: 106 pages" in result.output  # 4+3+2+12+68+6 definitions, 10 files, the index
    assert "Null rate" in (out / "feature" / "user_spend.v1.tx_sum_7d.html").read_text()


def test_without_data_the_site_says_how_to_get_statistics(project: Path, tmp_path: Path):
    out = tmp_path / "site"
    result = run(str(project), "--out", str(out))
    assert result.exit_code == 0, result.output
    page = (out / "feature" / "user_spend.v1.tx_sum_7d.html").read_text()
    assert "Null rate" not in page and "give --data-root" in page


def test_missing_out_parent_is_refused_before_any_work(project: Path, tmp_path: Path):
    (project / "spend.feat").write_text("this does not parse")  # would fail if the project were loaded
    result = run(str(project), "--out", str(tmp_path / "no" / "such" / "site"))
    assert result.exit_code == 1
    assert "directory" in error_line(result) and "does not exist" in error_line(result)
    assert not (tmp_path / "no").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_parent_is_refused(project: Path, tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run(str(project), "--out", str(locked / "site"))
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 1 and "not writable" in error_line(result)


def test_a_directory_of_someone_elses_files_is_refused(project: Path, tmp_path: Path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    result = run(str(project), "--out", str(out))
    assert result.exit_code == 1 and "not empty" in error_line(result)
    assert (out / "index.html").read_text() == "my own page"


def test_out_that_is_a_file_is_refused(project: Path, tmp_path: Path):
    (tmp_path / "site").write_text("a file")
    result = run(str(project), "--out", str(tmp_path / "site"))
    assert result.exit_code == 1 and "is not a directory" in error_line(result)
    assert (tmp_path / "site").read_text() == "a file"


def test_rebuilding_removes_stale_pages_and_keeps_other_files(project: Path, tmp_path: Path):
    out = tmp_path / "site"
    assert run(str(project), "--out", str(out)).exit_code == 0
    stale = out / "group" / "merchant_activity.v1.html"
    assert stale.is_file()
    (out / "group" / "notes.txt").write_text("kept")
    # drop merchant.feat (and its import), then build again
    (project / "merchant.feat").unlink()
    services = (project / "services.feat").read_text()
    services = services.replace('import "merchant.feat"\n', "")
    services = services.replace("    merchant_activity@v1.customers_7d\n", "").replace(
        "    merchant_activity@v1.mean_ticket_7d as merchant_mean_ticket_7d\n", "").replace(
        "    user_merchant_affinity@v1.*\n", "")
    (project / "services.feat").write_text(services)
    result = run(str(project), "--out", str(out), "--allow-unlocked")
    assert result.exit_code == 0, result.output
    assert not stale.exists() and not (out / "feature" / "merchant_activity.v1.tx_count_1d.html").exists()
    assert (out / "group" / "notes.txt").read_text() == "kept"
    assert (out / "group" / "user_spend.v1.html").is_file()


def test_a_project_that_does_not_compile_prints_its_diagnostics(project: Path, tmp_path: Path):
    (project / "spend.feat").write_text((project / "spend.feat").read_text().replace(
        "count(transactions, 7d)", "count(transaction, 7d)", 1))
    result = run(str(project), "--out", str(tmp_path / "site"))
    assert result.exit_code == 1
    assert "error[E0102]" in result.output
    assert not (tmp_path / "site").exists()


def test_changed_logic_is_refused_as_every_command_does(project: Path, tmp_path: Path):
    (project / "spend.feat").write_text((project / "spend.feat").read_text().replace(
        "tx_count_7d: int64 = count(transactions, 7d)", "tx_count_7d: int64 = count(transactions, 8d)", 1))
    result = run(str(project), "--out", str(tmp_path / "site"))
    assert result.exit_code == 1 and "error[E0601]" in result.output and "--allow-unlocked" in result.output
    result = run(str(project), "--out", str(tmp_path / "site"), "--allow-unlocked")
    assert result.exit_code == 0, result.output
    assert "logic differs from astra.lock" in (tmp_path / "site" / "group" / "user_spend.v1.html").read_text()


@pytest.mark.parametrize(("args", "code", "needle"), [
    (["--data-root", "nowhere"], 1, "data root `nowhere` is not a directory"),
    (["--sample", "0"], 2, "--sample"),
    (["--bogus"], 2, "--bogus"),
])
def test_bad_arguments(project: Path, tmp_path: Path, args, code, needle):
    result = run(str(project), "--out", str(tmp_path / "site"), *args)
    assert result.exit_code == code
    assert needle in error_line(result)


def test_missing_project(tmp_path: Path):
    result = run(str(tmp_path / "nope"), "--out", str(tmp_path / "site"))
    assert result.exit_code == 1 and "no project at" in error_line(result)


def test_a_manifest_never_leads_outside_out(project: Path, tmp_path: Path):
    out = tmp_path / "site"
    assert run(str(project), "--out", str(out)).exit_code == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.html").write_text("keep me too")
    (out / "linked").symlink_to(elsewhere)
    (out / ".astra-catalog.json").write_text('{"files": ["../victim.txt", "linked/x.html", "index.html"]}')
    assert run(str(project), "--out", str(out)).exit_code == 0
    assert victim.read_text() == "keep me" and (elsewhere / "x.html").read_text() == "keep me too"
