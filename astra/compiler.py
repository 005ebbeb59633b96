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
from astra.plan.lock import LOCK_NAME, LockFileError, check_lock, read_lock, released, write_lock
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


def compile_project(path: str | Path, *, lock: str = "check", escape: str = "",
                    allow_unlocked: bool = False) -> Compilation:
    """Compile the project at `path`.

    lock: "check" compares with `astra.lock` (refusing changed logic and unreleased versions,
    recording metadata changes, with a note saying what it rewrote), "update" also adds new
    versions, "locked" refuses (E0603) any change to the lock file, "run" is for an engine about
    to run the plan: it refuses changed logic, notes unreleased versions and writes nothing;
    "ignore" skips the lock.  In "run" mode `escape` names the development escape hatch the E0601
    help offers (`--allow-unlocked`), and `allow_unlocked` takes it: changed logic is a note.
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
        new, notes = check_lock(plan, locked, diags, add_new=lock == "update",
                                run=(escape or "") if lock == "run" else None, allow_changed=allow_unlocked)
        stale = new != released(locked) or not lock_path.exists()
        if lock == "locked" and stale and not diags.errors:
            diags.error("E0603", f"`{LOCK_NAME}` is out of date and --locked forbids rewriting it"
                        + (f": {'; '.join(notes)}" if notes else f": `{lock_path}` does not exist"),
                        help=f"run `astra compile` and commit `{LOCK_NAME}`")
        elif lock in ("check", "update") and stale and not diags.errors:
            existed = lock_path.exists()
            try:
                write_lock(lock_path, new)
                notes.append(f"{'rewrote' if existed else 'wrote'} `{lock_path}`")
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
