"""AST back to text in the one canonical layout, keeping `#` comments.

The printer first lays the module out as lines, each remembering the span of the node it prints;
comments are then hung on those lines by position (inside a node or before it: above it; on the
line where a node ends: at the end of that line). Expressions get parentheses only where the
precedence of the grammar requires them, so `parse(format(m)) == m`.
"""

from __future__ import annotations

import attrs

from astra.lang import ast
from astra.source import NO_SPAN, SourceFile, Span
from astra.times import format_duration

INDENT = "    "

# Binding power of each expression form, lowest first; mirrors the levels of grammar/astra.lark.
_IF, _COALESCE, _OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _CAST, _ATOM = range(11)
_BINARY = {"??": _COALESCE, "or": _OR, "and": _AND, "+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "%": _MUL,
           **dict.fromkeys(("==", "!=", "<", "<=", ">", ">=", "in"), _CMP)}
# Weeks are read but printed as days: `7d` is how windows are named (`tx_count_7d`).
_ESCAPE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def format_module(module: ast.Module, source: SourceFile | None = None) -> str:
    """The canonical text of a module, with its comments put back.

    `source` is accepted for callers that have it; comments are placed from the spans the parser
    stored on the nodes, so it is not needed.
    """
    lines: list[_Line] = []
    for i, decl in enumerate(module.decls):
        block = _DECL[type(decl)](decl)
        # One blank line between declarations; consecutive imports stay together.
        block[0].blank_before = i > 0 and not (isinstance(decl, ast.Import) and lines[-1].text.startswith("import"))
        lines += block
    trailer = _attach(lines, module.comments)
    out: list[str] = []
    for line in _merge_empty_bodies(lines):
        out += [""] * line.blank_before
        pad = INDENT * (line.depth + line.closing)
        out += [pad + c for c in line.leading]
        out.append(INDENT * line.depth + line.text + "".join("  " + c for c in line.trailing))
    if trailer:
        out += [""] * bool(out) + trailer
    return "\n".join(out) + "\n" if out else ""


def format_text(text: str, path: str = "<string>") -> str:
    """Parse and re-print source text; raises `CompileError` if it does not parse."""
    from astra.lang.parser import parse

    source = SourceFile(path=path, text=text)
    return format_module(parse(source), source)


# --------------------------------------------------------------------------- layout


@attrs.define
class _Line:
    depth: int
    text: str
    span: Span | None  # what the line prints; None for lines no node stands for, like `columns {`
    closing: bool = False  # a body's `}`: comments above it sit one level deeper
    blank_before: bool = False
    leading: list[str] = attrs.Factory(list)
    trailing: list[str] = attrs.Factory(list)


def _anchor(span: Span) -> Span | None:
    return None if span == NO_SPAN else span


def _header(text: str, decl, name: ast.Name) -> _Line:
    # The header is anchored on `keyword name` only, so comments inside the body never land on it.
    return _Line(0, text, _anchor(decl.span) and _anchor(name.span) and decl.span.to(name.span))


def _closing(decl) -> _Line:
    span = _anchor(decl.span)
    if span is not None:
        span = attrs.evolve(span, start=span.end - 1, line=span.end_line, col=span.end_col - 1)
    return _Line(0, "}", span, closing=True)


def _meta_lines(meta: ast.Meta, depth: int = 1) -> list[_Line]:
    spans = dict(meta.item_spans)
    texts = [(key, _string(value)) for key, value in (("owner", meta.owner), ("description", meta.description))
             if value is not None]
    if meta.tags:
        texts.append(("tags", "[" + ", ".join(_string(t) for t in meta.tags) + "]"))
    if meta.deprecated is not None:
        texts.append(("deprecated", _string(meta.deprecated)))
    return [_Line(depth, f"{key} {text}", spans.get(key)) for key, text in texts]


def _body(decl, header: str, name: ast.Name, meta: ast.Meta, items: list[_Line]) -> list[_Line]:
    metas = _meta_lines(meta)
    if metas and items:
        items[0].blank_before = True
    return [_header(header, decl, name), *metas, *items, _closing(decl)]


def _field(field: ast.Field, depth: int = 1, prefix: str = "") -> _Line:
    return _Line(depth, f"{prefix}{field.name.value}: {field.type.type}", _anchor(field.span))


def _import(decl: ast.Import) -> list[_Line]:
    return [_Line(0, f"import {_string(decl.path)}", _anchor(decl.span))]


