"""Version fingerprints.

A feature's fingerprint hashes everything that decides its values: its typed IR, default and
declared type, the schemas of the sources it reads (columns, time, keys), and the fingerprints of
the features it reads.  A group version's *data* fingerprint hashes its entity's keys and its
features' fingerprints; its *metadata* fingerprint hashes owner, description, tags, deprecation
and feature descriptions.  All come from the canonical data form of the IR
(`astra.plan.serialize`), which has no spans or comments, so layout never matters, and a change
to one feature moves only the features (and groups) that read it.
"""

from __future__ import annotations

import hashlib
import json

import attrs

from astra.plan import ir
from astra.plan.serialize import to_data


def digest(data) -> str:
    """A short, stable hash of JSON-compatible data."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reads(f: ir.Feature) -> list[str]:
    """The ids of the features `f` reads directly."""
    return sorted({n.feature for n in ir.walk(f.expr) if isinstance(n, ir.FeatureRef)})


def feature_data(f: ir.Feature, plan: ir.Plan) -> dict:
    """What decides one feature's own values, as plain data (dependencies by id)."""
    sources = sorted({n.key.source for n in ir.walk(f.expr) if isinstance(n, ir.Aggregate | ir.AsOf)})
    return {
        "type": str(f.type), "expr": to_data(f.expr), "default": f.default,
        "sources": {s: source_schema(plan.source(s)) for s in sources},
    }


def source_schema(s: ir.Source) -> dict:
    """What of a source decides feature values: kind, time column, columns, keys."""
    return {"kind": s.kind, "time": s.time, "columns": [[c, str(t)] for c, t in s.columns],
            "keys": {e: list(k.columns) for e, k in zip(s.entities, s.keys)}}


def feature_fingerprints(plan: ir.Plan) -> dict[str, str]:
    """Every feature's fingerprint, its dependencies' fingerprints folded in (features are in
    topological order, so each dependency is done first)."""
    out: dict[str, str] = {}
    for f in plan.features:
        out[f.id] = digest({**feature_data(f, plan), "reads": {r: out.get(r, "") for r in reads(f)}})
    return out


def fingerprint_plan(plan: ir.Plan) -> ir.Plan:
    """Fill in group data/metadata fingerprints and service fingerprints."""
    fps = feature_fingerprints(plan)
    groups = []
    for g in plan.groups:
        feats = [plan.feature(fid) for fid in g.features]
        data = {"entity": [[k, str(t)] for k, t in plan.entity(g.entity).keys],
                "features": {f.name: fps[f.id] for f in feats}}
        meta = {"owner": g.owner, "description": g.description, "tags": list(g.tags), "deprecated": g.deprecated,
                "features": {f.name: f.description for f in feats}}
        groups.append(attrs.evolve(g, data_fingerprint=digest(data), meta_fingerprint=digest(meta)))
    by_id = {g.id: g for g in groups}
    services = tuple(
        attrs.evolve(s, fingerprint=digest({
            "outputs": [[o.name, o.feature] for o in s.outputs],
            "groups": sorted({by_id[o.feature.split(".")[0]].data_fingerprint for o in s.outputs}),
            "requests": list(s.requests),
        }))
        for s in plan.services
    )
    plan = attrs.evolve(plan, groups=tuple(groups), services=services)
    if plan.indexes:
        from astra.plan.indexes import built_fingerprint

        plan = attrs.evolve(plan, indexes=tuple(attrs.evolve(x, fingerprint=built_fingerprint(plan, x))
                                                for x in plan.indexes))
    return plan
