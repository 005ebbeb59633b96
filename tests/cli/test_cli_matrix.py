"""Every command against every kind of bad input: never a traceback, always an error a user can
act on, with the documented exit status (1: user or data error, 2: usage error).

An error is one `error: ...` line, or, for a project that does not compile, the located
diagnostics `astra compile` prints.  Progress lines (`backfill: <stage> (<s> s)`) and notes may
come before it; nothing else may.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from astra.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("compile", "fmt", "explain", "graph", "backfill", "materialize", "parity", "serve")
CASES = ("no arguments", "missing project", "missing data root", "missing output directory", "unreadable file",
         "malformed file", "changed logic under an old version")
PROGRESS = re.compile(r"^(backfill|materialize|parity): .*\(\d+\.\d\d s\)$")
DIAGNOSTIC = re.compile(r"^(\S+:\d+:\d+: )?error\[E\d{4}\]: ")


def rest(command: str, project: Path, data: Path, tmp: Path, **change: str) -> list[str]:
    """The arguments of a run that would succeed, with `change` (a flag -> a new value) applied."""
    args = {
        "compile": [str(project)],
        "fmt": ["--check", str(project)],
        "explain": ["tx_mean_7d", str(project)],
        "graph": [str(project)],
        "backfill": [str(project), "--service", "fraud_model@v1", "--spine", str(data / "spine.parquet"),
                     "--data-root", str(data), "--out", str(tmp / "out.parquet")],
        "materialize": [str(project), "--data-root", str(data), "--state", str(tmp / "state")],
        "parity": [str(project), "--service", "fraud_model@v1", "--spine", str(data / "spine.parquet"),
                   "--data-root", str(data)],
        "serve": [str(project), "--data-root", str(data), "--state", str(tmp / "serve"), "--port", "1"],
    }[command]
    for flag, value in change.items():
        if flag == "DIR":
            args[args.index(str(project))] = value
        else:
            args[args.index(flag) + 1] = value
    return [command, *args]


def case_args(command: str, case: str, project: Path, data: Path, tmp: Path) -> tuple[list[str], int] | None:
    """The command line for `case` and the exit status it must end with; None where the case
    does not apply to the command (fmt reads no data and no lock)."""
    if case == "no arguments":  # run from an empty directory: no project there
        return [command], 2 if command in ("explain", "backfill", "parity") else 1
    if case == "missing project":
        return rest(command, project, data, tmp, DIR=str(tmp / "nowhere")), 1
    if case == "missing data root":
        if command not in ("backfill", "materialize", "parity", "serve"):
            return None
        return rest(command, project, data, tmp, **{"--data-root": str(tmp / "no-data")}), 1
    if case == "missing output directory":
        flag = {"compile": "--out", "backfill": "--out", "materialize": "--state", "serve": "--state"}.get(command)
        if flag is None:
            return None
        args = rest(command, project, data, tmp)
        return ([*args, flag, str(tmp / "no-dir" / "out.parquet")] if flag not in args
                else rest(command, project, data, tmp, **{flag: str(tmp / "no-dir" / "out.parquet")})), 1
    if case == "unreadable file":
        (project / "binary.feat").write_bytes(b"\xff\xfe\x00 entity")
        return rest(command, project, data, tmp), 1
    if case == "malformed file":
        if command in ("backfill", "parity"):  # a spine that is not Parquet
            (tmp / "bad.parquet").write_bytes(b"not parquet at all")
            return rest(command, project, data, tmp, **{"--spine": str(tmp / "bad.parquet")}), 1
        (project / "broken.feat").write_text("features broken v1 for user {\n    x: int64 = count(\n}\n")
        return rest(command, project, data, tmp), 1
    assert case == "changed logic under an old version"
    if command == "fmt":
        return None
    spend = project / "spend.feat"
    spend.write_text(spend.read_text().replace("sum(transactions.amount, 7d)", "sum(transactions.amount, 8d)", 1))
    return rest(command, project, data, tmp), 1


def assert_one_error(output: str, code: int, expected: int) -> None:
    assert "Traceback" not in output, output
    assert code == expected, output
    lines = [line for line in output.strip().splitlines() if not PROGRESS.match(line) and not line.startswith("note: ")]
    assert lines, output
    if DIAGNOSTIC.match(lines[0]):  # a project that does not compile: compile's located diagnostics
        assert re.fullmatch(r"\d+ error\(s\), \d+ warning\(s\)", lines[-1]), output
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), output


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_every_bad_input(command, case, project, data, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    found = case_args(command, case, project, data, tmp_path)
    if found is None:
        pytest.skip(f"`{case}` does not apply to `{command}`")
    args, expected = found
    r = CliRunner().invoke(cli, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), (r.exception, r.output)
    assert_one_error(r.output, r.exit_code, expected)
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "state").exists()


def astra(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_real_processes(project, data, tmp_path):
    """A few of the cases as real processes: the exit status a shell sees, stderr only."""
    r = astra(*rest("backfill", project, data, tmp_path, **{"--out": str(tmp_path / "no-dir" / "o.parquet")}),
              cwd=tmp_path)
    assert_one_error(r.stderr, r.returncode, 1)
    assert "no-dir" in r.stderr and "computed" not in r.stderr  # refused before any work
    r = astra("compile", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert_one_error(r.stderr, r.returncode, 1)
    r = astra("parity", "--allowed-lateness", "soon", cwd=tmp_path)
    assert_one_error(r.stderr, r.returncode, 2)


def test_fmt_check_outside_a_project_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("no features here\n")
    r = astra("fmt", "--check", cwd=tmp_path)
    assert_one_error(r.stderr, r.returncode, 1)
    assert "no project" in r.stderr


def test_compile_json_prints_an_empty_list_when_clean(project):
    r = astra("compile", str(project), "--format", "json", cwd=project.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_long_commands_report_each_stage_with_rows_and_seconds_when_not_a_tty(project, data, tmp_path):
    r = astra(*rest("backfill", project, data, tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    stages = r.stderr.strip().splitlines()
    assert len(stages) >= 3 and all(PROGRESS.match(line) for line in stages), r.stderr
    assert any(re.search(r"computed 50 rows \(\d+\.\d\d s\)", line) for line in stages), r.stderr


def test_materialize_reports_rows_per_group_and_defaults_the_data_root_to_the_project(project, data, tmp_path):
    for f in data.iterdir():
        shutil.copy(f, project / f.name)
    r = astra("materialize", str(project), "--state", str(tmp_path / "state"), cwd=tmp_path)  # no --data-root
    assert r.returncode == 0, r.stderr
    assert re.search(r"^user_spend@v1: [1-9]\d* rows loaded$", r.stdout, re.M), r.stdout
    assert re.search(r"^user_profile@v1: [1-9]\d* rows loaded$", r.stdout, re.M), r.stdout


def test_durations_are_written_as_in_the_language_in_every_flag(project, data, tmp_path):
    r = CliRunner().invoke(cli, [*rest("parity", project, data, tmp_path), "--allowed-lateness", "10m"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, [*rest("materialize", project, data, tmp_path), "--allowed-lateness", "1h"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("args", [["--bogus"], ["nosuch"], ["compile", "--format", "xml"], ["backfill", "--every"]])
def test_usage_errors_are_one_line_with_status_2(args):
    r = CliRunner().invoke(cli, args)
    assert_one_error(r.output, r.exit_code, 2)
    assert "--help" in r.output  # where to look next
