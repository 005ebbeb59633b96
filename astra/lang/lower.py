"""Lark parse tree to AST: build the nodes of `astra.lang.ast`, with spans, and check what the
grammar leaves open (type names, number ranges, string escapes, reserved words, duplicate or
missing items). Problems become diagnostics; lowering always finishes so all are reported.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import lark
from lark import Token, Transformer, v_args

from astra.diagnostics import Collector, Diagnostic, Edit, Label, did_you_mean, insert_at, rename_fix
from astra.lang import ast
from astra.lang.types import SCALARS, Type
from astra.source import NO_SPAN, SourceFile, Span
from astra.times import DurationError, parse_duration

KEYWORDS = frozenset((
    "entity", "events", "snapshot", "request", "features", "service", "for", "key", "path", "time", "columns",
    "max_staleness", "owner", "description", "tags", "deprecated", "import", "default", "where", "if", "then",
    "else", "and", "or", "not", "in", "as", "true", "false", "null", "experiment",
))

INT64_MAX = 2**63 - 1
MAX_VECTOR = 2**20
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|(#[^\n]*)')


class _Item(NamedTuple):
    """A clause of a declaration body before it is sorted into its node's fields."""

    key: str
    value: Any
    span: Span


class _Setting(NamedTuple):
    """An index setting (`ef_search 128`): key is its name, value (name, number)."""

    key: str
    value: Any
    span: Span


class _FirstArg(NamedTuple):
    expr: ast.Expr
    where: ast.Expr | None


def lower_module(tree: lark.Tree, source: SourceFile) -> tuple[ast.Module, list[Diagnostic]]:
    """The Module for a parse tree of `source`, and the diagnostics found while building it."""
    lowering = _Lower(source)
    decls = lowering.transform(tree)
    module = ast.Module(path=source.path, decls=decls, comments=comments(source),
                        span=source.span(0, len(source.text)))
    return module, lowering.diags.items


def comments(source: SourceFile) -> tuple[ast.Comment, ...]:
    """Every `# ...` comment of a file that parsed, skipping `#` inside strings."""
    return tuple(ast.Comment(text=m.group(1).rstrip(), span=source.span(m.start(1), m.end(1)))
                 for m in _COMMENT.finditer(source.text) if m.group(1))


