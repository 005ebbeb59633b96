"""The typed plan both engines execute.

IR nodes are frozen and hash-consed by structure (spans excluded), so two features that
compute `sum(transactions.amount, 7d)` share one `Aggregate` node and the engines compute it
once.  Every point-in-time choice is an explicit field here, never an engine default:

* `Aggregate.window` covers event times in `[t - window, t)`; `None` is the lifetime `(-inf, t)`;
  with `hop` the window ends at the latest hop boundary h <= t instead, `[h - window, h)`
  (tumbling: hop = window); with `gap` (and no window) it is the session of the latest
  visible row, `[s, t)` (docs/semantics.md, "Window kinds");
* rows with time >= t, or a null key or time, are never visible;
* `AsOf` takes the latest row with time < t; ties on time go to the later row in the source;
* `Aggregate(op="last")` takes the latest non-null value, same tie-break.

The three choices among these are spelled out once, as `PointInTime`, and stored in every plan
(`Plan.rules`); each engine reads them and refuses a plan whose rules it does not implement.
"""

from __future__ import annotations

import functools
import re

import attrs

from astra.lang.types import Type
from astra.source import Span, span_field

node = attrs.frozen(kw_only=True, cache_hash=True)



@node
class Const:
    """A literal value of a known type (durations in microseconds, timestamps in µs since epoch)."""

    value: object
    type: Type
    span: Span = span_field()


@node
class Now:
    """The query time t (the spine's timestamp offline, `at` online)."""

    type: Type
    span: Span = span_field()


@node
class Column:
    """A column of the current source row; appears only inside an `Aggregate.where` filter."""

    name: str
    type: Type
    span: Span = span_field()


@node
class RequestInput:
    """A value the caller supplies at query time (a spine column in backfills)."""

    request: str
    field: str
    type: Type
    span: Span = span_field()


@node
class EntityKey:
    """The query's key `field` of `entity` (a spine column in backfills, the entity's key in a
    request online); read by `assignment(experiment)`, whose unit is the feature group's entity."""

    entity: str
    field: str
    type: Type
    span: Span = span_field()


@node
class SourceKey:
    """Which source columns hold an entity's keys (aligned with `Entity.keys`)."""

    source: str
    columns: tuple[str, ...]


@node
class AsOf:
    """The value of `column` in the latest snapshot row with time < t, null when none."""

    key: SourceKey
    column: str
    type: Type
    span: Span = span_field()


@node
class Aggregate:
    """An aggregation over the visible rows of an events source in a window.

    `op` names an entry of `astra.ops.aggregations.AGGREGATIONS`; `column` is None for `count(*)`;
    `param` carries an operator's integer argument (k of `last_k`).  `hop` (hopping and
    tumbling windows) and `gap` (session windows) are left out of the plan's data form when
    None, so a sliding window's fingerprint is what it was before window kinds existed.
    """

    op: str
    key: SourceKey
    column: str | None
    where: Expr | None
    window: int | None  # microseconds; None = lifetime (or, with `gap`, unbounded sessions)
    param: int | None
    type: Type
    span: Span = span_field()
    hop: int | None = attrs.field(default=None, metadata={"omit_none": True})  # µs, 0 < hop <= window
    gap: int | None = attrs.field(default=None, metadata={"omit_none": True})  # µs; window is then None


def window_kind(a: Aggregate) -> str:
    """"lifetime", "sliding", "hopping", "tumbling" or "session"."""
    if a.gap is not None:
        return "session"
    if a.hop is not None:
        return "tumbling" if a.hop == a.window else "hopping"
    return "lifetime" if a.window is None else "sliding"


def reach(a: Aggregate) -> int | None:
    """How far before t the window can reach, µs (None: unbounded, lifetime and session windows):
    a hopping window starts after t - window - hop, since its end h is above t - hop."""
    if a.window is None or a.gap is not None:
        return None
    return min(a.window + (a.hop or 0), 2**63 - 1)  # µs stay int64: two huge durations may not


def window_end(a: Aggregate, t):
    """Where the window of query time(s) t ends (exclusive): the hop boundary floor(t / hop) * hop
    on the epoch for hopping and tumbling windows, t itself for the others.  Works on ints and
    int64 arrays alike (floor division rounds down for times before the epoch too)."""
    return t if a.hop is None else t // a.hop * a.hop


@node
class Apply:
    """A scalar operator or function from `astra.ops.scalars.SCALARS` applied to arguments.

    `type` is the result type; casts put their target in it.
    """

    op: str
    args: tuple[Expr, ...]
    type: Type
    span: Span = span_field()


