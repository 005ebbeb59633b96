"""What every command shares: the project argument, loading it under the lock, one-line errors,
checks on paths made before any work, and progress (`Stages`, from `astra.cli.progress`).

Exit status, in every command: 0 done, 1 a user or data error (a project that does not compile,
a missing or unreadable file, bad data), 2 a usage error (a missing or malformed argument).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from astra.cli import progress
from astra.cli.progress import Stages  # noqa: F401  (re-exported: the commands report their stages through it)

PROJECT = click.argument("project", required=False, type=click.Path(path_type=Path))
ALLOW_UNLOCKED = click.option(
    "--allow-unlocked", is_flag=True,
    help="Development only: run versions whose logic differs from astra.lock instead of refusing them.")
DATA_ROOT = click.option(
    "--data-root", type=click.Path(path_type=Path),
    help="Where source paths are resolved [default: the project directory].")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (1: user or data error, 2: usage)."""
    progress.interrupt()
    click.echo(f"error: {' '.join(str(message).split()) if code == 2 else message}", err=True)
    sys.exit(code)


def note(message: str) -> None:
    if not progress.above(f"note: {message}"):
        click.echo(f"note: {message}", err=True)


def default_project(project: Path | None) -> Path:
    """The project to use: PROJECT if given, else ./features when it holds the .feat files, else
    the working directory when it holds some."""
    if project is not None:
        return project
    return Path("features") if Path("features").is_dir() and not list(Path(".").glob("*.feat")) else Path(".")


def project_dir(project: Path | None) -> Path:
    """The project directory (or file), checked: exit 1 when there is none."""
    root = default_project(project)
    if project is None and root == Path(".") and not list(root.glob("*.feat")):
        fail("no project here: give its directory (e.g. `features`), or run from a directory holding "
             ".feat files or a `features/` directory")
    if not root.exists():
        fail(f"no project at `{root}`: no such file or directory")
    return root


def load(project: Path | None, allow_unlocked: bool = False):
    """Load the project as the engines run it: under `astra.lock` (exit 1 with the located
    diagnostics when a released version's logic changed), with notes on stderr."""
    from astra.project import ProjectError, load_project

    root = project_dir(project)
    try:
        proj = load_project(root, allow_unlocked=allow_unlocked, escape="--allow-unlocked")
    except ProjectError as err:
        progress.interrupt()
        click.echo(str(err), err=True)
        sys.exit(1)
    for text in proj.notes:
        note(text)
    return proj


def resolve_data_root(given: Path | None, project: Path) -> Path:
    """The data root: `--data-root` if given, else the project directory; exit 1 unless it is a
    directory."""
    from astra.project import default_data_root

    root = given if given is not None else default_data_root(project)
    if not root.is_dir():
        fail(f"data root `{root}` is not a directory" + ("" if given is not None else
             " (the project directory is the default; give --data-root)"))
    return root


def readable_file(path: Path, what: str) -> Path:
    """Exit 1 unless `path` is a file this process can open."""
    if not path.is_file():
        fail(f"{what} `{path}`: no such file" if not path.exists() else f"{what} `{path}` is not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        fail(f"{what} `{path}`: cannot read it: {err.strerror or err}")
    return path


def output_file(path: Path, what: str = "--out") -> Path:
    """Exit 1 unless `path` can be written: its directory exists, its suffix names a table format."""
    from astra.io import table_format
    from astra.offline.errors import BackfillError

    try:
        table_format(path)
    except BackfillError as err:
        fail(str(err))
    writable_parent(path, what)
    if path.is_dir():
        fail(f"cannot write {what} `{path}`: it is a directory")
    return path


def writable_parent(path: Path, what: str) -> None:
    """Exit 1 unless the directory `path` goes into exists."""
    parent = path.parent
    if not parent.is_dir():
        fail(f"cannot write {what} `{path}`: " + (f"`{parent}` is not a directory" if parent.exists()
                                                  else f"directory `{parent}` does not exist"))
