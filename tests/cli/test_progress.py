"""Progress on stderr: a live display on a terminal (driven here through a real pseudo-terminal),
one line per stage elsewhere, and a one-line summary (rows, output, seconds) when a command ends
well, none when it fails."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")  # POSIX only

PROGRESS = re.compile(r"^(backfill|materialize|parity): .*\(\d+\.\d\d s\)$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 180) -> tuple[int, str]:
    """Run `astra ARGS` with stdin, stdout and stderr on a pseudo-terminal; (status, raw output)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "400", **(env or {})}  # long paths on one line
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, env=env, stdin=slave,
                            stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return status, b"".join(chunks).decode("utf-8", "replace")


def screen(raw: str) -> list[str]:
    """The non-blank lines a terminal shows after `raw`: a small emulator of what rich and the
    commands send (text, carriage return, line feed, cursor up/down/column, erase line); colours
    and other sequences change nothing visible here."""
    rows, row, col = [[]], 0, 0
    for m in re.finditer(r"\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|[^\x1b\r\n]", raw):
        token = m.group(0)
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
        elif m.group(2):
            n = int(m.group(1)) if m.group(1).isdigit() else 1
            if m.group(2) == "A":
                row = max(0, row - n)
            elif m.group(2) == "B":
                row += n
            elif m.group(2) == "G":
                col = n - 1
            elif m.group(2) == "K":
                while len(rows) <= row:
                    rows.append([])
                rows[row] = [] if m.group(1) == "2" else rows[row][:col]
            continue
        else:
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col - len(line)))
            line[col:col + 1] = [token]
            col += 1
            continue
        while len(rows) <= row:
            rows.append([])
    return [text for text in ("".join(r).rstrip() for r in rows) if text]


def piped(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**os.environ, **env})


def backfill_args(project: Path, data: Path, out: Path, service: str = "fraud_model@v1") -> list[str]:
    return ["backfill", str(project), "--service", service, "--spine", str(data / "spine.parquet"),
            "--data-root", str(data), "--out", str(out)]


def test_backfill_on_a_terminal_draws_a_bar_then_the_stages_and_a_summary(project, data, tmp_path) -> None:
    import polars as pl

    out = tmp_path / "training.parquet"
    spine_columns = pl.read_parquet(data / "spine.parquet").width
    status, raw = on_terminal(backfill_args(project, data, out), tmp_path)
    assert status == 0, raw
    assert out.is_file()
    assert "━" in raw and re.search(r"\d/4\S* stages", ANSI.sub("", raw)), raw  # the bar, over 4 stages
    lines = screen(raw)
    done = [line for line in lines if line.startswith("✓ ")]
    assert [re.sub(r" \(\d+\.\d\d s\)$", "", line) for line in done] == [
        "✓ loaded the project", "✓ read the spine: 50 rows", "✓ computed 50 rows",
        f"✓ wrote {spine_columns + 22} columns to {out}: 50 rows"]  # the spine's and fraud_model@v1's 22
    assert re.fullmatch(rf"backfill: all done: 50 rows -> {re.escape(str(out))} \(\d+\.\d\d s\)", lines[-1]), lines
    assert not any(line.startswith("backfill: computed") for line in lines)  # no plain lines on a terminal
    assert not any("━" in line for line in lines)  # the bar was drawn, then taken away


def test_materialize_on_a_terminal_prints_its_results_after_the_bar(project, data, tmp_path) -> None:
    state = tmp_path / "state"
    status, raw = on_terminal(["materialize", str(project), "--data-root", str(data), "--state", str(state)],
                              tmp_path)
    assert status == 0, raw
    lines = screen(raw)
    results = [i for i, line in enumerate(lines) if line.startswith("materialized ")]
    assert len(results) == 1, lines
    assert any(line.startswith("user_spend@v1: ") for line in lines)  # the per-group lines, whole
    assert not any("━" in line for line in lines)
    assert re.fullmatch(rf"materialize: all done: [\d,]+ rows -> {re.escape(str(state))} \(\d+\.\d\d s\)", lines[-1])