@node
class FeatureRef:
    """The value of another feature (by id `group@vN.name`) for the same entity and time."""

    feature: str
    type: Type
    span: Span = span_field()


Expr = Const | Now | Column | RequestInput | EntityKey | AsOf | Aggregate | Apply | FeatureRef


# --------------------------------------------------------------------------- declarations


@node
class Entity:
    """What features are about, with its (possibly composite) typed keys."""

    name: str
    keys: tuple[tuple[str, Type], ...]
    owner: str | None = None
    description: str | None = None


@node
class Source:
    """An events or snapshot table: where it lives, its columns, and its key columns per entity."""

    name: str
    kind: str  # "events" | "snapshot"
    path: str
    time: str
    columns: tuple[tuple[str, Type], ...]
    keys: tuple[SourceKey, ...]  # one per entity the source is keyed by
    entities: tuple[str, ...]  # aligned with keys
    max_staleness: int | None = None  # microseconds
    owner: str | None = None
    description: str | None = None

    def column_type(self, name: str) -> Type:
        return dict(self.columns)[name]


@node
class Request:
    """Fields a caller supplies at query time."""

    name: str
    fields: tuple[tuple[str, Type], ...]


@node
class Feature:
    """One feature of one group version; `id` is `group@vN.name`."""

    id: str
    group: str
    version: int
    name: str
    entity: str
    expr: Expr
    type: Type
    default: object = None
    description: str | None = None
    span: Span = span_field()


@node
class Group:
    """One version of a feature group, with its fingerprints."""

    name: str
    version: int
    entity: str
    features: tuple[str, ...]  # feature ids in declaration order
    owner: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    deprecated: str | None = None
    data_fingerprint: str = ""
    meta_fingerprint: str = ""
    span: Span = span_field()

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}"


@node
class Output:
    """One column a service returns: the feature it reads and the name it is returned under."""

    name: str
    feature: str


@node
class Service:
    """The ordered outputs one model consumes, at pinned group versions."""

    name: str
    version: int
    outputs: tuple[Output, ...]
    requests: tuple[str, ...]
    entities: tuple[str, ...]  # entities whose keys a query must supply, in first-use order
    owner: str | None = None
    description: str | None = None
    fingerprint: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}"


@node
class Experiment:
    """An A/B experiment: its unit entity, arms and the assignment spec both engines hash with
    (`astra.ops.assignment.Spec.text`: hash version, layer, salt, slice, holdout, coverage, arms)."""

    name: str
    unit: str  # entity name
    layer: str
    arms: tuple[tuple[str, float], ...]  # (arm, percent) in declaration order
    spec: str
    span: Span = span_field()
    within: tuple[str, str] | None = attrs.field(default=None, metadata={"omit_none": True})  # (experiment, arm)


@node
class VectorIndex:
    """`index NAME vN on SOURCE.COLUMN { ... }`: one version of the nearest-neighbour index the
    online store keeps over a snapshot source's vector column, keyed by the source's entity key,
    with the scalar columns a search may filter on (`astra.online.indexes`)."""

    name: str
    source: str
    column: str
    dim: int
    metric: str  # cosine | euclidean | manhattan | inner_product | mahalanobis
    kind: str  # exact | hnsw
    filters: tuple[str, ...] = ()
    owner: str | None = None
    description: str | None = None
    span: Span = span_field()
    fingerprint: str = ""
    version: int = 1  # last, so plans written before indexes had versions still load (as v1)
    # the hnsw kind's graph settings, every one (defaults filled in); None for the exact kind
    hnsw: tuple[tuple[str, int], ...] | None = attrs.field(default=None, metadata={"omit_none": True})
    # a mahalanobis index's fitted covariance (d x d, row-major), bound from its recorded fit
    # (`astra.plan.index_fit`); None for other metrics and while unfitted
    covariance: tuple[float, ...] | None = attrs.field(default=None, metadata={"omit_none": True}, repr=False)
    # bytes the built index may hold (`memory_limit_mib`); past it the index stops answering
    memory_limit: int | None = attrs.field(default=None, metadata={"omit_none": True})

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}"


class RulesError(ValueError):
    """A plan states point-in-time rules an engine does not implement."""


@node
class PointInTime:
    """The point-in-time rules a plan is computed under (docs/semantics.md)."""

    window_closed: str = "left"  # [t - w, t): the start included, the end (the query time) excluded
    visibility: str = "strictly_before"  # a row at exactly t is invisible
    tie_break: str = "source_position"  # equal times: the later row in the source wins

    def require(self, implemented: PointInTime, engine: str) -> None:
        """Raise `RulesError` unless these are the rules `engine` implements."""
        differ = [f"{f.name} `{getattr(self, f.name)}` (it implements `{getattr(implemented, f.name)}`)"
                  for f in attrs.fields(PointInTime) if getattr(self, f.name) != getattr(implemented, f.name)]
        if differ:
            raise RulesError(f"the {engine} cannot run this plan: it states point-in-time rules "
                             f"{'; '.join(differ)}; rebuild the plan with this version of astra")


