"""Every name of a project, where it is defined and where it is used, across files.

A name is identified by a key: ("entity", e), ("key", e, k), ("source", s), ("column", s, c),
("request", r), ("field", r, f), ("group", g, v), ("feature", g, v, f), ("service", s, v),
("function", f), ("import", directory, path).  Expressions are read the way the checker reads
them (`astra.lang.check`): a bare name is a feature of the group, else a source; `a.b` is a
request field when `a` is a request, else a source column; inside `where`, names are the
aggregated source's columns.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import attrs

from astra.lang import ast
from astra.lsp.documents import Analysis
from astra.source import NO_SPAN, Span

Key = tuple


@attrs.frozen
class Occurrence:
    """One written name: what it names, where, and whether it is that thing's definition."""

    key: Key
    span: Span
    definition: bool = False


@attrs.define
class Index:
    """The occurrences of a project, by display path and by key."""

    by_file: dict[str, list[Occurrence]] = attrs.Factory(lambda: defaultdict(list))
    by_key: dict[Key, list[Occurrence]] = attrs.Factory(lambda: defaultdict(list))

    def add(self, key: Key, span: Span, definition: bool = False) -> None:
        if span is NO_SPAN or span.file == NO_SPAN.file:
            return
        occ = Occurrence(key, span, definition)
        self.by_file[span.file].append(occ)
        self.by_key[key].append(occ)

    def at(self, file: str, offset: int) -> Occurrence | None:
        """The innermost occurrence under `offset` (a cursor just after a name counts)."""
        hits = [o for o in self.by_file.get(file, ()) if o.span.start <= offset <= o.span.end]
        return min(hits, key=lambda o: (o.span.end - o.span.start, -o.span.start), default=None)

    def definitions(self, key: Key) -> list[Occurrence]:
        return [o for o in self.by_key.get(key, ()) if o.definition]

    def references(self, key: Key, include_definition: bool = True) -> list[Occurrence]:
        return [o for o in self.by_key.get(key, ()) if include_definition or not o.definition]


def written(key: Key) -> str:
    """A key as the language writes the name: `user_spend@v1.tx_sum_7d`, `transactions.amount`."""
    kind, *parts = key
    if kind in ("group", "service"):
        return f"{parts[0]}@v{parts[1]}"
    if kind == "feature":
        return f"{parts[0]}@v{parts[1]}.{parts[2]}"
    return ".".join(str(p) for p in parts)


@functools.lru_cache(maxsize=8)
def index(analysis: Analysis) -> Index:
    """The index of an analysis (computed once per analysis)."""
    out = Index()
    for module in analysis.modules:
        for decl in module.decls:
            _decl(decl, analysis, out)
    return out


def _decl(decl: ast.Decl, analysis: Analysis, out: Index) -> None:
    match decl:
        case ast.Entity():
            e = decl.name.value
            out.add(("entity", e), decl.name.span, True)
            for k in decl.keys:
                out.add(("key", e, k.name.value), k.name.span, True)
        case ast.Source():
            s = decl.name.value
            out.add(("source", s), decl.name.span, True)
            listed = {c.name.value for c in decl.columns}
            for c in decl.columns:
                out.add(("column", s, c.name.value), c.name.span, True)
            # an unlisted time column is declared by the `time` clause itself
            out.add(("column", s, decl.time.value), decl.time.span, decl.time.value not in listed)
            for b in decl.entities:
                out.add(("entity", b.entity.value), b.entity.span)
                for m in b.mapping:
                    out.add(("key", b.entity.value, m.key.value), m.key.span)
                    out.add(("column", s, m.column.value), m.column.span)
        case ast.Request():
            r = decl.name.value
            out.add(("request", r), decl.name.span, True)
            for f in decl.fields:
                out.add(("field", r, f.name.value), f.name.span, True)
        case ast.Group():
            g, v = decl.name.value, decl.version
            out.add(("group", g, v), decl.name.span, True)
            out.add(("entity", decl.entity.value), decl.entity.span)
            local = {f.name.value for f in decl.features}
            for f in decl.features:
                out.add(("feature", g, v, f.name.value), f.name.span, True)
                _expr(f.expr, decl, local, None, analysis, out)
        case ast.Import():
            here = analysis.path_of(decl.span.file)
            if here is not None:
                out.add(("import", str(here.parent), decl.path), decl.span)
        case ast.Service():
            out.add(("service", decl.name.value, decl.version), decl.name.span, True)
            for r in decl.requests:
                out.add(("request", r.value), r.span)
            for sel in decl.selections:
                out.add(("group", sel.group.value, sel.version), sel.group.span)
                if sel.feature is not None:
                    out.add(("feature", sel.group.value, sel.version, sel.feature.value), sel.feature.span)


def _expr(e: ast.Expr, group: ast.Group, local: set[str], row: str | None, analysis: Analysis, out: Index) -> None:
    syms = analysis.syms
    match e:
        case ast.Ref(parts=parts):
            if row is not None:  # inside `where`: the aggregated source's columns
                if len(parts) == 2 and parts[0].value == row:
                    out.add(("source", row), parts[0].span)
                out.add(("column", row, parts[-1].value), parts[-1].span)
            elif len(parts) == 1:
                name = parts[0]
                if name.value in local or name.value not in syms.sources:
                    out.add(("feature", group.name.value, group.version, name.value), name.span)
                else:
                    out.add(("source", name.value), name.span)
            elif len(parts) == 2:
                head, field = parts
                if head.value in syms.requests:
                    out.add(("request", head.value), head.span)
                    out.add(("field", head.value, field.value), field.span)
                else:
                    out.add(("source", head.value), head.span)
                    out.add(("column", head.value, field.value), field.span)
        case ast.GroupRef():
            out.add(("group", e.group.value, e.version), e.group.span)
            out.add(("feature", e.group.value, e.version, e.feature.value), e.feature.span)
        case ast.Call():
            out.add(("function", e.func.value), e.func.span)
            for a in e.args:
                _expr(a, group, local, row, analysis, out)
            if e.where is not None:
                first = e.args[0] if e.args else None
                source = first.parts[0].value if isinstance(first, ast.Ref) else None
                _expr(e.where, group, local, source, analysis, out)
        case ast.Binary():
            _expr(e.left, group, local, row, analysis, out)
            _expr(e.right, group, local, row, analysis, out)
        case ast.Unary():
            _expr(e.operand, group, local, row, analysis, out)
        case ast.If():
            for part in (e.cond, e.then, e.else_):
                _expr(part, group, local, row, analysis, out)
        case ast.Cast():
            _expr(e.expr, group, local, row, analysis, out)
        case ast.ListLit():
            for item in e.items:
                _expr(item, group, local, row, analysis, out)


def enclosing(analysis: Analysis, file: str, offset: int) -> ast.Decl | None:
    """The declaration whose text holds `offset`."""
    for module in analysis.modules:
        for decl in module.decls:
            if decl.span.file == file and decl.span.start <= offset <= decl.span.end:
                return decl
    return None
