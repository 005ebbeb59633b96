"""Diagnostics are data: passes append them to a collector and keep going; `render` prints them."""

from __future__ import annotations

import difflib
import enum
import json
from collections.abc import Iterable

import attrs

from astra.source import NO_SPAN, SourceFile, Span


class Severity(enum.Enum):
    """How bad a diagnostic is; only errors fail a compile."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@attrs.frozen(kw_only=True)
class Label:
    """A secondary span with a short message, e.g. "first defined here"."""

    span: Span
    message: str


@attrs.frozen(kw_only=True)
class Edit:
    """Replace the text under `span` with `text`; an empty span inserts at its start."""

    span: Span
    text: str


@attrs.frozen(kw_only=True)
class Diagnostic:
    """One finding: a code from `astra.codes`, a message, where, and how to fix it."""

    code: str
    message: str
    span: Span = NO_SPAN
    label: str = ""
    severity: Severity = Severity.ERROR
    notes: tuple[Label, ...] = ()
    help: str = ""
    # The help's first suggestion as edits to the source, applied together (`apply_fix`); empty
    # when the help names no single concrete change. Applied, the diagnostic goes away.
    fix: tuple[Edit, ...] = ()

    def to_json(self) -> dict:
        def loc(s: Span) -> dict:
            return {"file": s.file, "line": s.line, "col": s.col, "end_line": s.end_line, "end_col": s.end_col}

        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "location": loc(self.span) if self.span is not NO_SPAN else None,
            "label": self.label,
            "notes": [{"message": n.message, "location": loc(n.span)} for n in self.notes],
            "help": self.help,
            "fix": [{"location": loc(e.span), "replacement": e.text} for e in self.fix],
        }


class CompileError(Exception):
    """Raised when a stage cannot go on; carries every diagnostic collected so far."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__(f"{len(self.diagnostics)} diagnostic(s)")


@attrs.define
class Collector:
    """Accumulates diagnostics across passes; the one mutable thing a pass receives."""

    items: list[Diagnostic] = attrs.Factory(list)
    # Names of declarations lost to (or damaged by) a syntax error: errors `about` them are
    # follow-on errors of one already reported, and are dropped.
    uncertain: set[str] = attrs.Factory(set)

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def error(self, code: str, message: str, span: Span = NO_SPAN, *, label: str = "", help: str = "",
              notes: tuple[Label, ...] = (), about: tuple[str, ...] = (), fix: tuple[Edit, ...] = ()) -> None:
        """Report an error; `about` names the declarations it is about (`unknown entity x` is about
        `x`), so that it is dropped when one of them was lost to a syntax error."""
        if any(name in self.uncertain for name in about):
            return
        self.add(Diagnostic(code=code, message=message, span=span, label=label, help=help, notes=notes, fix=fix))

    def warning(self, code: str, message: str, span: Span = NO_SPAN, *, label: str = "", help: str = "",
                notes: tuple[Label, ...] = ()) -> None:
        self.add(Diagnostic(code=code, message=message, span=span, label=label, help=help, notes=notes,
                            severity=Severity.WARNING))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise CompileError(self.items)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to a misspelt `name`, or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A "did you mean `x`?" hint, or "" when nothing is close."""
    close = closest(name, candidates)
    return f"did you mean `{close}`?" if close else ""


def rename_fix(name: str, span: Span, candidates: Iterable[str]) -> tuple[Edit, ...]:
    """The fix of a `did_you_mean` hint: `span` (the misspelt name) replaced by the closest candidate."""
    close = closest(name, candidates)
    return (Edit(span=span, text=close),) if close else ()


def insert_at(span: Span, text: str, *, after: bool = False) -> Edit:
    """An edit inserting `text` just before `span` (or just after it)."""
    at = span.end if after else span.start
    line, col = (span.end_line, span.end_col) if after else (span.line, span.col)
    return Edit(span=Span(file=span.file, start=at, end=at, line=line, col=col, end_line=line, end_col=col),
                text=text)


def apply_fix(text: str, fix: Iterable[Edit]) -> str:
    """`text` (one file's source) with the edits of a fix applied."""
    for e in sorted(fix, key=lambda e: (e.span.start, e.span.end), reverse=True):
        text = text[:e.span.start] + e.text + text[e.span.end:]
    return text


def render(diagnostic: Diagnostic, sources: dict[str, SourceFile]) -> str:
    """rustc-style text: header, location, source line with a caret span, labels and help."""
    d = diagnostic
    where = f"{d.span}: " if d.span is not NO_SPAN else ""
    out = [f"{where}{d.severity.value}[{d.code}]: {d.message}"]
    src = sources.get(d.span.file)
    if d.span is not NO_SPAN and src is not None:
        out.extend(_snippet(src, d.span, d.label, primary=True)[1:])
    for note in d.notes:
        nsrc = sources.get(note.span.file)
        if nsrc is None:
            out.append(f"  = note: {note.message} ({note.span})")
        else:
            out.extend(_snippet(nsrc, note.span, note.message, primary=False))
    if d.help:
        out.append(f"  = help: {d.help}")
    return "\n".join(out)


def _snippet(src: SourceFile, span: Span, label: str, *, primary: bool) -> list[str]:
    gutter = len(str(span.line))
    text = src.line_text(span.line).expandtabs(1)
    # A span running past its first line is underlined to that line's end.
    end_col = span.end_col if span.end_line == span.line else len(text) + 1
    width = max(1, end_col - span.col)
    mark = ("^" if primary else "-") * width
    pad = " " * gutter
    return [
        f"{pad}--> {span}",
        f"{pad} |",
        f"{span.line} | {text}",
        f"{pad} | {' ' * (span.col - 1)}{mark}{(' ' + label) if label else ''}",
    ]


def render_all(diagnostics: Iterable[Diagnostic], sources: dict[str, SourceFile], fmt: str = "text") -> str:
    """Every diagnostic rendered (text) or serialised (json), with a closing count."""
    ds = list(diagnostics)
    if fmt == "json":
        return json.dumps([d.to_json() for d in ds], indent=2)
    parts = [render(d, sources) for d in ds]
    n_err = sum(d.severity is Severity.ERROR for d in ds)
    n_warn = sum(d.severity is Severity.WARNING for d in ds)
    if n_err or n_warn:
        parts.append(f"{n_err} error(s), {n_warn} warning(s)")
    return "\n\n".join(parts)
