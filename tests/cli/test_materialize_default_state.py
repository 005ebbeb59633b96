"""`astra materialize` with no --state writes build/serve, creating build/ when the project has
never been compiled; a --state the user names must have an existing parent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def astra(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_default_state_is_created_before_the_first_compile(project: Path, data: Path):
    home = project.parent
    assert not (home / "build").exists()
    done = astra("materialize", "features", "--data-root", str(data), cwd=home)
    assert done.returncode == 0, done.stderr
    assert any(p.name.startswith("snap-") for p in (home / "build" / "serve").iterdir())


def test_a_named_state_with_a_missing_parent_is_refused(project: Path, data: Path):
    home = project.parent
    done = astra("materialize", "features", "--data-root", str(data), "--state", "nowhere/state", cwd=home)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error:") and "nowhere" in done.stderr
    assert not (home / "nowhere").exists()
