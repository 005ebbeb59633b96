"""Version fingerprints.

A group version's *data* fingerprint hashes everything that decides its values: each feature's
typed IR, default and declared type, the schemas of the sources it reads (columns, time, keys) and
the data fingerprints of the groups it references.  Its *metadata* fingerprint hashes owner,
description, tags, deprecation and feature descriptions.  Both come from the canonical data form
of the IR (`astra.plan.serialize`), which has no spans or comments, so layout never matters.
"""

from __future__ import annotations

import hashlib
import json

import attrs
import networkx as nx

from astra.plan import ir
from astra.plan.serialize import to_data


def digest(data) -> str:
    """A short, stable hash of JSON-compatible data."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def feature_data(f: ir.Feature, plan: ir.Plan) -> dict:
    """What decides one feature's values, as plain data."""
    sources = sorted({n.key.source for n in ir.walk(f.expr) if isinstance(n, ir.Aggregate | ir.AsOf)})
    return {
        "type": str(f.type), "expr": to_data(f.expr), "default": f.default,
        "sources": {s: source_schema(plan.source(s)) for s in sources},
    }


def source_schema(s: ir.Source) -> dict:
    """What of a source decides feature values: kind, time column, columns, keys."""
    return {"kind": s.kind, "time": s.time, "columns": [[c, str(t)] for c, t in s.columns],
            "keys": {e: list(k.columns) for e, k in zip(s.entities, s.keys)}}


def fingerprint_plan(plan: ir.Plan) -> ir.Plan:
    """Fill in group data/metadata fingerprints and service fingerprints, dependencies first."""
    by_id = {g.id: g for g in plan.groups}
    graph = nx.DiGraph()
    for g in plan.groups:
        graph.add_node(g.id)
        for fid in g.features:
            for n in ir.walk(plan.feature(fid).expr):
                if isinstance(n, ir.FeatureRef) and n.feature.split(".")[0] != g.id:
                    graph.add_edge(n.feature.split(".")[0], g.id)
    done: dict[str, ir.Group] = {}
    order = nx.topological_sort(graph) if nx.is_directed_acyclic_graph(graph) else sorted(by_id)
    for gid in order:
        g = by_id[gid]
        feats = [plan.feature(fid) for fid in g.features]
        parents = sorted(graph.predecessors(gid)) if gid in graph else []
        data = {
            "entity": [[k, str(t)] for k, t in plan.entity(g.entity).keys],
            "features": {f.name: feature_data(f, plan) for f in feats},
            "parents": {p: done[p].data_fingerprint if p in done else "" for p in parents},
        }
        meta = {"owner": g.owner, "description": g.description, "tags": list(g.tags), "deprecated": g.deprecated,
                "features": {f.name: f.description for f in feats}}
        done[gid] = attrs.evolve(g, data_fingerprint=digest(data), meta_fingerprint=digest(meta))
    groups = tuple(done.get(g.id, g) for g in plan.groups)
    services = tuple(
        attrs.evolve(s, fingerprint=digest({
            "outputs": [[o.name, o.feature] for o in s.outputs],
            "groups": sorted({done[o.feature.split(".")[0]].data_fingerprint for o in s.outputs}),
            "requests": list(s.requests),
        }))
        for s in plan.services
    )
    return attrs.evolve(plan, groups=groups, services=services)