def test_a_failure_on_a_terminal_ends_with_its_error_and_no_summary(project, data, tmp_path) -> None:
    status, raw = on_terminal(backfill_args(project, data, tmp_path / "o.parquet", "fraud_model@v9"), tmp_path)
    lines = screen(raw)
    assert status == 1 and "Traceback" not in raw
    assert lines[-1].startswith("error: ") and "v9" in lines[-1], lines
    assert not any("all done" in line for line in lines)


def test_lines_can_be_asked_for_on_a_terminal(project, data, tmp_path) -> None:
    status, raw = on_terminal(backfill_args(project, data, tmp_path / "o.parquet"), tmp_path,
                              env={"ASTRA_PROGRESS": "lines"})
    assert status == 0, raw
    assert "━" not in raw and "\x1b[" not in raw
    lines = screen(raw)
    assert all(PROGRESS.match(line) for line in lines), lines


def test_not_on_a_terminal_one_line_per_stage_and_the_summary_last(project, data, tmp_path) -> None:
    out = tmp_path / "o.csv"
    r = piped(backfill_args(project, data, out), tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 5 and all(PROGRESS.match(line) for line in lines), lines
    assert "\x1b[" not in r.stderr
    assert re.fullmatch(rf"backfill: all done: 50 rows -> {re.escape(str(out))} \(\d+\.\d\d s\)", lines[-1])
    r = piped(["parity", str(project), "--service", "fraud_model@v1", "--spine", str(data / "spine.parquet"),
               "--data-root", str(data)], tmp_path)
    assert r.returncode == 0, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"parity: all done: [\d,]+ rows \(\d+\.\d\d s\)", last), last  # no output file
    r = piped(backfill_args(project, data, tmp_path / "x.parquet", "nosuch@v1"), tmp_path)
    assert r.returncode == 1 and "all done" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith("error:")


def test_stages_outside_a_command_report_and_never_summarise(capsys) -> None:
    from astra.cli.progress import Stages

    stages = Stages("backfill")
    stages.done("computed", 1234)
    err = capsys.readouterr().err
    assert re.fullmatch(r"backfill: computed 1,234 rows \(\d+\.\d\d s\)\n", err), err
    assert stages.summary().startswith("backfill: all done: 1,234 rows (")


def test_anything_else_written_mid_run_takes_the_bar_away_first(tmp_path) -> None:
    """`astra docs` echoes a project's diagnostics itself: they must not be drawn into the bar."""
    (tmp_path / "broken.feat").write_text("entity user {\n    key user_id: int64\n}\nfeatures f v1 for user {\n")
    status, raw = on_terminal(["docs", str(tmp_path / "broken.feat"), "--out", str(tmp_path / "site")], tmp_path)
    lines = screen(raw)
    assert status == 1 and "Traceback" not in raw, raw
    assert any("error[E" in line for line in lines), lines
    assert not any("━" in line for line in lines), lines  # the bar is gone, not mixed into the error
    assert not any("all done" in line for line in lines)


def test_docs_ends_with_the_pages_it_wrote(tmp_path) -> None:
    """docs/cli.md: a command that ends well ends with a summary of what it made and where it went;
    for `astra docs` that is the pages written (it computes no rows), not a count of its stages."""
    (tmp_path / "user.feat").write_text("entity user {\n    key user_id: int64\n}\n")
    out = tmp_path / "site"
    r = piped(["docs", str(tmp_path / "user.feat"), "--out", str(out), "--no-stats"], tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    pages = len(list(out.rglob("*.html")))
    assert re.fullmatch(rf"docs: wrote {re.escape(str(out))}/index.html: {pages} pages \(\d+\.\d\d s\)", lines[-2])
    assert re.fullmatch(rf"docs: all done: {pages} pages -> {re.escape(str(out))} \(\d+\.\d\d s\)", lines[-1])
