"""`astra init NAME`: a new project that compiles, backfills and serves as it is.

The files come from the templates in `astra/scaffold/` (shipped in the wheel): a `*.tmpl` file
loses its suffix and has `{{name}}` replaced by the project's name (a `gitignore.tmpl` becomes
`.gitignore`); every other file is copied as it is.  The project is written into a temporary
directory beside NAME, compiled there (which writes `astra.lock`, releasing its versions) and
only then renamed to NAME, so a failure leaves nothing half made.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
from pathlib import Path

import click

from astra.cli.common import fail

SCAFFOLD = Path(__file__).resolve().parent.parent / "scaffold"
# A name that is safe as a directory, in Markdown and in a Python docstring, on every platform.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def check_name(name: str) -> str:
    """The project's name (the last part of the path given, the directory's own name for `.`),
    or exit 2 saying what a name is."""
    base = Path(name).name or Path(name).resolve().name
    if not NAME.fullmatch(base):
        named = f"`{name}`" if base == Path(name).name else f"`{name}` is `{base}`, which"  # `.`
        fail(f"{named} is not a project name: use a letter then letters, digits, `_` or `-` "
             "(at most 64), e.g. `shop_features`", 2)
    return base


def render(template: Path, name: str) -> tuple[str, bytes]:
    """A template file's path in the project and its content."""
    rel = template.relative_to(SCAFFOLD).as_posix()
    if not rel.endswith(".tmpl"):
        return rel, template.read_bytes()
    rel = rel.removesuffix(".tmpl")
    rel = "/".join("." + part if part == "gitignore" else part for part in rel.split("/"))
    return rel, template.read_text(encoding="utf-8").replace("{{name}}", name).encode()


def scaffold(target: Path, name: str) -> list[str]:
    """Write the project's files under `target` (an empty directory); the paths written."""
    written = []
    for template in sorted(p for p in SCAFFOLD.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel, content = render(template, name)
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(rel)
    return written


@click.command("init")
@click.argument("name")
def init_cmd(name: str) -> None:
    """Create the project NAME (a new or empty directory): an entity, an events source with a
    small sample data file, a feature group, a service, `astra.lock`, a README and a test.

    Run `astra compile`, `astra backfill`, `astra materialize` and `astra serve` in it as they are.
    Exit status: 1 when NAME exists and is not an empty directory, 2 for a NAME that is not a
    name (a letter, then letters, digits, `_` or `-`, 64 characters at most)."""
    from astra.compiler import compile_project
    from astra.diagnostics import render_all

    base = check_name(name)
    target = Path(name) if Path(name).name else Path(name).resolve()  # `.`: the working directory
    if target.exists() and not target.is_dir():
        fail(f"`{target}` exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        fail(f"`{target}` exists and is not empty: give a new name, or empty it first")
    if not target.parent.is_dir():
        fail(f"cannot create `{target}`: directory `{target.parent}` does not exist")
    if not SCAFFOLD.is_dir():
        fail(f"the project templates are missing from this installation ({SCAFFOLD})")
    work = None
    try:
        work = target.parent / f".{base}.{secrets.token_hex(4)}.astra-init"  # a new name: never someone's
        work.mkdir()  # (not mkdtemp: its mode 0700 would become the project's)
        written = scaffold(work, base)
        result = compile_project(work, lock="update")
        if not result.ok:  # the templates are tested; this is a broken installation
            click.echo(render_all(result.diagnostics, result.sources), err=True)
            fail("the new project does not compile; this installation of astra is damaged")
        if target.is_dir():
            target.rmdir()
        work.rename(target)
    except OSError as err:
        fail(f"cannot create `{target}`: {err.strerror or err}")
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    files = sorted({*written, "astra.lock"})
    click.echo(f"created {target}/: {', '.join(files)}")
    click.echo(f"next: cd {shlex.quote(str(target))} && astra compile && "
               "astra backfill --service churn_model@v1 --spine data/spine.csv --out build/training.csv "
               "(README.md has the rest: materialize, serve, the test)")
