"""Completion: what may be written at the cursor, read from the text before it (the file being
typed rarely parses) and from the project's declarations (the last analysis)."""

from __future__ import annotations

import re

from lsprotocol import types

from astra.lang.parser import DECL_KEYWORDS
from astra.lsp.documents import Analysis
from astra.lsp.operators import operators, signatures

K = types.CompletionItemKind
TYPES = ("bool", "int32", "int64", "float32", "float64", "string", "timestamp", "duration", "list<", "vector<")
_WORD = r"[A-Za-z_][A-Za-z0-9_]*"
_SELECT = re.compile(rf"({_WORD})@v([0-9]+)\.({_WORD})?$")
_VERSION = re.compile(rf"({_WORD})@(v?[0-9]*)$")
_DOTTED = re.compile(rf"({_WORD})\.({_WORD})?$")
_WHERE = re.compile(rf"({_WORD})(?:\.{_WORD})?\s+where\b[^,()]*?({_WORD})?$")
_FOR = re.compile(rf"^\s*(?:events|snapshot|features)\b[^{{]*\bfor\b[^{{]*?({_WORD})?$")
_TYPE = re.compile(rf"({_WORD})\s*:\s*[A-Za-z0-9_<>, ]*$")
_HEADER = re.compile(rf"^[ \t]*({'|'.join(DECL_KEYWORDS)})\b(?:\s+({_WORD}))?(?:\s+v([0-9]+))?", re.M)


def context(text: str, offset: int) -> tuple[str, str, int | None]:
    """The declaration the offset is inside: (keyword, name, version), ("", "", None) at the top level.

    Braces are counted outside strings and comments, so a half-typed body still counts as open."""
    depth, i, top = 0, 0, -1
    while i < offset:
        ch = text[i]
        if ch == "#":
            while i < offset and text[i] != "\n":
                i += 1
            continue
        if ch == '"':
            i += 1
            while i < offset and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
        elif ch == "{":
            if depth == 0:
                top = i
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        i += 1
    if depth == 0:
        return "", "", None
    headers = list(_HEADER.finditer(text, 0, top))
    if not headers:
        return "", "", None
    m = headers[-1]
    return m.group(1), m.group(2) or "", int(m.group(3)) if m.group(3) else None


def complete(analysis: Analysis | None, text: str, offset: int) -> list[types.CompletionItem]:
    """The completion items at `offset` of `text`."""
    # what matters is just before the cursor; a bound keeps the patterns linear on a huge line
    line = text[max(text.rfind("\n", 0, offset) + 1, offset - 200):offset]
    syms = analysis.syms if analysis is not None else None
    kind, name, version = context(text, offset)
    if syms is None:
        return _keywords(kind)
    if m := _SELECT.search(line):
        group = syms.groups.get((m.group(1), int(m.group(2))))
        items = [_item(f.name.value, K.Field, str(f.type.type), f.description or "") for f in group.features] \
            if group else []
        if kind == "service" and group:
            items.append(_item("*", K.Operator, "every feature, in declaration order"))
        return items
    if m := _VERSION.search(line):
        return [_item(f"v{v}", K.EnumMember, f"{m.group(1)}@v{v}") for v in syms.group_versions(m.group(1))]
    if m := _DOTTED.search(line):
        head = m.group(1)
        if head in syms.requests:
            return [_item(f.name.value, K.Field, str(f.type.type), f"field of request `{head}`")
                    for f in syms.requests[head].fields]
        if head in syms.sources:
            return _columns(syms, head)
        return []
    if kind == "" or (kind != "service" and _FOR.search(line)):
        if _FOR.search(line):
            return [_item(e, K.Class, "entity") for e in syms.entities]
        return _keywords(kind)
    if kind == "service":
        return _service_items(syms, line)
    if _TYPE.search(line) and "=" not in line:
        return [_item(t, K.TypeParameter, "type") for t in TYPES]
    if kind == "features":
        if (m := _WHERE.search(line)) and m.group(1) in syms.sources:
            return _columns(syms, m.group(1))
        return _expression_items(analysis, name, version)
    return _keywords(kind)


def _item(label: str, kind: K, detail: str = "", doc: str = "", insert: str | None = None,
          snippet: bool = False) -> types.CompletionItem:
    return types.CompletionItem(
        label=label, kind=kind, detail=detail or None,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc) if doc else None,
        insert_text=insert, insert_text_format=types.InsertTextFormat.Snippet if snippet else None)


def _columns(syms, source: str) -> list[types.CompletionItem]:
    bound = syms.sources[source]
    return [_item(c, K.Field, str(t), f"column of {bound.decl.kind} `{source}`") for c, t in bound.columns.items()]


def _service_items(syms, line: str) -> list[types.CompletionItem]:
    if re.search(rf"^\s*request\s+({_WORD})?$", line):
        return [_item(r, K.Interface, "request") for r in syms.requests]
    items = [_item(f"{g}@v{v}", K.Module, f"features {g} v{v} for {d.entity.value}", d.meta.description or "",
                   insert=f"{g}@v{v}.") for (g, v), d in syms.groups.items()]
    return items + [_item(w, K.Keyword) for w in ("request", "owner", "description", "tags", "as")]


def _expression_items(analysis: Analysis, group: str, version: int | None) -> list[types.CompletionItem]:
    syms = analysis.syms
    items = []
    decl = syms.groups.get((group, version)) if version is not None else None
    if decl is not None:
        items += [_item(f.name.value, K.Variable, str(f.type.type), f.description or "") for f in decl.features]
    items += [_item(s, K.Struct, f"{b.decl.kind} source") for s, b in syms.sources.items()]
    items += [_item(r, K.Interface, "request") for r in syms.requests]
    items += [_item(f"{g}@v{v}", K.Module, f"features {g} v{v} for {d.entity.value}", d.meta.description or "",
                    insert=f"{g}@v{v}.") for (g, v), d in syms.groups.items() if (g, v) != (group, version)]
    for sig in signatures().values():
        items.append(_item(sig.name, K.Function, sig.label, sig.doc, insert=f"{sig.name}($0)", snippet=True))
    for sig in operators().values():
        if sig.name.isidentifier():
            items.append(_item(sig.name, K.Operator, sig.label, sig.doc))
    items += [_item(w, K.Keyword) for w in ("then", "else", "where", "default", "description", "true", "false",
                                            "null")]
    return items


def _keywords(kind: str) -> list[types.CompletionItem]:
    words = {"": DECL_KEYWORDS, "entity": ("key", "owner", "description"),
             "events": ("path", "time", "max_staleness", "columns", "owner", "description"),
             "snapshot": ("path", "time", "columns", "owner", "description"),
             "request": ("owner", "description"),
             "features": ("owner", "description", "tags", "deprecated"),
             "service": ("request", "owner", "description", "tags")}.get(kind, ())
    return [_item(w, K.Keyword) for w in words]


def call_at(text: str, offset: int) -> tuple[str, int] | None:
    """The function whose argument list holds `offset`, and the index of the argument there
    (commas at that call's own depth before the cursor), or None outside any call."""
    depth, commas, i = 0, 0, offset - 1
    start = max(0, offset - 2000)  # a call spans a few lines at most
    while i >= start:
        ch = text[i]
        if ch in ")]":
            depth += 1
        elif ch in "([":
            if depth == 0:
                if ch == "[":
                    return None
                m = re.search(rf"({_WORD})\s*$", text[max(0, i - 100):i])
                return (m.group(1), commas) if m else None
            depth -= 1
        elif ch == "," and depth == 0:
            commas += 1
        elif ch in "{}":
            return None
        i -= 1
    return None