def _entity(decl: ast.Entity) -> list[_Line]:
    keys = [_field(k, prefix="key ") for k in decl.keys]
    return _body(decl, f"entity {decl.name.value} {{", decl.name, decl.meta, keys)


def _source(decl: ast.Source) -> list[_Line]:
    bindings = ", ".join(_binding(b) for b in decl.entities)
    items = [_Line(1, f"path {_string(decl.path)}", _anchor(decl.path_span)),
             _Line(1, f"time {decl.time.value}", _anchor(decl.time.span))]
    if decl.max_staleness is not None:
        items.append(_Line(1, f"max_staleness {_literal(decl.max_staleness)}", _anchor(decl.max_staleness.span)))
    items.append(_Line(1, "columns {", None))
    items += [_field(c, depth=2) for c in decl.columns]
    items.append(_Line(1, "}", None, closing=True))
    return _body(decl, f"{decl.kind} {decl.name.value} for {bindings} {{", decl.name, decl.meta, items)


def _binding(b: ast.Binding) -> str:
    if not b.mapping:
        return b.entity.value
    return b.entity.value + "(" + ", ".join(f"{m.key.value} = {m.column.value}" for m in b.mapping) + ")"


def _request(decl: ast.Request) -> list[_Line]:
    fields = [_field(f) for f in decl.fields]
    return _body(decl, f"request {decl.name.value} {{", decl.name, decl.meta, fields)


def _group(decl: ast.Group) -> list[_Line]:
    features = [_Line(1, _feature(f), _anchor(f.span)) for f in decl.features]
    header = f"features {decl.name.value} v{decl.version} for {decl.entity.value} {{"
    return _body(decl, header, decl.name, decl.meta, features)


def _feature(f: ast.Feature) -> str:
    text = f"{f.name.value}: {f.type.type} = {expr(f.expr)}"
    if f.default is not None:
        text += f" default {_literal(f.default)}"
    if f.description is not None:
        text += f" description {_string(f.description)}"
    return text


def _service(decl: ast.Service) -> list[_Line]:
    items = [_Line(1, f"request {r.value}", _anchor(r.span)) for r in decl.requests]
    for s in decl.selections:
        text = f"{s.group.value}@v{s.version}." + (s.feature.value if s.feature else "*")
        if s.alias is not None:
            text += f" as {s.alias.value}"
        items.append(_Line(1, text, _anchor(s.span)))
    return _body(decl, f"service {decl.name.value} v{decl.version} {{", decl.name, decl.meta, items)


def _experiment(decl: ast.Experiment) -> list[_Line]:
    items = []
    if decl.unit is not None:
        items.append(_Line(1, f"unit {decl.unit.value}", _anchor(decl.unit.span)))
    if decl.within is not None:
        items.append(_Line(1, f"within {decl.within[0].value}.{decl.within[1].value}", _anchor(decl.within[0].span)))
    if decl.layer is not None:
        bounds = f" {_percent(decl.slice[0])}-{_percent(decl.slice[1])}" if decl.slice else ""
        items.append(_Line(1, f"layer {decl.layer.value}{bounds}", _anchor(decl.layer.span)))
    if decl.salt is not None:
        items.append(_Line(1, f"salt {_string(decl.salt)}", None))
    arms = ", ".join(f"{a.name.value} {_percent(a.percent)}" for a in decl.arms)
    items.append(_Line(1, f"arms {{ {arms} }}" if arms else "arms {}", None))
    for word, value in (("holdout", decl.holdout), ("coverage", decl.coverage)):
        if value is not None:
            items.append(_Line(1, f"{word} {_percent(value)}", _anchor(value.span)))
    return _body(decl, f"experiment {decl.name.value} {{", decl.name, decl.meta, items)


def _vector_index(decl: ast.VectorIndex) -> list[_Line]:
    items = [_Line(1, f"{word} {value.value}", _anchor(value.span))
             for word, value in (("metric", decl.metric), ("kind", decl.kind)) if value is not None]
    if decl.filters:
        items.append(_Line(1, "filter " + ", ".join(f.value for f in decl.filters), _anchor(decl.filters[0].span)))
    items += [_Line(1, f"{name.value} {value}", _anchor(name.span)) for name, value in decl.settings]
    header = f"index {decl.name.value} v{decl.version} on {decl.source.value}.{decl.column.value} {{"
    return _body(decl, header, decl.name, decl.meta, items)


def _percent(lit: ast.Literal) -> str:
    value = float(lit.value)
    return f"{int(value)}%" if value.is_integer() and abs(value) < 1e15 else f"{value!r}%"


