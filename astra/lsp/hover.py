"""What the editor shows over a name: for a feature its resolved type and nullability, the
effective window, owner, description and fingerprint; for the other names what they declare."""

from __future__ import annotations

import functools

from astra.lang import fmt
from astra.lsp.documents import Analysis
from astra.lsp.index import Key
from astra.lsp.operators import signatures
from astra.plan import ir
from astra.plan.fingerprint import feature_fingerprints
from astra.plan.pretty import expr as pretty
from astra.plan.pretty import null_reason, window


def hover(analysis: Analysis, key: Key) -> str | None:
    """Markdown for the name `key`, or None when it names nothing the project declares."""
    kind, *rest = key
    render = _RENDER.get(kind)
    return render(analysis, *rest) if render else None


def _code(text: str) -> str:
    return f"```astra\n{text}\n```"


def _meta(lines: list[str], owner: str | None, description: str | None, tags=(), deprecated: str | None = None):
    if description:
        lines.append(description)
    if owner:
        lines.append(f"owner: {owner}")
    if tags:
        lines.append("tags: " + ", ".join(tags))
    if deprecated:
        lines.append(f"**deprecated**: {deprecated}")


@functools.lru_cache(maxsize=8)
def _fingerprints(plan: ir.Plan) -> dict[str, str]:
    return feature_fingerprints(plan)


def effective_window(plan: ir.Plan, f: ir.Feature) -> str:
    """The event times the feature's value depends on, through the features it reads: the widest
    window of its aggregations, written as `[t - 7d, t)` (`(-inf, t)` for a lifetime one)."""
    aggs, asof = [], False
    for g in plan.closure((f.id,)):
        for n in ir.walk(g.expr):
            if isinstance(n, ir.Aggregate):
                aggs.append(ir.reach(n))  # a hopping window reaches back window + hop
            asof = asof or isinstance(n, ir.AsOf)
    if aggs:
        widest = None if None in aggs else max(aggs)
        return window(widest) + (" (and as-of lookups at t)" if asof else "")
    return "as of t: the latest row before t" if asof else "none (no source is read)"


def _feature(analysis: Analysis, group: str, version: int, name: str) -> str | None:
    decl = analysis.syms.groups.get((group, version))
    written = next((f for f in decl.features if f.name.value == name), None) if decl else None
    if written is None:
        return None
    fid = f"{group}@v{version}.{name}"
    plan = analysis.plan
    f = next((x for x in plan.features if x.id == fid), None) if plan is not None else None
    lines = [_code(f"(feature) {fid}: {written.type.type}")]
    if f is None:
        lines.append("not checked: this feature has errors")
    else:
        if f.type.optional:
            lines.append(f"type: `{f.type}`, nullable: {null_reason(f.expr)}")
        else:
            lines.append(f"type: `{f.type}`, never null" + (f" (a null result is replaced by the default "
                                                              f"`{fmt.expr(written.default)}`)"
                                                              if f.default is not None else ""))
        lines.append(f"window: `{effective_window(plan, f)}`")
        lines.append(f"= `{pretty(f.expr)}`")
    lines.append(f"entity: `{decl.entity.value}`")
    _meta(lines, decl.meta.owner, written.description or decl.meta.description, (), decl.meta.deprecated)
    if f is not None:
        lines.append(f"fingerprint: `{_fingerprints(plan)[fid]}`")
    return "\n\n".join(lines)


def _group(analysis: Analysis, group: str, version: int) -> str | None:
    decl = analysis.syms.groups.get((group, version))
    if decl is None:
        versions = analysis.syms.group_versions(group)
        if not versions:
            return None
        return _code(f"features {group}") + f"\n\nno version v{version}; versions: " + \
            ", ".join(f"v{v}" for v in versions)
    lines = [_code(f"features {group} v{version} for {decl.entity.value}"),
             f"{len(decl.features)} feature(s): " + ", ".join(f"`{f.name.value}`" for f in decl.features)]
    _meta(lines, decl.meta.owner, decl.meta.description, decl.meta.tags, decl.meta.deprecated)
    g = next((x for x in analysis.plan.groups if x.name == group and x.version == version), None) \
        if analysis.plan else None
    if g is not None:
        lines.append(f"fingerprints: data `{g.data_fingerprint}`, metadata `{g.meta_fingerprint}`")
        users = [s.id for s in analysis.plan.services if any(o.feature.startswith(g.id + ".") for o in s.outputs)]
        if users:
            lines.append("pinned by: " + ", ".join(users))
    return "\n\n".join(lines)


