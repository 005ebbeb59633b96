"""`astra ls` and `astra show`: what a project defines, found without reading its files.

Both work from one list of records, one per definition (entity, source, request, feature group
version, feature, service version), built from the plan the engines run and, for what the plan
does not keep (the tags of entities, sources and services, where each thing is written), from
the parsed `.feat` files.  A feature inherits its group's owner, tags and deprecation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from astra.cli.common import ALLOW_UNLOCKED, PROJECT, fail, load

KINDS = ("entity", "source", "request", "group", "feature", "service")
_HEADINGS = {"entity": "entities", "source": "sources", "request": "requests", "group": "feature groups",
             "feature": "features", "service": "services"}


# --------------------------------------------------------------------------- records


def _declared(project_path: Path) -> dict[tuple[str, str], tuple[object, str]]:
    """(kind, name or group@vN or group@vN.feature) -> (the AST's metadata or None, where it is written)."""
    from astra.diagnostics import Collector
    from astra.lang import ast
    from astra.lang.project import load_modules

    out: dict[tuple[str, str], tuple[object, str]] = {}
    modules, _ = load_modules(project_path, Collector())
    for module in modules:
        for d in module.decls:
            where = f"{d.span.file}:{d.span.line}"
            if isinstance(d, ast.Entity):
                out["entity", d.name.value] = d.meta, where
            elif isinstance(d, ast.Source):
                out["source", d.name.value] = d.meta, where
            elif isinstance(d, ast.Request):
                out["request", d.name.value] = d.meta, where
            elif isinstance(d, ast.Service):
                out["service", f"{d.name.value}@v{d.version}"] = d.meta, where
            elif isinstance(d, ast.Group):
                gid = f"{d.name.value}@v{d.version}"
                out["group", gid] = d.meta, where
                for f in d.features:
                    out["feature", f"{gid}.{f.name.value}"] = None, f"{f.span.file}:{f.span.line}"
    return out


def _windows(plan, feature) -> list[str]:
    """The effective windows of a feature, its dependencies' included: `[t - 7d, t) of transactions`."""
    from astra.plan import ir
    from astra.plan.pretty import window

    out, todo, seen = [], [feature], set()
    while todo:
        f = todo.pop()
        if f.id in seen:
            continue
        seen.add(f.id)
        for n in ir.walk(f.expr):
            text = None
            if isinstance(n, ir.Aggregate):
                text = f"{window(n)} of {n.key.source}"
            elif isinstance(n, ir.AsOf):
                text = f"as of t (latest row before t) of {n.key.source}"
            elif isinstance(n, ir.FeatureRef):
                todo.append(plan.feature(n.feature))
            if text and text not in out:
                out.append(text)
    return out


def records(plan, project_path: Path) -> list[dict]:
    """One JSON-ready record per definition, in kind order, then as the plan lists them."""
    from astra.plan.fingerprint import feature_fingerprints

    declared = _declared(project_path)

    def meta(kind: str, name: str, owner=None, description=None) -> dict:
        m, where = declared.get((kind, name), (None, None))
        return {"kind": kind, "name": name, "owner": owner if owner is not None else getattr(m, "owner", None),
                "tags": list(getattr(m, "tags", ())), "description": description if description is not None
                else getattr(m, "description", None), "deprecated": None, "defined_at": where}

    feature_reads = {f.id: _reads(f) for f in plan.features}
    served: dict[str, list[str]] = {}
    for s in plan.services:
        for o in s.outputs:
            served.setdefault(o.feature, []).append(s.id)
    return [*_entity_and_source_records(plan, meta, feature_reads),
            *_group_and_feature_records(plan, meta, feature_reads, served, feature_fingerprints(plan)),
            *_service_records(plan, meta)]


def _reads(f) -> tuple[list[str], list[str], list[str]]:
    """The sources, request fields (`request.field`) and features a feature's expression reads."""
    from astra.plan import ir

    nodes = list(ir.walk(f.expr))
    sources = sorted({n.key.source for n in nodes if isinstance(n, ir.Aggregate | ir.AsOf)})
    requests = sorted({f"{n.request}.{n.field}" for n in nodes if isinstance(n, ir.RequestInput)})
    deps = sorted({n.feature for n in nodes if isinstance(n, ir.FeatureRef)})
    return sources, requests, deps


def _entity_and_source_records(plan, meta, feature_reads) -> list[dict]:
    """The records of entities, sources and requests, in that order."""
    from astra.plan.pretty import duration

    out = []
    for e in plan.entities:
        r = meta("entity", e.name, e.owner, e.description)
        r["keys"] = [{"name": k, "type": str(t)} for k, t in e.keys]
        r["sources"] = [s.name for s in plan.sources if e.name in s.entities]
        r["groups"] = [g.id for g in plan.groups if g.entity == e.name]
        out.append(r)
    for s in plan.sources:
        r = meta("source", s.name, s.owner, s.description)
        r.update(source_kind=s.kind, path=s.path, time=s.time,
                 columns=[{"name": c, "type": str(t)} for c, t in s.columns],
                 entities=[{"entity": e, "columns": list(k.columns)} for e, k in zip(s.entities, s.keys)],
                 max_staleness=duration(s.max_staleness) if s.max_staleness is not None else None,
                 read_by=[g.id for g in plan.groups if any(s.name in feature_reads[f][0] for f in g.features)])
        out.append(r)
    for q in plan.requests:
        r = meta("request", q.name)
        r["fields"] = [{"name": c, "type": str(t)} for c, t in q.fields]
        r["services"] = [s.id for s in plan.services if q.name in s.requests]
        out.append(r)
    return out


def _group_and_feature_records(plan, meta, feature_reads, served, prints) -> list[dict]:
    """The records of feature group versions, then of their features (by group, as written)."""
    from astra.plan.pretty import expr, null_reason

    out = []
    groups = {g.id: g for g in plan.groups}
    for g in plan.groups:
        r = meta("group", g.id, g.owner, g.description)
        r.update(tags=list(g.tags), deprecated=g.deprecated, group=g.name, version=g.version, entity=g.entity,
                 features=[plan.feature(f).name for f in g.features],
                 fingerprints={"data": g.data_fingerprint, "metadata": g.meta_fingerprint},
                 versions=[o.id for o in plan.groups if o.name == g.name],
                 reads=sorted({s for f in g.features for s in feature_reads[f][0]}),
                 depends_on=sorted({d.rsplit(".", 1)[0] for f in g.features for d in feature_reads[f][2]} - {g.id}),
                 served_by=sorted({s for f in g.features for s in served.get(f, ())}))
        out.append(r)
    for f in (plan.feature(fid) for g in plan.groups for fid in g.features):
        g = groups[f"{f.group}@v{f.version}"]
        sources, requests, deps = feature_reads[f.id]
        r = meta("feature", f.id, g.owner)
        r.update(description=f.description, tags=list(g.tags), deprecated=g.deprecated, group=g.id,
                 feature=f.name, entity=f.entity, type=str(f.type), nullable=f.type.optional,
                 null_reason=null_reason(f.expr) if f.type.optional else None, expression=expr(f.expr),
                 default=f.default, windows=_windows(plan, f), fingerprint=prints[f.id], reads=sources,
                 requests=requests, depends_on=deps,
                 used_by=[o.id for o in plan.features if f.id in feature_reads[o.id][2]],
                 served_by=served.get(f.id, []),
                 versions=[{"feature": o.id, "fingerprint": prints[o.id]} for o in plan.features
                           if o.group == f.group and o.name == f.name])
        out.append(r)
    return out


def _service_records(plan, meta) -> list[dict]:
    """The records of service versions."""
    out = []
    for s in plan.services:
        r = meta("service", s.id, s.owner, s.description)
        r.update(service=s.name, version=s.version, fingerprint=s.fingerprint,
                 keys=list(dict.fromkeys(k for e in s.entities for k, _ in plan.entity(e).keys)),
                 entities=list(s.entities),
                 requests=list(s.requests),
                 outputs=[{"name": o.name, "feature": o.feature, "type": str(plan.feature(o.feature).type)}
                          for o in s.outputs],
                 groups=sorted({o.feature.rsplit(".", 1)[0] for o in s.outputs}),
                 versions=[o.id for o in plan.services if o.name == s.name])
        out.append(r)
    return out


# --------------------------------------------------------------------------- text


def summary(r: dict) -> str:
    """What a definition is, in a few words, for `astra ls`."""
    kind = r["kind"]
    if kind == "entity":
        return "key " + ", ".join(f"{k['name']}: {k['type']}" for k in r["keys"])
    if kind == "source":
        return f"{r['source_kind']} for {', '.join(e['entity'] for e in r['entities'])} ({r['path']})"
    if kind == "request":
        return ", ".join(f"{f['name']}: {f['type']}" for f in r["fields"])
    if kind == "group":
        return f"for {r['entity']}, {len(r['features'])} features"
    if kind == "feature":
        return f"{r['type']:<9}  " + ("; ".join(r["windows"]) if r["windows"] else "no window")
    return f"{len(r['outputs'])} outputs" + (f", request {', '.join(r['requests'])}" if r["requests"] else "")


def ls_text(found: list[dict]) -> str:
    lines = []
    for kind in KINDS:
        rows = [r for r in found if r["kind"] == kind]
        if not rows:
            continue
        lines.append(f"{_HEADINGS[kind]} ({len(rows)})")
        width = max(len(r["name"]) for r in rows)
        room = max(len(summary(r)) for r in rows)
        for r in rows:
            extra = [f"owner {r['owner']}"] if r["owner"] else []
            if r["tags"]:
                extra.append("tags " + ", ".join(r["tags"]))
            if r["deprecated"]:
                extra.append("DEPRECATED")
            line = f"  {r['name']:<{width}}  {summary(r):<{room}}" + (f"  [{'; '.join(extra)}]" if extra else "")
            if r["description"]:
                line += f"  {r['description']}"
            lines.append(line.rstrip())
    return "\n".join(lines)


def _list(values, empty: str = "none") -> str:
    return ", ".join(map(str, values)) if values else empty


def show_text(r: dict) -> str:
    """A definition in full, one fact per line."""
    kind = r["kind"]
    head = f"{kind} {r['name']}"
    if kind == "feature":
        head += f": {r['type']}" + (f" (nullable: {r['null_reason']})" if r["nullable"] else " (never null)")
    lines = [head]
    if kind == "feature":
        lines.append(f"  = {r['expression']}")
        if r["default"] is not None:
            lines.append(f"  default {r['default']!r} (replaces a null result)")
        lines.append("  window: " + _list(r["windows"], "none (no aggregation)"))
    for key in ("description", "owner"):
        if r[key]:
            lines.append(f"  {key}: {r[key]}")
    if r["tags"]:
        lines.append(f"  tags: {_list(r['tags'])}")
    if r["deprecated"]:
        lines.append(f"  deprecated: {r['deprecated']}")
    if kind == "entity":
        lines.append("  keys: " + _list(f"{k['name']}: {k['type']}" for k in r["keys"]))
        lines.append(f"  sources: {_list(r['sources'])}")
        lines.append(f"  feature groups: {_list(r['groups'])}")
    elif kind == "source":
        lines.append(f"  {r['source_kind']} at `{r['path']}`, time column {r['time']}"
                     + (f", max staleness {r['max_staleness']}" if r["max_staleness"] else ""))
        lines.append("  columns: " + _list(f"{c['name']}: {c['type']}" for c in r["columns"]))
        lines.append("  keyed for: " + _list(f"{e['entity']} ({', '.join(e['columns'])})" for e in r["entities"]))
        lines.append(f"  read by: {_list(r['read_by'])}")
    elif kind == "request":
        lines.append("  fields: " + _list(f"{f['name']}: {f['type']}" for f in r["fields"]))
        lines.append(f"  services: {_list(r['services'])}")
    elif kind == "group":
        lines.append(f"  entity: {r['entity']}")
        lines.append(f"  fingerprints: data {r['fingerprints']['data']}, metadata {r['fingerprints']['metadata']}")
        lines.append(f"  features: {_list(r['features'])}")
        lines.append(f"  reads: {_list(r['reads'])}")
        lines.append(f"  depends on: {_list(r['depends_on'])}")
        lines.append(f"  served by: {_list(r['served_by'], 'no service')}")
        lines.append(f"  versions: {_list(r['versions'])}")
    elif kind == "feature":
        lines.append(f"  entity: {r['entity']}")
        lines.append(f"  fingerprint: {r['fingerprint']}")
        lines.append(f"  reads: {_list(r['reads'] + r['requests'], 'no source')}")
        lines.append(f"  depends on: {_list(r['depends_on'], 'no other feature')}")
        if r["used_by"]:
            lines.append(f"  used by: {_list(r['used_by'])}")
        lines.append(f"  served by: {_list(r['served_by'], 'no service')}")
        lines.append("  versions: " + _list(f"{v['feature']} ({v['fingerprint']})" for v in r["versions"]))
    else:
        lines.append(f"  fingerprint: {r['fingerprint']}")
        lines.append(f"  keys: {_list(r['keys'])}" + (f"; request {_list(r['requests'])}" if r["requests"] else ""))
        lines.append(f"  outputs ({len(r['outputs'])}):")
        width = max((len(o["name"]) for o in r["outputs"]), default=0)
        lines.extend(f"    {o['name']:<{width}}  {o['type']:<10}  {o['feature']}" for o in r["outputs"])
        lines.append(f"  feature groups: {_list(r['groups'])}")
        lines.append(f"  versions: {_list(r['versions'])}")
    if r["defined_at"]:
        lines.append(f"  defined at: {r['defined_at']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- finding


def find(found: list[dict], name: str) -> list[dict]:
    """The records NAME names: `x` (any kind, every version), `x@vN`, `group.feature`, `group@vN.feature`."""
    out = []
    for r in found:
        names = {r["name"]}
        if r["kind"] in ("group", "service"):
            names.add(r["group"] if r["kind"] == "group" else r["service"])
        elif r["kind"] == "feature":
            group = r["group"].split("@")[0]
            names.update((r["feature"], f"{group}.{r['feature']}"))
        if name in names:
            out.append(r)
    return out


def not_found(found: list[dict], name: str) -> str:
    """Why nothing matches `name`, with the compiler's did-you-mean in the form it was written."""
    from astra.diagnostics import did_you_mean

    base, at, version = name.partition("@")
    versioned = [r for r in found if r["kind"] in ("group", "service") and r["name"].split("@")[0] == base]
    if at and "." not in version and versioned:
        versions = ", ".join(sorted({r["name"].split("@")[1] for r in versioned}))
        if re.fullmatch(r"v\d+", version):
            return f"`{base}` has no version `{version}`; versions: {versions}"
        return f"`{shown(name)}` is not a version of `{base}`: write `{base}@vN`; versions: {versions}"
    if "." in name:
        forms = [r["name"] if at else f"{r['group'].split('@')[0]}.{r['feature']}"
                 for r in found if r["kind"] == "feature"]
    elif at:
        forms = [r["name"] for r in found if r["kind"] in ("group", "service")]
    else:
        forms = [r["name"].split("@")[0] if r["kind"] != "feature" else r["feature"] for r in found]
    hint = did_you_mean(name, forms)
    return f"nothing named `{shown(name)}` in the project" + (f"; {hint}" if hint else "")


def shown(name: str) -> str:
    """A name as typed, on one line: control characters escaped (`x\\ny`), so an error stays one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def _select(found: list[dict], kinds, owner, tags, deprecated) -> list[dict]:
    out = []
    for r in found:
        if kinds and r["kind"] not in kinds:
            continue
        if owner is not None and owner.lower() not in (r["owner"] or "").lower():
            continue
        if any(t not in r["tags"] for t in tags):
            continue
        if deprecated and not r["deprecated"]:
            continue
        out.append(r)
    return out


# --------------------------------------------------------------------------- commands

FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                      help="text for people, json (a list of records) for programs.")


@click.command("ls")
@PROJECT
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS),
              help="Only definitions of this kind (repeat for several).")
@click.option("--owner", help="Only definitions whose owner contains this text (any case); features have "
              "their group's owner.")
@click.option("--tag", "tags", multiple=True, help="Only definitions with this tag (repeat: all of them); "
              "features have their group's tags.")
@click.option("--deprecated", is_flag=True, help="Only deprecated feature group versions and their features.")
@FORMAT
@ALLOW_UNLOCKED
def ls_cmd(project: Path | None, kinds: tuple[str, ...], owner: str | None, tags: tuple[str, ...],
           deprecated: bool, fmt: str, allow_unlocked: bool) -> None:
    """List what PROJECT (default: ./features) defines: entities, sources, requests, feature
    groups (one line per version), features and services, with owner, tags and description.

    Exit status: 0 (also when the filters leave nothing), 1 for a project that does not compile."""
    proj = load(project, allow_unlocked)
    found = _select(records(proj.plan, proj.path), kinds, owner, tags, deprecated)
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
    elif found:
        click.echo(ls_text(found))
    else:
        click.echo("nothing matches", err=True)


@click.command("show")
@click.argument("name")
@PROJECT
@FORMAT
@ALLOW_UNLOCKED
def show_cmd(name: str, project: Path | None, fmt: str, allow_unlocked: bool) -> None:
    """Describe NAME in PROJECT (default: ./features): an entity, source, request, feature group
    or service (NAME for every version, NAME@vN for one), or a feature (`feature`,
    `group.feature` or `group@vN.feature`): types and nullability, windows, owner, tags,
    description, versions and fingerprints, what it reads and what uses it.

    Exit status: 1 when nothing has that name (with the closest name that exists)."""
    proj = load(project, allow_unlocked)
    found = records(proj.plan, proj.path)
    matches = find(found, name.strip())
    if not matches:
        fail(not_found(found, name.strip()))
    if fmt == "json":
        click.echo(json.dumps(matches, indent=2))
    else:
        click.echo("\n\n".join(show_text(r) for r in matches))
