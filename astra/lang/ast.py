"""The abstract syntax tree of `.feat` files: small frozen nodes, each with the span it came from.

Spans never take part in equality or hashing, so two trees that differ only in layout,
comments or positions compare equal (the formatter's round-trip property relies on it).
"""

from __future__ import annotations

import attrs

from astra.lang.types import Type
from astra.source import Span, span_field

node = attrs.frozen(kw_only=True, cache_hash=True)


@node
class Name:
    """An identifier as written, with its span."""

    value: str
    span: Span = span_field()


@node
class TypeRef:
    """A written type, e.g. `float64?` or `vector<float32, 64>`."""

    type: Type
    span: Span = span_field()


@node
class Meta:
    """Metadata shared by entities, sources, groups and services. Never part of the data fingerprint."""

    owner: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    deprecated: str | None = None  # groups only: the reason
    span: Span = span_field()
    # Where each item was written, e.g. (("owner", span), ...): lets the formatter keep comments in place.
    item_spans: tuple[tuple[str, Span], ...] = attrs.field(default=(), eq=False, repr=False)


# --------------------------------------------------------------------------- expressions


@node
class Literal:
    """`1`, `2.5`, `"x"`, `true`, `null`, or a duration such as `7d` (value in microseconds)."""

    kind: str  # "int" | "float" | "string" | "bool" | "null" | "duration"
    value: object
    text: str = attrs.field(default="", eq=False)  # as written, e.g. "7d"; for messages only
    span: Span = span_field()


@node
class Ref:
    """A bare or dotted name: a feature of this group, `source.column`, `request.field`."""

    parts: tuple[Name, ...]
    span: Span = span_field()

    @property
    def dotted(self) -> str:
        return ".".join(p.value for p in self.parts)


@node
class GroupRef:
    """`group@vN.feature`: a feature of another group at a pinned version."""

    group: Name
    version: int
    feature: Name
    span: Span = span_field()


@node
class Call:
    """`f(a, b)`: a function or an aggregation; the checker tells them apart by name.

    An argument may carry a `where` filter (`count(transactions where amount > 100, 7d)`);
    only aggregations accept one, on their first argument.
    """

    func: Name
    args: tuple[Expr, ...]
    where: Expr | None = None
    span: Span = span_field()


@node
class Binary:
    """`a op b` for arithmetic, comparison, `and`/`or` and `??`."""

    op: str
    left: Expr
    right: Expr
    span: Span = span_field()


@node
class Unary:
    """`-a` or `not a`."""

    op: str
    operand: Expr
    span: Span = span_field()


@node
class If:
    """`if cond then a else b`."""

    cond: Expr
    then: Expr
    else_: Expr
    span: Span = span_field()


@node
class Cast:
    """`expr as T`."""

    expr: Expr
    to: TypeRef
    span: Span = span_field()


@node
class ListLit:
    """`[a, b, c]` (used by tags and `in` tests)."""

    items: tuple[Expr, ...]
    span: Span = span_field()


Expr = Literal | Ref | GroupRef | Call | Binary | Unary | If | Cast | ListLit


# --------------------------------------------------------------------------- declarations


@node
class Field:
    """`name: type` in an entity key list, a source's columns or a request's fields."""

    name: Name
    type: TypeRef
    span: Span = span_field()


@node
class Entity:
    """`entity user { key user_id: int64 }`: what features are about; keys may be composite."""

    name: Name
    keys: tuple[Field, ...]
    meta: Meta = Meta()
    span: Span = span_field()


@node
class KeyMap:
    """`user_id = payer_id` inside `for user(...)`: entity key <- source column."""

    key: Name
    column: Name
    span: Span = span_field()


@node
class Binding:
    """An entity a source is keyed by; unmapped keys bind to the same-named column."""

    entity: Name
    mapping: tuple[KeyMap, ...] = ()
    span: Span = span_field()


@node
class Source:
    """`events` (append-only facts, read through aggregations) or `snapshot` (read as of t)."""

    kind: str  # "events" | "snapshot"
    name: Name
    entities: tuple[Binding, ...]
    path: str
    time: Name
    columns: tuple[Field, ...]
    max_staleness: Literal | None = None
    meta: Meta = Meta()
    span: Span = span_field()
    path_span: Span = span_field()  # the `path "..."` clause, for the formatter's comment placement


@node
class Request:
    """`request checkout { amount: float64 }`: values the caller supplies at query time."""

    name: Name
    fields: tuple[Field, ...]
    meta: Meta = Meta()
    span: Span = span_field()


@node
class Feature:
    """`name: type = expr [default literal] [description "..."]` inside a group."""

    name: Name
    type: TypeRef
    expr: Expr
    default: Literal | None = None
    description: str | None = None
    span: Span = span_field()


@node
class Group:
    """`features name vN for entity { ... }`: one version of a feature group."""

    name: Name
    version: int
    entity: Name
    features: tuple[Feature, ...]
    meta: Meta = Meta()
    span: Span = span_field()


@node
class Selection:
    """`group@vN.*` or `group@vN.feature [as alias]` inside a service."""

    group: Name
    version: int
    feature: Name | None  # None selects every feature of the group
    alias: Name | None = None
    span: Span = span_field()


@node
class Service:
    """`service name vN { ... }`: the features one model consumes, at pinned versions."""

    name: Name
    version: int
    requests: tuple[Name, ...]
    selections: tuple[Selection, ...]
    meta: Meta = Meta()
    span: Span = span_field()


@node
class Arm:
    """`control 50%` inside an experiment's `arms { ... }`."""

    name: Name
    percent: Literal  # kind "percent": value is the number of percent, text as written
    span: Span = span_field()


@node
class Experiment:
    """`experiment name { unit user  layer checkout  salt "..."  arms { ... } }`: an A/B test.

    `slice` is the part of the layer the experiment owns (`layer checkout 0%-50%`; the whole
    layer when None); `coverage` the share of its units that are assigned an arm (100% when None);
    `within` (`within checkout_test.treatment`) nests it in one arm of another experiment."""

    name: Name
    unit: Name | None
    layer: Name | None
    slice: tuple[Literal, Literal] | None
    salt: str | None
    arms: tuple[Arm, ...]
    holdout: Literal | None = None
    coverage: Literal | None = None
    within: tuple[Name, Name] | None = None  # (experiment, arm): only units in that arm take part
    meta: Meta = Meta()
    span: Span = span_field()


@node
class VectorIndex:
    """`index similar v1 on products.embedding { metric cosine; kind hnsw; filter category; }`: one
    version of a nearest-neighbour index the online store keeps over a snapshot source's vector
    column.  `metric` and `kind` are None when not written (cosine, exact)."""

    name: Name
    version: int
    source: Name
    column: Name
    metric: Name | None = None
    kind: Name | None = None
    filters: tuple[Name, ...] = ()
    settings: tuple[tuple[Name, int], ...] = ()  # `ef_search 128`: (name, value), as written
    meta: Meta = Meta()
    span: Span = span_field()


@node
class Import:
    """`import "path.feat"` or `import "dir/"`, relative to the importing file."""

    path: str
    span: Span = span_field()


Decl = Entity | Source | Request | Group | Service | Experiment | VectorIndex | Import


@node
class Module:
    """One parsed `.feat` file."""

    path: str
    decls: tuple[Decl, ...]
    comments: tuple[Comment, ...] = attrs.field(default=(), eq=False)
    span: Span = span_field()


@node
class Comment:
    """A `# ...` comment, kept for the formatter only."""

    text: str
    span: Span = span_field()
