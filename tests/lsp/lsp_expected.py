"""The compiler's own diagnostics for a project (`astra.compiler.compile_project`), in the shape a
protocol client sees them: file relative to the project, code, severity, message (the help on a
second line), and a range in UTF-16 code units computed from the 1-based line and column."""

from __future__ import annotations

import shutil
from pathlib import Path

from lsp_session import utf16
from lsprotocol import types
from pygls.uris import to_fs_path

from astra.compiler import compile_project
from astra.diagnostics import Severity

SEVERITY = {Severity.ERROR: types.DiagnosticSeverity.Error, Severity.WARNING: types.DiagnosticSeverity.Warning}


def compiled(project: Path, edits: dict[str, str], work: Path, *, lock: str = "check", single: str = "") -> set[tuple]:
    """Compile a copy of `project` with `edits` (relative path -> text) written to disk; `single`
    compiles that one file of it as a single-file project."""
    copy = work / project.name  # same name: messages that name the directory agree
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(project, copy)
    for rel, text in edits.items():
        (copy / rel).write_text(text, encoding="utf-8")
    result = compile_project(copy / single if single else copy, lock=lock)
    out = set()
    for d in result.diagnostics:
        src = result.sources[d.span.file]
        rel = Path(src.origin).relative_to(copy.resolve()).as_posix()
        first = src.line_text(d.span.line)
        last = src.line_text(d.span.end_line)
        out.add((rel, d.code, SEVERITY[d.severity], d.message + (f"\nhelp: {d.help}" if d.help else ""),
                 d.span.line - 1, utf16(first[:d.span.col - 1]), d.span.end_line - 1, utf16(last[:d.span.end_col - 1])))
    return out


def pushed(project: Path, diagnostics: dict[str, list[types.Diagnostic]]) -> set[tuple]:
    """The diagnostics a client holds for the files of `project`, in the same shape."""
    out = set()
    for u, ds in diagnostics.items():
        path = Path(to_fs_path(u))
        try:
            rel = path.relative_to(project.resolve()).as_posix()
        except ValueError:
            continue
        for d in ds:
            r = d.range
            out.add((rel, d.code, d.severity, d.message, r.start.line, r.start.character, r.end.line, r.end.character))
    return out
