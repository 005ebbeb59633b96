"""Open buffers over the disk, and one checked `Analysis` per project.

A file belongs to the project rooted at the nearest directory above it that holds `astra.lock`,
when that project reads it (directly or through an `import`).  Any other `.feat` file is checked
on its own, as `astra compile FILE` would: a single-file project with what it imports.  Unsaved
buffers take the place of the files on disk, for the file being edited and for every file it
imports or that imports it, so one edit re-checks the whole project.
"""

from __future__ import annotations

import functools
from pathlib import Path

import attrs

from astra.diagnostics import Collector, Diagnostic
from astra.lang import ast
from astra.lang.project import load_modules
from astra.lang.resolve import Symbols, resolve
from astra.plan import ir
from astra.plan.build import build_plan
from astra.plan.lock import LOCK_NAME, LockFileError, check_lock, read_lock
from astra.source import SourceFile


@attrs.frozen(eq=False)
class Analysis:
    """A project checked as `astra compile` checks it (the lock compared, never written)."""

    root: Path  # the project directory, or the file of a single-file project
    single: bool  # no `astra.lock` above: the file is checked on its own
    modules: tuple[ast.Module, ...]
    sources: dict[str, SourceFile]  # display path -> text, as in the compiler's diagnostics
    syms: Symbols
    plan: ir.Plan | None
    diagnostics: tuple[Diagnostic, ...]

    @functools.cached_property
    def files(self) -> dict[Path, SourceFile]:
        """Every file the project read, by its real path."""
        return {Path(s.origin): s for s in self.sources.values() if s.origin}

    def source_of(self, display: str) -> SourceFile | None:
        return self.sources.get(display)

    def path_of(self, display: str) -> Path | None:
        src = self.sources.get(display)
        return Path(src.origin) if src is not None and src.origin else None

    def display_of(self, path: Path) -> str | None:
        src = self.files.get(path)
        return src.path if src is not None else None


def project_root(path: Path) -> Path | None:
    """The nearest directory at or above `path`'s directory that holds `astra.lock`."""
    for folder in path.parents:
        try:
            if (folder / LOCK_NAME).is_file():
                return folder
        except OSError:
            return None
    return None


def reader(overlay: dict[Path, str]):
    """`load_modules`'s file reader: an open buffer's text where there is one, else the disk."""

    def read(path: Path, display: str) -> SourceFile:
        text = overlay.get(path)
        if text is None:
            return SourceFile.read(path, display)
        return SourceFile(path=display, text=text, origin=str(path))

    return read


def analyse(root: Path, overlay: dict[Path, str], *, single: bool = False) -> Analysis:
    """Check the project at `root` with the open buffers of `overlay` in place of their files: the
    stages of `astra compile` (parse, imports, names, types and time, lock) with the same
    diagnostics, except that the lock file is only compared, never written."""
    diags = Collector()
    if single and root not in overlay and not root.is_file():
        modules, sources = [], {}
    else:
        modules, sources = load_modules(root, diags, reader(overlay))
    if single and not modules and root in overlay and root not in {Path(s.origin) for s in sources.values()}:
        modules, sources = _buffer_alone(root, overlay, diags)  # deleted on disk, still open
    if not modules and not diags.errors:
        diags.error("E0110", f"no `.feat` files in `{root}`")
    syms = resolve(modules, diags)
    plan = build_plan(syms, diags)
    if not single and not diags.errors:
        _check_lock(root, plan, diags, sources)
    return Analysis(root=root, single=single, modules=tuple(modules), sources=sources, syms=syms, plan=plan,
                    diagnostics=tuple(diags.items))


def _buffer_alone(path: Path, overlay: dict[Path, str], diags: Collector,
                  ) -> tuple[list[ast.Module], dict[str, SourceFile]]:
    """A buffer whose file is gone from the disk, parsed by itself, with what it imports."""
    from astra.lang.parser import parse_partial
    from astra.lang.recover import keep_undamaged

    src = SourceFile(path=path.name, text=overlay[path], origin=str(path))
    parsed = parse_partial(src)
    for d in parsed.diagnostics:
        diags.add(d)
    module = parsed.module
    if parsed.diagnostics:
        module, lost = keep_undamaged(parsed, src)
        diags.uncertain |= lost
    modules, sources = ([module] if module is not None else []), {src.path: src}
    for imp in (d for d in (module.decls if module else ()) if isinstance(d, ast.Import)):
        try:
            target = (path.parent / imp.path).resolve()
            exists = target.exists()
        except (OSError, ValueError, RuntimeError):
            exists = False
        if not exists:
            diags.error("E0110", f"import `{imp.path[:80]}`: no such file or directory", imp.span,
                        label="imported here")
            continue
        more, more_sources = load_modules(target, diags, reader(overlay))
        known = {m.path for m in modules}
        modules += [m for m in more if m.path not in known]
        sources.update(more_sources)
    return modules, sources


def _check_lock(root: Path, plan: ir.Plan, diags: Collector, sources: dict[str, SourceFile]) -> None:
    """`astra compile`'s lock check (E0601 changed logic, E0602 unreleased version), read-only."""
    lock_path = (root if root.is_dir() else root.parent) / LOCK_NAME
    try:
        locked = read_lock(lock_path) or {"groups": {}}
    except LockFileError as err:
        from astra.compiler import _bad_lock

        _bad_lock(lock_path, err, diags, sources)
        return
    check_lock(plan, locked, diags, add_new=False)


KEEP_ANALYSES = 32


def _stamp(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@attrs.define
class Workspace:
    """The open buffers and the analyses made from them, recomputed only after a change (an edit,
    or a file of the project changed or deleted on disk)."""

    overlay: dict[Path, str] = attrs.Factory(dict)
    generation: int = 0
    _cache: dict[tuple[Path, bool], tuple[int, dict[Path, float | None], Analysis]] = attrs.Factory(dict)

    def set_text(self, path: Path, text: str | None) -> None:
        """Record an open buffer's new text (None: closed, the disk is the truth again)."""
        if text is None:
            self.overlay.pop(path, None)
        else:
            self.overlay[path] = text
        self.generation += 1

    def touch(self) -> None:
        """Something changed on disk: every analysis is stale."""
        self.generation += 1

    def analysis_for(self, path: Path) -> Analysis:
        """The analysis `path` belongs to: its project's, or its own as a single file."""
        root = project_root(path)
        if root is not None:
            project = self.analysis(root, single=False)
            if path in project.files:
                return project
        return self.analysis(path, single=True)

    def analysis(self, root: Path, *, single: bool) -> Analysis:
        cached = self._cache.get((root, single))
        if cached is not None:
            generation, stamps, found = cached
            if generation == self.generation and all(_stamp(p) == s for p, s in stamps.items()):
                return found
        found = analyse(root, self.overlay, single=single)
        stamps = {p: _stamp(p) for p in found.files if p not in self.overlay}
        self._cache.pop((root, single), None)
        self._cache[(root, single)] = (self.generation, stamps, found)
        while len(self._cache) > KEEP_ANALYSES:  # a long session opens many files: forget the oldest
            self._cache.pop(next(iter(self._cache)))
        return found
