"""A plan's vector indexes: built from the checked `index` declarations, found by name, described."""

from __future__ import annotations

from astra.plan import ir
from astra.plan.fingerprint import digest

DEFAULT_METRIC, DEFAULT_KIND = "cosine", "exact"


def vector_indexes(syms) -> tuple[ir.VectorIndex, ...] | None:
    """The valid index declarations (None when there are none, so plans without any keep their data)."""
    out = []
    for name, d in sorted(syms.indexes.items()):
        columns = {f.name.value: f.type.type for f in syms.sources[d.source.value].decl.columns}
        node = ir.VectorIndex(name=name, source=d.source.value, column=d.column.value,
                              dim=columns[d.column.value].size, metric=d.metric.value if d.metric else DEFAULT_METRIC,
                              kind=d.kind.value if d.kind else DEFAULT_KIND, filters=tuple(f.value for f in d.filters),
                              owner=d.meta.owner, description=d.meta.description, span=d.name.span)
        out.append(node)
    return tuple(out) or None


def index_fingerprint(plan: ir.Plan, x: ir.VectorIndex) -> str:
    """What decides an index's answers: its source's schema, column, metric, kind and filters."""
    from astra.plan.fingerprint import source_schema

    return digest({"source": source_schema(plan.source(x.source)), "column": x.column, "metric": x.metric,
                   "kind": x.kind, "filters": list(x.filters)})


def find(plan: ir.Plan, name: str) -> ir.VectorIndex:
    """The index called `name`; KeyError listing the others when there is none."""
    for x in plan.indexes or ():
        if x.name == name:
            return x
    have = ", ".join(x.name for x in plan.indexes or ()) or "none"
    raise KeyError(f"unknown index `{name}`; indexes: {have}")


def describe(plan: ir.Plan, x: ir.VectorIndex) -> dict:
    """The declaration as users read it (JSON-ready)."""
    src = plan.source(x.source)
    (key, key_type), = plan.entity(src.entities[0]).keys
    return {"name": x.name, "source": x.source, "column": x.column, "dim": x.dim, "metric": x.metric,
            "kind": x.kind, "filters": list(x.filters), "key": {"name": key, "type": str(key_type)},
            "fingerprint": x.fingerprint}


def explain_index(plan: ir.Plan, x: ir.VectorIndex) -> str:
    """`astra explain INDEX`: what the index holds and how it answers."""
    d = describe(plan, x)
    lines = [f"index {x.name}", f"  on:          {x.source}.{x.column} (vector<float32, {x.dim}>), snapshot keyed by "
             f"{d['key']['name']}: {d['key']['type']}",
             f"  metric:      {x.metric}", f"  kind:        {x.kind}",
             f"  filters:     {', '.join(x.filters) or 'none'}",
             f"  fingerprint: {x.fingerprint}",
             "  served:      POST /v1/neighbors (docs/vectors.md); a search at `at` sees the versions written "
             "strictly before it"]
    if x.description:
        lines.insert(1, f"  {x.description}")
    return "\n".join(lines)
