"""The compiler's machine-applicable hints as quick fixes, and formatting through `astra fmt`."""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types

from astra.diagnostics import CompileError, Diagnostic
from astra.lsp.documents import Analysis
from astra.lsp.report import convert, lines_of, uri_of
from astra.source import NO_SPAN


def title(d: Diagnostic) -> str:
    """The action's title: the help's first suggestion (the one the fix applies)."""
    first = re.split(r", or |; |\. ", d.help, maxsplit=1)[0].strip() if d.help else ""
    if first.startswith("did you mean "):
        return f"Change to `{d.fix[0].text}`"
    if first:
        return first[0].upper() + first[1:]
    return f"Fix {d.code}"


def code_actions(analysis: Analysis, path: Path, wanted: types.Range, encoding: str,
                 uri_of=uri_of) -> list[types.CodeAction]:
    """A quick fix for each diagnostic with a fix whose range meets `wanted` in the file at `path`
    (`uri_of(path)` names a file as the client does)."""
    display = analysis.display_of(path)
    out = []
    for d in analysis.diagnostics:
        if not d.fix or d.span is NO_SPAN or d.span.file != display:
            continue
        diag = convert(d, analysis, encoding)
        if not _meets(diag.range, wanted):
            continue
        edits: dict[str, list[types.TextEdit]] = {}
        for e in d.fix:
            target = analysis.path_of(e.span.file)
            if target is None:
                break
            lines = lines_of(analysis, target, encoding)
            edits.setdefault(uri_of(target), []).append(
                types.TextEdit(range=lines.range(e.span.start, e.span.end), new_text=e.text))
        else:
            out.append(types.CodeAction(title=title(d), kind=types.CodeActionKind.QuickFix, diagnostics=[diag],
                                        is_preferred=True, edit=types.WorkspaceEdit(changes=edits)))
    return out


def _meets(a: types.Range, b: types.Range) -> bool:
    def key(p: types.Position) -> tuple[int, int]:
        return p.line, p.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def format_edits(text: str, path: str, lines) -> tuple[list[types.TextEdit], str]:
    """The edit that formats `text` (none when it is formatted already), or no edit and the reason
    when it does not parse."""
    from astra.lang.fmt import format_text

    try:
        formatted = format_text(text, path)
    except CompileError as err:
        first = err.diagnostics[0] if err.diagnostics else None
        where = f" (line {first.span.line}: {first.message})" if first is not None and first.span is not NO_SPAN \
            else ""
        return [], f"not formatted: the file does not parse{where}"
    if formatted == text:
        return [], ""
    return [types.TextEdit(range=lines.whole(), new_text=formatted)], ""
