"""The dependency DAG as DOT or Mermaid text: sources feed aggregations feed features."""

from __future__ import annotations

from astra.plan import ir


def edges(features) -> list[tuple[str, str]]:
    """(from, to) pairs: features, sources and requests feeding each feature."""
    out = []
    for f in features:
        for n in ir.walk(f.expr):
            if isinstance(n, ir.FeatureRef):
                out.append((n.feature, f.id))
            elif isinstance(n, ir.Aggregate | ir.AsOf):
                out.append((f"source:{n.key.source}", f.id))
            elif isinstance(n, ir.RequestInput):
                out.append((f"request:{n.request}", f.id))
    return sorted(set(out))


def to_dot(features) -> str:
    """The DAG as Graphviz DOT."""
    lines = ["digraph astra {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    for f in features:
        lines.append(f'  "{f.id}" [label="{f.id}\\n{f.type}"];')
    for a, b in edges(features):
        if ":" in a:
            lines.append(f'  "{a}" [shape=cylinder, label="{a.split(":", 1)[1]}"];')
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines)


def to_mermaid(features) -> str:
    """The DAG as a Mermaid flowchart."""
    ids: dict[str, str] = {}

    def node(name: str) -> str:
        if name not in ids:
            ids[name] = f"n{len(ids)}"
        return ids[name]

    lines = ["flowchart LR"]
    for f in features:
        lines.append(f'  {node(f.id)}["{f.id}: {f.type}"]')
    for a, b in edges(features):
        if ":" in a:
            lines.append(f'  {node(a)}[("{a.split(":", 1)[1]}")]')
        lines.append(f"  {node(a)} --> {node(b)}")
    return "\n".join(dict.fromkeys(lines))


def lineage(plan: ir.Plan) -> dict[str, dict]:
    """Per feature: the features it reads, the source columns it reads (key and time columns
    included: they decide which rows are visible), and the request fields it reads."""
    out = {}
    for f in plan.features:
        deps, columns, requests = set(), set(), set()
        for n in ir.walk(f.expr):
            if isinstance(n, ir.FeatureRef):
                deps.add(n.feature)
            elif isinstance(n, ir.RequestInput):
                requests.add(f"{n.request}.{n.field}")
            elif isinstance(n, ir.Aggregate | ir.AsOf):
                src = plan.source(n.key.source)
                used = {*n.key.columns, src.time}
                if n.column is not None:
                    used.add(n.column)
                if isinstance(n, ir.Aggregate) and n.where is not None:
                    used |= {c.name for c in ir.walk(n.where) if isinstance(c, ir.Column)}
                columns |= {f"{src.name}.{c}" for c in used}
        out[f.id] = {"depends_on": sorted(deps), "columns": sorted(columns), "requests": sorted(requests)}
    return out
