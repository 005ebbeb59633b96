"""`GET /v1/registry`: what the server can answer, from the plan: entities, sources, requests,
groups (every version, with owners, descriptions, types, deprecations and fingerprints) and
services (their versions, keys and outputs)."""

from __future__ import annotations

from astra.plan import ir


def _cols(cols) -> list[dict]:
    return [{"name": n, "type": str(t)} for n, t in cols]


def registry(plan: ir.Plan) -> dict:
    """The registry document (JSON-ready)."""
    versions: dict[str, list[int]] = {}
    for s in plan.services:
        versions.setdefault(s.name, []).append(s.version)
    group_versions: dict[str, list[int]] = {}
    for g in plan.groups:
        group_versions.setdefault(g.name, []).append(g.version)
    deprecated = {g.id: g.deprecated for g in plan.groups if g.deprecated}
    services = []
    for s in plan.services:
        keys: list[dict] = []
        for e in s.entities:
            for k, t in plan.entity(e).keys:
                if all(k != x["name"] for x in keys):
                    keys.append({"name": k, "type": str(t)})
        pinned = sorted({o.feature.split(".", 1)[0] for o in s.outputs})
        services.append({
            "name": s.name, "version": s.version, "fingerprint": s.fingerprint, "owner": s.owner,
            "description": s.description, "entities": list(s.entities), "keys": keys, "requests": list(s.requests),
            "groups": pinned, "deprecated": [f"{g}: {deprecated[g]}" for g in pinned if g in deprecated],
            "features": [{"name": o.name, "feature": o.feature, "type": str(plan.feature(o.feature).type)}
                         for o in s.outputs]})
    return {
        "entities": [{"name": e.name, "keys": _cols(e.keys), "owner": e.owner, "description": e.description}
                     for e in plan.entities],
        "sources": [{"name": s.name, "kind": s.kind, "time": s.time, "columns": _cols(s.columns),
                     "entities": list(s.entities), "max_staleness_us": s.max_staleness, "owner": s.owner,
                     "description": s.description} for s in plan.sources],
        "requests": [{"name": r.name, "fields": _cols(r.fields)} for r in plan.requests],
        "groups": [{"name": g.name, "version": g.version, "entity": g.entity, "owner": g.owner,
                    "description": g.description, "tags": list(g.tags), "deprecated": g.deprecated,
                    "data_fingerprint": g.data_fingerprint, "meta_fingerprint": g.meta_fingerprint,
                    "features": [{"name": (f := plan.feature(fid)).name, "type": str(f.type), "default": f.default,
                                  "description": f.description} for fid in g.features]}
                   for g in plan.groups],
        "services": services,
        "versions": {"services": versions, "groups": group_versions},
    }
