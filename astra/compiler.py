"""The pipeline from a project directory to a checked, fingerprinted plan.

    load_modules (parse, imports) -> resolve (symbols) -> build_plan (types, time, DAG,
    services, fingerprints) -> check_lock (versions)

Every stage reports into one `Collector` and the next stage still runs where it can, so one run
shows every error.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from astra.diagnostics import Collector, Diagnostic, Severity
from astra.lang.project import load_modules
from astra.lang.resolve import resolve
from astra.plan import ir
from astra.plan.build import build_plan
from astra.plan.lock import LOCK_NAME, LockFileError, check_lock, read_lock, write_lock
from astra.source import NO_SPAN, SourceFile


@attrs.frozen
class Compilation:
    """The outcome of compiling a project: the plan, every diagnostic, the sources read."""

    plan: ir.Plan | None
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, SourceFile]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


def compile_project(path: str | Path, *, lock: str = "check") -> Compilation:
    """Compile the project at `path`.

    lock: "check" compares with `astra.lock` (refusing changed logic, recording metadata changes),
    "update" also adds new versions, "ignore" skips it (engines loading a plan for a run).
    """
    root = Path(path)
    diags = Collector()
    if not root.exists():
        diags.error("E0110", f"no project at `{root}`: no such file or directory")
        return Compilation(None, tuple(diags.items), {})
    modules, sources = load_modules(root, diags)
    if not modules and not diags.errors:
        diags.error("E0110", f"no `.feat` files in `{root}`")
    syms = resolve(modules, diags)
    plan = build_plan(syms, diags)
    notes: list[str] = []
    if lock != "ignore" and not diags.errors:
        lock_path = (root if root.is_dir() else root.parent) / LOCK_NAME
        try:
            locked = read_lock(lock_path) or {"groups": {}}
        except LockFileError as err:
            _bad_lock(lock_path, err, diags, sources)
            return Compilation(plan, tuple(diags.items), sources)
        new, notes = check_lock(plan, locked, diags, add_new=lock == "update")
        if not diags.errors and (new != locked.get("groups") or not lock_path.exists()):
            try:
                write_lock(lock_path, new)
            except OSError as err:
                diags.error("E0110", f"cannot write `{lock_path}`: {err.strerror or err}",
                            help="the lock file records released versions; make its directory writable")
    return Compilation(plan, tuple(diags.items), sources, tuple(notes))


def _bad_lock(path: Path, err: LockFileError, diags: Collector, sources: dict[str, SourceFile]) -> None:
    """Report a malformed lock file at the place it goes wrong (its text joins `sources` to be shown)."""
    try:
        src = SourceFile.read(path, str(path))
    except (OSError, UnicodeDecodeError):
        src = None
    span = NO_SPAN
    if src is not None:
        sources[src.path] = src
        at = min(err.offset, len(src.text))
        span = src.span(at, at)
    diags.error("E0110", f"`{path.name}` is not a valid lock file: {err}", span,
                help="restore it from version control, or delete it and release every version again with "
                     "`astra compile --lock`")