_DECL = {ast.Import: _import, ast.Entity: _entity, ast.Source: _source, ast.Request: _request,
         ast.Group: _group, ast.Service: _service, ast.Experiment: _experiment,
         ast.VectorIndex: _vector_index}


def _merge_empty_bodies(lines: list[_Line]) -> list[_Line]:
    """`request r {` directly followed by its `}` becomes `request r {}`."""
    out: list[_Line] = []
    for line in lines:
        prev = out[-1] if out else None
        if (line.closing and prev is not None and prev.text.endswith("{") and prev.depth == line.depth
                and not prev.trailing and not line.leading):
            out[-1] = attrs.evolve(prev, text=prev.text + "}", trailing=line.trailing)
        else:
            out.append(line)
    return out


# --------------------------------------------------------------------------- comments


def _attach(lines: list[_Line], comments: tuple[ast.Comment, ...]) -> list[str]:
    """Hang each comment on a line; return those that follow every node (the file's trailer)."""
    anchored = [ln for ln in lines if ln.span is not None]
    trailer = []
    for c in sorted(comments, key=lambda c: c.span.start):
        at = c.span.start
        inside = [ln for ln in anchored if not ln.closing and ln.span.start < at < ln.span.end]
        ends_here = [ln for ln in anchored if ln.span.end_line == c.span.line and ln.span.end <= at]
        after = [ln for ln in anchored if ln.span.start > at]
        if inside:
            max(inside, key=lambda ln: ln.span.start).leading.append(c.text)
        elif ends_here:
            max(ends_here, key=lambda ln: ln.span.end).trailing.append(c.text)
        elif after:
            min(after, key=lambda ln: ln.span.start).leading.append(c.text)
        else:
            trailer.append(c.text)
    return trailer


# --------------------------------------------------------------------------- expressions


def expr(e: ast.Expr, min_power: int = _IF) -> str:
    """An expression's canonical text, parenthesised if it binds looser than `min_power`."""
    power, text = _expr(e)
    return f"({text})" if power < min_power else text


def _expr(e: ast.Expr) -> tuple[int, str]:
    match e:
        case ast.Literal():
            return _ATOM, _literal(e)
        case ast.Ref():
            return _ATOM, e.dotted
        case ast.GroupRef():
            return _ATOM, f"{e.group.value}@v{e.version}.{e.feature.value}"
        case ast.Call():
            args = [expr(a) for a in e.args]
            if e.where is not None and args:
                args[0] += f" where {expr(e.where)}"
            return _ATOM, f"{e.func.value}({', '.join(args)})"
        case ast.ListLit():
            return _ATOM, "[" + ", ".join(expr(i) for i in e.items) + "]"
        case ast.Cast():
            return _CAST, f"{expr(e.expr, _CAST)} as {e.to.type}"
        case ast.Unary(op="-"):
            return _NEG, "-" + expr(e.operand, _NEG)
        case ast.Unary():
            return _NOT, f"{e.op} " + expr(e.operand, _NOT)
        case ast.Binary():
            power = _BINARY[e.op]
            # Left-associative levels need a tighter right operand, `??` a tighter left one,
            # and comparisons (non-associative) tighter operands on both sides.
            left = power + (power in (_COALESCE, _CMP))
            right = power + (power != _COALESCE)
            return power, f"{expr(e.left, left)} {e.op} {expr(e.right, right)}"
        case ast.If():
            return _IF, f"if {expr(e.cond)} then {expr(e.then)} else {expr(e.else_)}"
    raise TypeError(f"not an expression: {e!r}")


def _literal(lit: ast.Literal) -> str:
    match lit.kind:
        case "string":
            return _string(lit.value)
        case "bool":
            return "true" if lit.value else "false"
        case "null":
            return "null"
        case "float":
            return repr(float(lit.value))
        case "duration":
            return _duration(lit)
        case "window":
            return _window(lit.value)
    return str(lit.value)


def _window(value: tuple) -> str:
    kind, size, hop = value
    if kind == "hopping":
        return f"{format_duration(size)} every {format_duration(hop)}"
    return f"{kind} {format_duration(size)}"  # tumbling, session


def _duration(lit: ast.Literal) -> str:
    return format_duration(int(lit.value))  # astra.times: the one definition of the syntax


def _string(value: str) -> str:
    return '"' + "".join(_ESCAPE.get(ch, ch) for ch in value) + '"'
