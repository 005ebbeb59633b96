"""The outline of one file: its declarations, each with what it declares inside."""

from __future__ import annotations

from lsprotocol import types

from astra.lang import ast
from astra.lsp.positions import Lines

S = types.SymbolKind


def document_symbols(module: ast.Module, lines: Lines) -> list[types.DocumentSymbol]:
    """One symbol per declaration of `module`, with its keys, columns, fields, features or selections."""
    out = []
    for decl in module.decls:
        symbol = _decl(decl, lines)
        if symbol is not None:
            out.append(symbol)
    return out


def _symbol(name: str, kind: S, whole, at, lines: Lines, detail: str = "", children=()) -> types.DocumentSymbol:
    rng = lines.span_range(whole)
    pick = lines.span_range(at)
    if not (rng.start.line, rng.start.character) <= (pick.start.line, pick.start.character):
        rng = pick
    return types.DocumentSymbol(name=name, kind=kind, range=rng, selection_range=pick, detail=detail or None,
                                children=list(children) or None)


def _fields(fields: tuple[ast.Field, ...], lines: Lines, kind: S = S.Field) -> list[types.DocumentSymbol]:
    return [_symbol(f.name.value, kind, f.span, f.name.span, lines, str(f.type.type)) for f in fields]


def _decl(decl: ast.Decl, lines: Lines) -> types.DocumentSymbol | None:
    match decl:
        case ast.Entity():
            return _symbol(decl.name.value, S.Class, decl.span, decl.name.span, lines, "entity",
                           _fields(decl.keys, lines, S.Key))
        case ast.Source():
            return _symbol(decl.name.value, S.Struct, decl.span, decl.name.span, lines,
                           f"{decl.kind} for {', '.join(b.entity.value for b in decl.entities)}",
                           _fields(decl.columns, lines))
        case ast.Request():
            return _symbol(decl.name.value, S.Interface, decl.span, decl.name.span, lines, "request",
                           _fields(decl.fields, lines))
        case ast.Group():
            features = [_symbol(f.name.value, S.Property, f.span, f.name.span, lines, str(f.type.type))
                        for f in decl.features]
            return _symbol(f"{decl.name.value} v{decl.version}", S.Module, decl.span, decl.name.span, lines,
                           f"features for {decl.entity.value}", features)
        case ast.Service():
            selections = []
            for sel in decl.selections:
                written = f"{sel.group.value}@v{sel.version}." + (sel.feature.value if sel.feature else "*")
                shown = sel.alias.value if sel.alias else written
                selections.append(_symbol(shown, S.Field, sel.span, (sel.alias or sel.feature or sel.group).span,
                                          lines, written if sel.alias else ""))
            return _symbol(f"{decl.name.value} v{decl.version}", S.Object, decl.span, decl.name.span, lines,
                           "service", selections)
        case ast.Import():
            return _symbol(decl.path or "import", S.File, decl.span, decl.span, lines, "import")
    return None