@node
class Plan:
    """Everything the engines need; serialisable to `build/plan.json` and back."""

    entities: tuple[Entity, ...]
    sources: tuple[Source, ...]
    requests: tuple[Request, ...]
    features: tuple[Feature, ...]  # topologically ordered: dependencies first
    groups: tuple[Group, ...]
    services: tuple[Service, ...]
    experiments: tuple[Experiment, ...] | None = attrs.field(default=None, metadata={"omit_none": True})
    indexes: tuple[VectorIndex, ...] | None = attrs.field(default=None, metadata={"omit_none": True})
    rules: PointInTime = attrs.field(factory=PointInTime)  # absent from plans written before it: these

    @functools.cached_property
    def _index(self) -> dict[tuple[str, str], object]:
        index: dict[tuple[str, str], object] = {}
        for kind, items, attr in (("entity", self.entities, "name"), ("source", self.sources, "name"),
                                  ("feature", self.features, "id")):
            for item in items:
                index[kind, getattr(item, attr)] = item
        return index

    def entity(self, name: str) -> Entity:
        return self._lookup("entity", name)

    def source(self, name: str) -> Source:
        return self._lookup("source", name)

    def feature(self, fid: str) -> Feature:
        return self._lookup("feature", fid)

    def _lookup(self, kind: str, key: str):
        try:
            return self._index[kind, key]
        except KeyError:
            raise KeyError(key) from None

    def service(self, name: str, version: int) -> Service:
        for s in self.services:
            if s.name == name and s.version == version:
                return s
        raise KeyError(f"{name}@v{version}")

    def find_service(self, ref: str, version: int | None = None) -> Service:
        """A service by `name@vN` (or `name` plus `version`); the error says what exists."""
        return _find_versioned("service", self.services, ref, version, "fraud_model@v1", ServiceNotFound)

    def find_index(self, ref: str, version: int | None = None) -> VectorIndex:
        """A declared vector index by `name@vN` (or `name` plus `version`); the error says what exists."""
        return _find_versioned("index", self.indexes or (), ref, version, "similar_products@v1", IndexNotFound)

    def closure(self, feature_ids: tuple[str, ...]) -> tuple[Feature, ...]:
        """The features needed to compute `feature_ids`, dependencies first."""
        need = set(feature_ids)
        for f in reversed(self.features):
            if f.id in need:
                need.update(ref.feature for ref in walk(f.expr) if isinstance(ref, FeatureRef))
        return tuple(f for f in self.features if f.id in need)


class NotFound(KeyError):
    """A reference that names nothing in the plan; the message lists what exists."""

    def __str__(self) -> str:
        return str(self.args[0])


class ServiceNotFound(NotFound):
    """A service reference that names nothing in the plan."""


class IndexNotFound(NotFound):
    """A vector index reference that names nothing in the plan."""


def _find_versioned(kind: str, items, ref: str, version: int | None, example: str, error: type[NotFound]):
    """The item `name@vN` (or `name` plus `version`) of a versioned kind (services, indexes)."""
    m = re.fullmatch(r"([A-Za-z_]\w*)(?:@v(\d+))?", ref.strip()) if isinstance(ref, str) else None
    if m is None:
        raise error(f"`{ref}` is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} reference; write `name@vN`, "
                    f"e.g. `{example}`")
    name, version = m.group(1), int(m.group(2)) if m.group(2) else version
    versions = sorted(x.version for x in items if x.name == name)
    if not versions:
        known = ", ".join(sorted(x.id for x in items)) or "none"
        raise error(f"unknown {kind} `{name}`; {kind}{'es' if kind.endswith('x') else 's'}: {known}")
    if version is None:
        raise error(f"say which version of `{name}`: " + ", ".join(f"{name}@v{v}" for v in versions))
    if version not in versions:
        raise error(f"unknown {kind} version `{name}@v{version}`; available: " + ", ".join(f"v{v}" for v in versions))
    return next(x for x in items if x.name == name and x.version == version)


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of an IR node."""
    if isinstance(e, Apply):
        return e.args
    if isinstance(e, Aggregate) and e.where is not None:
        return (e.where,)
    return ()


def walk(e: Expr):
    """Every node of an expression tree, parents before children."""
    stack = [e]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(children(n)))