@v_args(meta=True)
class _Lower(Transformer):
    """One method per grammar rule; each receives the rule's Lark meta and lowered children."""

    def __init__(self, source: SourceFile):
        super().__init__(visit_tokens=False)
        self.src = source
        self.diags = Collector()

    # -- helpers ---------------------------------------------------------------------
    def _span(self, meta) -> Span:
        return self.src.span(meta.start_pos, meta.end_pos) if not meta.empty else NO_SPAN

    def _tspan(self, tok: Token) -> Span:
        return self.src.span(tok.start_pos, tok.end_pos)

    def _name(self, tok: Token) -> ast.Name:
        span = self._tspan(tok)
        if tok.value in KEYWORDS:
            self.diags.error("E0011", f"`{tok.value}` is a keyword and cannot be used as a name", span,
                             label="reserved word", help=f"choose another name, e.g. `{tok.value}_`",
                             fix=(Edit(span=span, text=f"{tok.value}_"),))
        return ast.Name(value=tok.value, span=span)

    def _digits(self, tok: Token, digits: str, limit: int, what: str) -> int:
        # Python refuses int() of very long digit strings; the length test comes first.
        value = int(digits) if len(digits) <= len(str(limit)) else limit + 1
        if value > limit:
            self.diags.error("E0008", f"{what} `{tok.value[:24]}` is out of range", self._tspan(tok),
                             help=f"the largest allowed value is {limit}")
            return 0
        return value

    def _version(self, tok: Token) -> int:
        return self._digits(tok, tok.value[1:], 999_999_999, "version")

    def _string(self, tok: Token) -> str:
        out, body, i = [], tok.value[1:-1], 0
        while i < len(body):
            ch = body[i]
            if ch == "\\":
                esc = body[i + 1]
                if esc not in _ESCAPES:
                    start = tok.start_pos + 1 + i
                    self.diags.error("E0009", f"unknown escape sequence `\\{esc}`",
                                     self.src.span(start, start + 2),
                                     help='the escapes are \\" \\\\ \\n \\t and \\r')
                out.append(_ESCAPES.get(esc, esc))
                i += 2
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    def _meta(self, items: list, *, deprecable: bool = False) -> ast.Meta:
        """Collect metadata items, reporting duplicates and misplaced `deprecated`."""
        found: dict[str, _Item] = {}
        for item in items:
            if not isinstance(item, _Item) or item.key not in ("owner", "description", "tags", "deprecated"):
                continue
            if item.key == "deprecated" and not deprecable:
                self.diags.error("E0013", "only feature groups can be `deprecated`", item.span,
                                 help="describe the status in `description` instead")
            self._once(found, item)
        if not found:
            return ast.Meta()
        spans = [i.span for i in found.values()]
        span = min(spans, key=lambda s: s.start).to(max(spans, key=lambda s: s.end))
        return ast.Meta(owner=_value(found, "owner"), description=_value(found, "description"),
                        tags=_value(found, "tags") or (), deprecated=_value(found, "deprecated"), span=span,
                        item_spans=tuple((i.key, i.span) for i in found.values()))

    def _once(self, found: dict[str, _Item], item: _Item) -> None:
        first = found.get(item.key)
        if first is None:
            found[item.key] = item
            return
        self.diags.add(Diagnostic(code="E0010", message=f"`{item.key}` is given more than once", span=item.span,
                                  label="given again here", notes=(Label(span=first.span, message="first given here"),),
                                  help="keep one of them", fix=(Edit(span=item.span, text=""),)))

    def _require(self, found: dict, keys: tuple[str, ...], what: str, name: ast.Name,
                 items: tuple[_Item, ...] = ()) -> None:
        missing = [k for k in keys if k not in found]
        if missing:
            listed = ", ".join(f"`{k}`" for k in missing)
            help, fix = _REQUIRED_HELP[missing[0]], ()
            if missing == ["time"] and items:  # a `time` line before the first clause
                stamps = [f.name.value for f in _value(found, "columns") or () if f.type.type.name == "timestamp"]
                time = stamps[0] if stamps else "ts"
                first = min(items, key=lambda i: i.span.start).span
                help = f"name the event-time column, e.g. `time {time}`"
                fix = (insert_at(first, f"time {time}\n{' ' * (first.col - 1)}"),)
            self.diags.error("E0012", f"{what} `{name.value}` has no {listed}", name.span, help=help, fix=fix)

    # -- declarations ----------------------------------------------------------------
    def start(self, meta, children):
        return tuple(children)

    def import_decl(self, meta, children):
        return ast.Import(path=self._string(children[0]), span=self._span(meta))

    def entity(self, meta, children):
        name, items = self._name(children[0]), children[1:]
        keys = tuple(i for i in items if isinstance(i, ast.Field))
        if not keys:
            self._require({}, ("key",), "entity", name)
        return ast.Entity(name=name, keys=keys, meta=self._meta(items), span=self._span(meta))

    def key(self, meta, children):
        return children[0]

    def source(self, meta, children):
        kind, name = children[0].value, self._name(children[1])
        bindings = tuple(c for c in children[2:] if isinstance(c, ast.Binding))
        items = [c for c in children[2:] if isinstance(c, _Item)]
        found: dict[str, _Item] = {}
        for item in items:
            if item.key in ("path", "time", "columns", "max_staleness"):
                self._once(found, item)
        self._require(found, ("path", "time", "columns"), f"{kind} source", name, tuple(items))
        path = found.get("path")
        staleness = found.get("max_staleness")
        return ast.Source(kind=kind, name=name, entities=bindings, path=path.value if path else "",
                          time=_value(found, "time") or ast.Name(value=""),
                          columns=_value(found, "columns") or (),
                          max_staleness=staleness.value if staleness else None, meta=self._meta(items),
                          span=self._span(meta), path_span=path.span if path else NO_SPAN)

    def binding(self, meta, children):
        return ast.Binding(entity=self._name(children[0]), mapping=tuple(children[1:]), span=self._span(meta))

    def key_map(self, meta, children):
        return ast.KeyMap(key=self._name(children[0]), column=self._name(children[1]), span=self._span(meta))

    def path(self, meta, children):
        return _Item("path", self._string(children[0]), self._span(meta))

    def time(self, meta, children):
        return _Item("time", self._name(children[0]), self._span(meta))

    def columns(self, meta, children):
        return _Item("columns", tuple(children), self._span(meta))

    def max_staleness(self, meta, children):
        return _Item("max_staleness", self._duration(children[0]), self._span(meta))

    def field(self, meta, children):
        return ast.Field(name=self._name(children[0]), type=children[1], span=self._span(meta))

    def request(self, meta, children):
        items = children[1:]
        return ast.Request(name=self._name(children[0]), fields=tuple(i for i in items if isinstance(i, ast.Field)),
                           meta=self._meta(items), span=self._span(meta))

    def group(self, meta, children):
        name, version, entity, items = children[0], children[1], children[2], children[3:]
        return ast.Group(name=self._name(name), version=self._version(version), entity=self._name(entity),
                         features=tuple(i for i in items if isinstance(i, ast.Feature)),
                         meta=self._meta(items, deprecable=True), span=self._span(meta))

    def feature(self, meta, children):
        name, typ, expr, options = children[0], children[1], children[2], children[3:]
        found: dict[str, _Item] = {}
        for option in options:
            self._once(found, option)
        default = found.get("default")
        return ast.Feature(name=self._name(name), type=typ, expr=expr, default=default.value if default else None,
                           description=_value(found, "description"), span=self._span(meta))

    def default(self, meta, children):
        return _Item("default", children[0], self._span(meta))

    def negative(self, meta, children):
        lit = self._number(children[0])
        return ast.Literal(kind=lit.kind, value=-lit.value, text="-" + lit.text, span=self._span(meta))

    def feature_description(self, meta, children):
        return _Item("description", self._string(children[0]), self._span(meta))

    def service(self, meta, children):
        items = children[2:]
        return ast.Service(name=self._name(children[0]), version=self._version(children[1]),
                           requests=tuple(i.value for i in items if isinstance(i, _Item) and i.key == "request"),
                           selections=tuple(i for i in items if isinstance(i, ast.Selection)),
                           meta=self._meta(items), span=self._span(meta))

    def service_request(self, meta, children):
        return _Item("request", self._name(children[0]), self._span(meta))

    def select_all(self, meta, children):
        return ast.Selection(group=self._name(children[0]), version=self._version(children[1]), feature=None,
                             span=self._span(meta))

    def select_one(self, meta, children):
        alias = self._name(children[3]) if len(children) > 3 else None
        return ast.Selection(group=self._name(children[0]), version=self._version(children[1]),
                             feature=self._name(children[2]), alias=alias, span=self._span(meta))

    def experiment(self, meta, children):
        name, items = self._name(children[0]), children[1:]
        found: dict[str, _Item] = {}
        for item in items:
            if isinstance(item, _Item) and item.key in _EXPERIMENT_ITEMS:
                self._once(found, item)
        self._require(found, ("unit", "layer", "salt", "arms"), "experiment", name)
        layer = found.get("layer")
        return ast.Experiment(name=name, unit=_value(found, "unit"), layer=layer.value[0] if layer else None,
                              slice=layer.value[1] if layer else None, salt=_value(found, "salt"),
                              arms=_value(found, "arms") or (), holdout=_value(found, "holdout"),
                              coverage=_value(found, "coverage"), within=_value(found, "within"),
                              meta=self._meta(items), span=self._span(meta))

    def vector_index(self, meta, children):
        found: dict[str, _Item] = {}
        settings: dict[str, _Item] = {}
        for item in children[4:]:
            if isinstance(item, _Item) and item.key in ("metric", "kind", "filter"):
                self._once(found, item)
            elif isinstance(item, _Setting):
                self._once(settings, item)  # a setting given twice is E0010 as any clause
        return ast.VectorIndex(name=self._name(children[0]), version=self._version(children[1]),
                               source=self._name(children[2]), column=self._name(children[3]),
                               metric=_value(found, "metric"), kind=_value(found, "kind"),
                               filters=_value(found, "filter") or (),
                               settings=tuple(i.value for i in settings.values()), meta=self._meta(children[4:]),
                               span=self._span(meta))

    def index_metric(self, meta, children):
        return _Item("metric", self._name(children[0]), self._span(meta))

    def index_kind(self, meta, children):
        return _Item("kind", self._name(children[0]), self._span(meta))

    def index_filter(self, meta, children):
        return _Item("filter", tuple(self._name(t) for t in children), self._span(meta))

    def index_setting(self, meta, children):
        name = self._name(children[0])
        value = self._digits(children[1], children[1].value, 999_999_999, "index setting")
        return _Setting(name.value, (name, value), self._span(meta))

    def unit(self, meta, children):
        return _Item("unit", self._name(children[0]), self._span(meta))

    def within(self, meta, children):
        return _Item("within", (self._name(children[0]), self._name(children[1])), self._span(meta))

    def layer(self, meta, children):
        bounds = (children[1], children[2]) if len(children) == 3 else None
        return _Item("layer", (self._name(children[0]), bounds), self._span(meta))

    def salt(self, meta, children):
        return _Item("salt", self._string(children[0]), self._span(meta))

    def arms(self, meta, children):
        return _Item("arms", tuple(children), self._span(meta))

    def arm(self, meta, children):
        return ast.Arm(name=self._name(children[0]), percent=children[1], span=self._span(meta))

    def holdout(self, meta, children):
        return _Item("holdout", children[0], self._span(meta))

    def coverage(self, meta, children):
        return _Item("coverage", children[0], self._span(meta))

    def percent(self, meta, children):
        number = self._number(children[0])
        return ast.Literal(kind="percent", value=float(number.value), text=children[0].value + "%",
                           span=self._span(meta))

    def owner(self, meta, children):
        return _Item("owner", self._string(children[0]), self._span(meta))

    def description(self, meta, children):
        return _Item("description", self._string(children[0]), self._span(meta))

    def deprecated(self, meta, children):
        return _Item("deprecated", self._string(children[0]), self._span(meta))

    def tags(self, meta, children):
        return _Item("tags", tuple(self._string(t) for t in children), self._span(meta))

    # -- types -----------------------------------------------------------------------
    def type(self, meta, children):
        typ = children[0]
        if len(children) > 1:  # a trailing QMARK
            typ = typ.nullable()
        return ast.TypeRef(type=typ, span=self._span(meta))

    def scalar_type(self, meta, children):
        tok = children[0]
        if tok.value not in SCALARS:
            self.diags.error("E0005", f"expected a type, found `{tok.value}`", self._tspan(tok),
                             label="unknown type", help=did_you_mean(tok.value, (*SCALARS, "list", "vector"))
                             or "types are " + ", ".join(SCALARS) + ", list<T> and vector<T, N>",
                             fix=rename_fix(tok.value, self._tspan(tok), SCALARS))
        return Type(tok.value)

    def list_type(self, meta, children):
        return Type.list_of(children[0].type)

    def vector_type(self, meta, children):
        size = self._digits(children[1], children[1].value, MAX_VECTOR, "vector size")
        if size == 0 and children[1].value.strip("0") == "":
            self.diags.error("E0008", "a vector needs at least one element", self._tspan(children[1]))
        return Type.vector(size, children[0].type)

    # -- expressions -----------------------------------------------------------------
    def if_expr(self, meta, children):
        cond, then, else_ = children
        return ast.If(cond=cond, then=then, else_=else_, span=self._span(meta))

    def _binary(self, meta, children):
        left, op, right = children
        return ast.Binary(op=op.value, left=left, right=right, span=self._span(meta))

    coalesce = or_expr = and_expr = comparison = sum = product = _binary

    def _unary(self, meta, children):
        return ast.Unary(op=children[0].value, operand=children[1], span=self._span(meta))

    not_expr = neg = _unary

    def cast(self, meta, children):
        return ast.Cast(expr=children[0], to=children[1], span=self._span(meta))

    def ref(self, meta, children):
        return ast.Ref(parts=tuple(self._name(t) for t in children), span=self._span(meta))

    def group_ref(self, meta, children):
        return ast.GroupRef(group=self._name(children[0]), version=self._version(children[1]),
                            feature=self._name(children[2]), span=self._span(meta))

    def call(self, meta, children):
        args, where = list(children[1:]), None
        if args and isinstance(args[0], _FirstArg):
            where = args[0].where
            args[0] = args[0].expr
        return ast.Call(func=self._name(children[0]), args=tuple(args), where=where, span=self._span(meta))

    def first_arg(self, meta, children):
        return _FirstArg(children[0], children[1] if len(children) > 1 else None)

    def window_spec(self, meta, children):
        """`7d every 1h`, `tumbling 1d` or `session 30m`: a literal of kind "window" whose value
        is (kind, duration µs, hop µs or None); the checker validates the durations."""
        span = self._span(meta)
        text = " ".join(t.value for t in children)
        if len(children) == 3:
            width, word, hop = children
            expected, value = "every", ("hopping", self._duration(width).value, self._duration(hop).value)
        else:
            word, size = children
            expected = word.value if word.value in ("tumbling", "session") else "tumbling` or `session"
            value = (word.value, self._duration(size).value, None)
        if word.value != expected:
            self.diags.error("E0001", f"expected `{expected}` in a window, found `{word.value}`", self._tspan(word),
                             help="windows are `7d`, `7d every 1h`, `tumbling 1d` or `session 30m`")
            value = ("sliding", 1, None)  # a placeholder: the error above already stops the build
        return ast.Literal(kind="window", value=value, text=text, span=span)

    def list_lit(self, meta, children):
        return ast.ListLit(items=tuple(children), span=self._span(meta))

    def literal(self, meta, children):
        tok = children[0]
        span = self._tspan(tok)
        if tok.type in ("INT", "FLOAT"):
            return self._number(tok)
        if tok.type == "DURATION":
            return self._duration(tok)
        if tok.type == "STRING":
            return ast.Literal(kind="string", value=self._string(tok), text=tok.value, span=span)
        if tok.type == "NULL":
            return ast.Literal(kind="null", value=None, text=tok.value, span=span)
        return ast.Literal(kind="bool", value=tok.type == "TRUE", text=tok.value, span=span)

    def _number(self, tok: Token) -> ast.Literal:
        span = self._tspan(tok)
        if tok.type == "INT":
            return ast.Literal(kind="int", value=self._digits(tok, tok.value, INT64_MAX, "integer"),
                               text=tok.value, span=span)
        value = float(tok.value)
        if value in (float("inf"), float("-inf")):
            self.diags.error("E0008", f"float `{tok.value[:24]}` is out of range", span,
                             help="the largest float64 is about 1.8e308")
            value = 0.0
        return ast.Literal(kind="float", value=value, text=tok.value, span=span)

    def _duration(self, tok: Token) -> ast.Literal:
        # one definition of the syntax and its limits for the language, the CLI and the Python API
        try:
            value = parse_duration(tok.value)
        except DurationError as exc:
            self.diags.error("E0008", str(exc), self._tspan(tok), help="durations are int64 microseconds")
            value = 0
        return ast.Literal(kind="duration", value=value, text=tok.value, span=self._tspan(tok))


_EXPERIMENT_ITEMS = ("unit", "within", "layer", "salt", "arms", "holdout", "coverage")

_REQUIRED_HELP = {
    "unit": "name the entity that is randomised, e.g. `unit user`",
    "layer": "name the layer it shares with exclusive experiments, e.g. `layer checkout`",
    "salt": 'give it a salt that never changes, e.g. `salt "checkout-button-2024"`',
    "arms": "list the arms and their shares, e.g. `arms { control 50%, treatment 50% }`",
    "key": "declare its key, e.g. `key user_id: int64`",
    "path": 'say where the data lives, e.g. `path "transactions.parquet"`',
    "time": "name the event-time column, e.g. `time ts`",
    "columns": "list the columns, e.g. `columns { user_id: int64  ts: timestamp }`",
}


def _value(found: dict[str, _Item], key: str) -> Any:
    item = found.get(key)
    return item.value if item is not None else None
