"""`astra compile`, `fmt`, `explain`, `graph`: the commands that need only the compiler."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from astra.cli.common import ALLOW_UNLOCKED, PROJECT, fail, load, note, project_dir, writable_parent
from astra.compiler import Compilation, compile_project
from astra.diagnostics import Severity, render_all


def report(result: Compilation, fmt: str = "text") -> None:
    """Print diagnostics (stderr for text; stdout for JSON, `[]` when there are none) and notes."""
    if result.diagnostics or fmt == "json":
        click.echo(render_all(result.diagnostics, result.sources, fmt), err=fmt == "text")
    for text in result.notes:
        note(text)


@click.command("compile")
@PROJECT
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Diagnostics format.")
@click.option("--out", type=click.Path(path_type=Path), help="Plan file [default: PROJECT/build/plan.json].")
@click.option("--lock", "add_versions", is_flag=True, help="Add new group versions to astra.lock.")
@click.option("--locked", is_flag=True, help="Fail (exit 1) instead of changing astra.lock: for CI.")
@click.option("--online", is_flag=True,
              help="Also write each service's generated numpy plan to build/online/ (engines generate it on use).")
def compile_cmd(project: Path | None, fmt: str, out: Path | None, add_versions: bool, locked: bool,
                online: bool) -> None:
    """Parse and check PROJECT (default: ./features), enforce astra.lock and write the plan.

    Plain `compile` records metadata changes in astra.lock and says so; `--locked` refuses any
    change to it.  Exit status: 0 clean, 1 definition errors, 2 usage errors."""
    from astra.plan.artifact import plan_path, write_plan

    if add_versions and locked:
        fail("--lock adds versions to astra.lock and --locked forbids changing it: give one", 2)
    root = project_dir(project)
    if out is not None:
        writable_parent(out, "--out")
    result = compile_project(root, lock="update" if add_versions else "locked" if locked else "check")
    report(result, fmt)
    if not result.ok:
        sys.exit(1)
    target = out or plan_path(root)
    plan = result.plan
    try:
        write_plan(target, plan, result.sources)
        if online:
            from astra.online.codegen import compile_service
            from astra.plan.fit import bind_recorded, unfitted

            bound, notes = bind_recorded(plan, root)  # a transformed service runs with its pinned fit
            for text in notes:
                note(text)
            for svc in bound.services:
                if unfitted(bound, svc):
                    note(f"not writing {svc.id}: it applies fitted transforms and has no fit (run `astra fit`)")
                    continue
                code = target.parent / "online" / f"{svc.name}_v{svc.version}.py"
                code.parent.mkdir(parents=True, exist_ok=True)
                code.write_text(compile_service(bound, svc.name, svc.version).source_code)
    except OSError as err:  # an unwritable --out is the user's to fix: one line, no traceback
        click.echo(f"error: cannot write `{err.filename or target}`: {err.strerror or err}", err=True)
        sys.exit(1)
    if fmt == "text":
        warnings = sum(d.severity is Severity.WARNING for d in result.diagnostics)
        click.echo(f"compiled {len(plan.features)} features in {len(plan.groups)} groups, "
                   f"{len(plan.services)} services -> {target}" + (f" ({warnings} warnings)" if warnings else ""),
                   err=True)


@click.command("fmt")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Exit 1 if any file would change; write nothing.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print a unified diff of what would change on stdout; exit 1 if any, write nothing.")
def fmt_cmd(paths: tuple[Path, ...], check: bool, show_diff: bool) -> None:
    """Format .feat files (default: every .feat file under ./features).

    Exit status: 0 when every file is (or now is) formatted, 1 when --check or --diff finds a
    file to change or a file cannot be read or parsed."""
    from astra.diagnostics import CompileError
    from astra.lang.fmt import format_text

    files: dict[Path, Path] = {}  # by resolved path: a file named twice (`. user.feat`) is done once
    for p in paths or (project_dir(None),):
        if not p.exists():
            fail(f"no such file or directory: `{p}`")
        for f in sorted(p.rglob("*.feat")) if p.is_dir() else [p]:
            files.setdefault(f.resolve(), f)
    changed = failed = 0
    for f in files.values():
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            click.echo(f"error: cannot read `{f}`: {getattr(err, 'strerror', None) or err}", err=True)
            failed += 1
            continue
        try:
            new = format_text(text, str(f))
        except CompileError as err:
            from astra.source import SourceFile

            click.echo(render_all(err.diagnostics, {str(f): SourceFile(path=str(f), text=text)}), err=True)
            failed += 1
            continue
        if new != text:
            changed += 1
            if show_diff:  # against the bytes on disk (CRLF kept), to what fmt would write
                with f.open(encoding="utf-8", newline="") as raw:
                    click.echo(unified_diff(raw.read(), new, f), nl=False)
            if check or show_diff:
                if check:
                    click.echo(f"would reformat {f}", err=True)
                continue
            try:
                f.write_text(new, encoding="utf-8")
            except OSError as err:
                click.echo(f"error: cannot write `{f}`: {err.strerror or err}", err=True)
                failed += 1
                continue
            click.echo(f"reformatted {f}", err=True)
    if failed or ((check or show_diff) and changed):
        sys.exit(1)


def unified_diff(old: str, new: str, path: Path) -> str:
    """`diff -u` of a file's text and its formatted text, headed `a/PATH` and `b/PATH` as git
    prints them (so `git apply` and `patch -p1` take it); a text without a final newline says so."""
    import difflib

    def lines(text: str) -> list[str]:
        # only `\n` ends a line for patch: str.splitlines also breaks at U+2028, form feed, ...
        *out, last = text.split("\n")
        out = [line + "\n" for line in out]
        if last:
            out.append(last + "\n\\ No newline at end of file\n")
        return out

    name = path.as_posix().lstrip("/")  # `a//abs/path` would name no file for `patch -p1`
    return "".join(difflib.unified_diff(lines(old), lines(new), f"a/{name}", f"b/{name}"))


@click.command("explain")
@click.argument("name")
@PROJECT
@click.option("--project", "project_opt", type=click.Path(path_type=Path), hidden=True)
@ALLOW_UNLOCKED
def explain_cmd(name: str, project: Path | None, project_opt: Path | None, allow_unlocked: bool) -> None:
    """Explain feature NAME (`feature`, `group.feature` or `group@vN.feature`) of PROJECT
    (default: ./features): its resolved type, effective windows, dependencies and fingerprint.
    NAME may also be a vector index (`name`: every version, or `name@vN`): its source, column, metric,
    kind, filters and fingerprint."""
    from astra.plan.explain import explain, find_features, suggest
    from astra.plan.indexes import explain_index

    if project is not None and project_opt is not None:
        fail("give the project once: `astra explain NAME DIR`", 2)
    plan = load(project or project_opt, allow_unlocked).plan
    matches = find_features(plan, name)
    indexes = [x for x in plan.indexes or () if name in (x.name, x.id)]
    if indexes and not matches:
        click.echo("\n\n".join(explain_index(plan, x) for x in indexes))
        return
    if not matches:
        hint = suggest(plan, name)
        fail(f"no feature matches `{name}`" + (f"; {hint}" if hint else ""))
    click.echo("\n\n".join(explain(plan, f) for f in matches))


@click.command("graph")
@PROJECT
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot")
@click.option("--service", help="Only the features a service needs (name@vN).")
@ALLOW_UNLOCKED
def graph_cmd(project: Path | None, fmt: str, service: str | None, allow_unlocked: bool) -> None:
    """Print the feature dependency DAG of PROJECT (default: ./features), sources included, as DOT
    or Mermaid."""
    from astra.plan.graph import to_dot, to_mermaid
    from astra.project import ProjectError

    proj = load(project, allow_unlocked)
    features = proj.plan.features
    if service:
        try:
            svc = proj.service(service)
        except ProjectError as err:
            fail(str(err))
        features = proj.plan.closure(tuple(o.feature for o in svc.outputs))
    click.echo(to_dot(features) if fmt == "dot" else to_mermaid(features))
