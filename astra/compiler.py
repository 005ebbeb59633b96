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
from astra.plan.lock import LOCK_NAME, check_lock, read_lock, write_lock
from astra.source import SourceFile


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
        locked = read_lock(lock_path) or {"groups": {}}
        new, notes = check_lock(plan, locked, diags, add_new=lock == "update")
        if not diags.errors and (new != locked.get("groups") or not lock_path.exists()):
            write_lock(lock_path, new)
    return Compilation(plan, tuple(diags.items), sources, tuple(notes))
