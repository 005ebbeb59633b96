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
