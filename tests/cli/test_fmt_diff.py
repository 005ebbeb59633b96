"""`astra fmt --diff`: the change fmt would make, as a unified diff a user can read or apply."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MESSY = '# a card holder  \nentity  user {\n  description "Kundé — ünïcode"\n  key user_id : int64\n}'


def astra(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_diff_shows_the_change_writes_nothing_and_exits_one(tmp_path: Path) -> None:
    (tmp_path / "user.feat").write_text(MESSY, encoding="utf-8")
    r = astra("fmt", "--diff", "user.feat", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert (tmp_path / "user.feat").read_text(encoding="utf-8") == MESSY  # nothing written
    lines = r.stdout.splitlines()
    assert lines[:2] == ["--- a/user.feat", "+++ b/user.feat"] and lines[2].startswith("@@ -1,")
    assert "-entity  user {" in lines and "+entity user {" in lines
    assert "+    key user_id: int64" in lines  # four-space indent, `name: type`
    assert "\\ No newline at end of file" in lines  # the original's missing final newline is shown


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch(1)")
@pytest.mark.parametrize("text", [MESSY, MESSY.replace("\n", "\r\n"),
                                  "# other line breaks: \u2028 \u2029 \x0c \x1c \x85 stay in the comment\n" + MESSY],
                         ids=["lf", "crlf", "unicode-line-separators"])
def test_the_diff_applies_to_exactly_what_fmt_writes(tmp_path: Path, text: str) -> None:
    """A diff line is a line of the file as patch reads it: only `\n` ends one (str.splitlines also
    breaks at U+2028, form feed and the like, which made a corrupt hunk)."""
    for d in ("patched", "formatted"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "user.feat").write_bytes(text.encode())
    diff = subprocess.run([sys.executable, "-m", "astra.cli.main", "fmt", "--diff", "user.feat"],
                          cwd=tmp_path / "patched", capture_output=True, timeout=120).stdout  # bytes: CRs kept
    subprocess.run(["patch", "-p1", "--quiet"], input=diff, cwd=tmp_path / "patched", check=True, timeout=30)
    assert astra("fmt", "user.feat", cwd=tmp_path / "formatted").returncode == 0
    assert (tmp_path / "patched" / "user.feat").read_bytes() == (tmp_path / "formatted" / "user.feat").read_bytes()
    r = astra("fmt", "--diff", "user.feat", cwd=tmp_path / "patched")
    assert (r.returncode, r.stdout) == (0, "")  # formatted: no diff, exit 0


def test_diff_over_a_directory_and_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "ok.feat").write_text("entity user {\n    key user_id: int64\n}\n")
    (tmp_path / "messy.feat").write_text(MESSY, encoding="utf-8")
    r = astra("fmt", "--diff", ".", cwd=tmp_path)
    assert r.returncode == 1 and "+++ b/messy.feat" in r.stdout and "ok.feat" not in r.stdout
    (tmp_path / "messy.feat").unlink()
    assert astra("fmt", "--diff", ".", cwd=tmp_path).returncode == 0
    (tmp_path / "broken.feat").write_text("entity {\n")
    r = astra("fmt", "--diff", ".", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == "" and "broken.feat" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch(1)")
def test_a_file_named_twice_is_diffed_once(tmp_path: Path) -> None:
    """`fmt --diff . user.feat` names user.feat twice (the directory holds it): one diff for it, else
    the second copy of the hunk makes the patch fail to apply."""
    (tmp_path / "user.feat").write_text(MESSY, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "astra.cli.main", "fmt", "--diff", ".", "user.feat", "./user.feat"],
                       cwd=tmp_path, capture_output=True, timeout=120)
    assert r.returncode == 1 and r.stdout.count(b"+++ ") == 1, r.stdout
    subprocess.run(["patch", "-p1", "--quiet", "--forward"], input=r.stdout, cwd=tmp_path, check=True, timeout=30)
    assert astra("fmt", "--check", "user.feat", cwd=tmp_path).returncode == 0