def _entity(analysis: Analysis, name: str) -> str | None:
    decl = analysis.syms.entities.get(name)
    if decl is None:
        return None
    keys = ", ".join(f"{k.name.value}: {k.type.type}" for k in decl.keys)
    lines = [_code(f"entity {name} ({keys})")]
    _meta(lines, decl.meta.owner, decl.meta.description)
    sources = [s for s, b in analysis.syms.sources.items() if name in b.keys]
    if sources:
        lines.append("sources: " + ", ".join(sources))
    groups = [f"{g}@v{v}" for (g, v), d in analysis.syms.groups.items() if d.entity.value == name]
    if groups:
        lines.append("feature groups: " + ", ".join(groups))
    return "\n\n".join(lines)


def _key(analysis: Analysis, entity: str, key: str) -> str | None:
    decl = analysis.syms.entities.get(entity)
    field = next((k for k in decl.keys if k.name.value == key), None) if decl else None
    return _code(f"key {entity}.{key}: {field.type.type}") if field else None


def _source(analysis: Analysis, name: str) -> str | None:
    bound = analysis.syms.sources.get(name)
    if bound is None:
        return None
    d = bound.decl
    lines = [_code(f"{d.kind} {name} for {', '.join(b.entity.value for b in d.entities)}"),
             f"path `{d.path}`, time `{d.time.value}`"
             + (f", max_staleness `{d.max_staleness.text}`" if d.max_staleness is not None else ""),
             "columns: " + ", ".join(f"`{c}: {t}`" for c, t in bound.columns.items()),
             "read through aggregations over windows [t - w, t)" if d.kind == "events"
             else "read as of t: the latest row before t, null when there is none"]
    _meta(lines, d.meta.owner, d.meta.description)
    return "\n\n".join(lines)


def _column(analysis: Analysis, source: str, column: str) -> str | None:
    bound = analysis.syms.sources.get(source)
    if bound is None or column not in bound.columns:
        return None
    t = bound.columns[column]
    lines = [_code(f"(column) {source}.{column}: {t}")]
    if column == bound.decl.time.value:
        lines.append(f"the event time of `{source}`")
    keyed = [f"{e}" for e, cols in bound.keys.items() if column in cols]
    if keyed:
        lines.append("key column for: " + ", ".join(keyed))
    if bound.decl.kind == "snapshot":
        lines.append(f"`{source}.{column}` is an as-of lookup: `{t.nullable()}` (no row before t gives null)")
    return "\n\n".join(lines)


def _request(analysis: Analysis, name: str) -> str | None:
    decl = analysis.syms.requests.get(name)
    if decl is None:
        return None
    fields = ", ".join(f"{f.name.value}: {f.type.type}" for f in decl.fields)
    lines = [_code(f"request {name} {{ {fields} }}"),
             "supplied by the caller with each online query; read from spine columns of the same names "
             "in a backfill"]
    _meta(lines, decl.meta.owner, decl.meta.description)
    return "\n\n".join(lines)


def _field(analysis: Analysis, request: str, field: str) -> str | None:
    decl = analysis.syms.requests.get(request)
    f = next((x for x in decl.fields if x.name.value == field), None) if decl else None
    return _code(f"(request field) {request}.{field}: {f.type.type}") if f else None


def _service(analysis: Analysis, name: str, version: int) -> str | None:
    decl = analysis.syms.services.get((name, version))
    if decl is None:
        return None
    lines = [_code(f"service {name} v{version}")]
    s = next((x for x in analysis.plan.services if x.name == name and x.version == version), None) \
        if analysis.plan else None
    if s is not None:
        lines.append(f"{len(s.outputs)} output(s); keys of: {', '.join(s.entities)}"
                     + (f"; requests: {', '.join(s.requests)}" if s.requests else ""))
        lines.append(f"fingerprint: `{s.fingerprint}`")
    _meta(lines, decl.meta.owner, decl.meta.description)
    return "\n\n".join(lines)


def _function(analysis: Analysis, name: str) -> str | None:
    sig = signatures().get(name)
    return f"{_code(sig.label)}\n\n({sig.kind}) {sig.doc}" if sig else None


_RENDER = {"feature": _feature, "group": _group, "entity": _entity, "key": _key, "source": _source,
           "column": _column, "request": _request, "field": _field, "service": _service, "function": _function}
