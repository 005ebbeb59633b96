"""The `.feat` text with every name linked to the page of what it names.

Links come from the declarations as parsed (every name keeps its span), resolved the way the
checker resolves them: a bare name in a group is a feature of that group or a source or request;
`a.b` is a source column or a request field; inside a `where` filter a bare name is a column of the
aggregated source.  Text between links is escaped; nothing the user wrote reaches the page raw.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from astra.catalog.model import Catalog
from astra.lang import ast

Link = tuple[int, int, str, str]  # start, end, url from the site root, title


def file_links(cat: Catalog, module_path: str) -> list[Link]:
    """Every linked name of one `.feat` file, in file order."""
    out: list[Link] = []
    for decl in _decls(cat, module_path):
        _decl_links(cat, decl, out)
    out.sort()
    kept, end = [], -1
    for link in out:  # spans never overlap in a well-formed file; be safe anyway
        if link[0] >= end:
            kept.append(link)
            end = link[1]
    return kept


def _decls(cat: Catalog, module_path: str):
    syms = cat.syms
    every = [*syms.entities.values(), *(b.decl for b in syms.sources.values()), *syms.requests.values(),
             *syms.groups.values(), *syms.services.values()]
    return [d for d in every if d.span.file == module_path]


def _add(out: list[Link], name: ast.Name, url: str | None, title: str) -> None:
    if url is not None and name.span.end > name.span.start:
        out.append((name.span.start, name.span.end, url, title))


def _decl_links(cat: Catalog, decl, out: list[Link]) -> None:
    match decl:
        case ast.Entity():
            _add(out, decl.name, cat.url("entity", decl.name.value), f"entity {decl.name.value}")
            for k in decl.keys:
                _add(out, k.name, cat.url("entity", decl.name.value, f"key-{k.name.value}"), "key")
        case ast.Request():
            _add(out, decl.name, cat.url("request", decl.name.value), f"request {decl.name.value}")
            for f in decl.fields:
                _add(out, f.name, cat.url("request", decl.name.value, f"field-{f.name.value}"), "request field")
        case ast.Source():
            src = decl.name.value
            _add(out, decl.name, cat.url("source", src), f"{decl.kind} {src}")
            for b in decl.entities:
                _add(out, b.entity, cat.url("entity", b.entity.value), f"entity {b.entity.value}")
                for m in b.mapping:
                    _add(out, m.column, cat.url("source", src, f"col-{m.column.value}"), "column")
            _add(out, decl.time, cat.url("source", src, f"col-{decl.time.value}"), "time column")
            for c in decl.columns:
                _add(out, c.name, cat.url("source", src, f"col-{c.name.value}"), "column")
        case ast.Group():
            gid = f"{decl.name.value}@v{decl.version}"
            _add(out, decl.name, cat.url("group", gid), f"features {gid}")
            _add(out, decl.entity, cat.url("entity", decl.entity.value), f"entity {decl.entity.value}")
            names = {f.name.value for f in decl.features}
            for f in decl.features:
                _add(out, f.name, cat.url("feature", f"{gid}.{f.name.value}"), f"feature {gid}.{f.name.value}")
                _expr_links(cat, f.expr, gid, names, None, out)
        case ast.Service():
            sid = f"{decl.name.value}@v{decl.version}"
            _add(out, decl.name, cat.url("service", sid), f"service {sid}")
            for r in decl.requests:
                _add(out, r, cat.url("request", r.value), f"request {r.value}")
            for s in decl.selections:
                gid = f"{s.group.value}@v{s.version}"
                _add(out, s.group, cat.url("group", gid), f"features {gid}")
                if s.feature is not None:
                    fid = f"{gid}.{s.feature.value}"
                    _add(out, s.feature, cat.url("feature", fid), f"feature {fid}")


def _expr_links(cat: Catalog, e, gid: str, names: set[str], where_source: str | None, out: list[Link]) -> None:
    match e:
        case ast.Ref(parts=parts):
            _ref_links(cat, parts, gid, names, where_source, out)
        case ast.GroupRef():
            ref = f"{e.group.value}@v{e.version}"
            _add(out, e.group, cat.url("group", ref), f"features {ref}")
            _add(out, e.feature, cat.url("feature", f"{ref}.{e.feature.value}"), f"feature {ref}.{e.feature.value}")
        case ast.Call():
            for a in e.args:
                _expr_links(cat, a, gid, names, where_source, out)
            if e.where is not None and e.args and isinstance(e.args[0], ast.Ref):
                _expr_links(cat, e.where, gid, names, e.args[0].parts[0].value, out)
        case ast.Binary():
            _expr_links(cat, e.left, gid, names, where_source, out)
            _expr_links(cat, e.right, gid, names, where_source, out)
        case ast.Unary():
            _expr_links(cat, e.operand, gid, names, where_source, out)
        case ast.If():
            for part in (e.cond, e.then, e.else_):
                _expr_links(cat, part, gid, names, where_source, out)
        case ast.Cast():
            _expr_links(cat, e.expr, gid, names, where_source, out)
        case ast.ListLit():
            for item in e.items:
                _expr_links(cat, item, gid, names, where_source, out)


def _ref_links(cat: Catalog, parts, gid: str, names: set[str], where_source: str | None, out: list[Link]) -> None:
    first = parts[0]
    if len(parts) == 1 and where_source is not None:
        _add(out, first, cat.url("source", where_source, f"col-{first.value}"), f"column of {where_source}")
    elif len(parts) == 1 and first.value in names:
        _add(out, first, cat.url("feature", f"{gid}.{first.value}"), f"feature {gid}.{first.value}")
    elif first.value in cat.syms.sources:
        _add(out, first, cat.url("source", first.value), f"source {first.value}")
        if len(parts) > 1:
            _add(out, parts[1], cat.url("source", first.value, f"col-{parts[1].value}"), "column")
    elif first.value in cat.syms.requests:
        _add(out, first, cat.url("request", first.value), f"request {first.value}")
        if len(parts) > 1:
            _add(out, parts[1], cat.url("request", first.value, f"field-{parts[1].value}"), "request field")


def highlight(cat: Catalog, module_path: str, first_line: int = 1, last_line: int | None = None,
              prefix: str = "../", line_anchors: bool = False, links: list[Link] | None = None) -> Markup:
    """Lines `first_line..last_line` of a file as escaped HTML with names linked, one `<span
    class="ln">` per line number.  `links` are the file's (`file_links`), when already known."""
    src = cat.sources[module_path]
    if links is None:
        links = file_links(cat, module_path)
    last = min(last_line or len(src.line_starts), len(src.line_starts))
    start = src.line_starts[first_line - 1]
    end = src.line_starts[last] if last < len(src.line_starts) else len(src.text)
    links = [link for link in links if start <= link[0] and link[1] <= end]
    body, at = [], start
    for s, e, url, title in links:
        body.append(escape(src.text[at:s]))
        body.append(Markup('<a href="{u}" title="{t}">{n}</a>').format(u=prefix + url, t=title, n=src.text[s:e]))
        at = e
    body.append(escape(src.text[at:end]))
    lines = Markup("").join(body).rstrip("\n").split("\n")
    out = []
    for i, line in enumerate(lines, first_line):
        line = line.removesuffix("\r")  # a file with CRLF line ends
        anchor = Markup(' id="L{0}"').format(i) if line_anchors else ""
        out.append(Markup('<span class="line"{a}><span class="ln">{i}</span>{t}</span>').format(
            a=anchor, i=i, t=Markup(line)))
    return Markup("").join(out)  # each line is a block: no newline between them
