"""The compiler's diagnostics as protocol diagnostics: the same code, message, span, label,
notes and help, grouped by the file they point into."""

from __future__ import annotations

import functools
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path

from astra.diagnostics import Diagnostic, Severity
from astra.lsp.documents import Analysis
from astra.lsp.positions import Lines
from astra.source import NO_SPAN

SEVERITY = {Severity.ERROR: types.DiagnosticSeverity.Error, Severity.WARNING: types.DiagnosticSeverity.Warning,
            Severity.NOTE: types.DiagnosticSeverity.Information}


def uri_of(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


def message(d: Diagnostic) -> str:
    """The compiler's message, with its help on a second line as `astra compile` prints it."""
    return d.message + (f"\nhelp: {d.help}" if d.help else "")


def by_file(analysis: Analysis, fallback: Path | None, encoding: str) -> dict[Path, list[types.Diagnostic]]:
    """Every diagnostic of `analysis` as a protocol diagnostic, under the file it points into (every
    file of the project has an entry, empty when it is clean); one with no place in a file
    (`no .feat files`) goes to `fallback`."""
    out: dict[Path, list[types.Diagnostic]] = {p: [] for p in analysis.files}
    for d in analysis.diagnostics:
        path = analysis.path_of(d.span.file) if d.span is not NO_SPAN else None
        path = path or fallback
        if path is not None:
            out.setdefault(path, []).append(convert(d, analysis, encoding))
    return out


def lines_of(analysis: Analysis, path: Path | None, encoding: str) -> Lines:
    """The `Lines` of a file's text as the analysis read it (spans index into that text)."""
    src = analysis.files.get(path) if path is not None else None
    return cached_lines(src.text if src is not None else "", encoding)


@functools.lru_cache(maxsize=64)
def cached_lines(text: str, encoding: str) -> Lines:
    return Lines(text, encoding)


def convert(d: Diagnostic, analysis: Analysis, encoding: str) -> types.Diagnostic:
    """One diagnostic; its label and notes become related information, each at its own place."""
    here = analysis.path_of(d.span.file) if d.span is not NO_SPAN else None
    lines = lines_of(analysis, here, encoding)
    where = lines.span_range(d.span) if here is not None else lines.range(0, 0)
    related = []
    if d.label and here is not None:
        related.append(types.DiagnosticRelatedInformation(
            location=types.Location(uri=uri_of(here), range=where), message=d.label))
    for note in d.notes:
        path = analysis.path_of(note.span.file)
        if path is None:
            continue
        nlines = lines_of(analysis, path, encoding)
        related.append(types.DiagnosticRelatedInformation(
            location=types.Location(uri=uri_of(path), range=nlines.span_range(note.span)), message=note.message))
    return types.Diagnostic(range=where, message=message(d), severity=SEVERITY[d.severity], code=d.code,
                            source="astra", related_information=related or None,
                            data={"fix": bool(d.fix)})
