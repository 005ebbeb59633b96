"""Column-level lineage: a graph from source columns and request fields through features to the
services that return them, and a drawing of the part around one definition as inline SVG.

Nodes are `col:source.column` (`source.*` for a row count, which reads no one column),
`req:request.field`, `feat:group@vN.name` and `svc:name@vN`; an edge goes from what is read to
what reads it.  The drawing is layered left to right (networkx's topological generations and
multipartite layout), with nodes ordered inside a layer by the barycenter of their neighbours so
that edges cross less.
"""

from __future__ import annotations

import math

import networkx as nx
from markupsafe import Markup

from astra.plan import ir

CHAR_W = 7.4  # px per character of the 12px monospace labels
ROW_H = 34
BOX_H = 24
GAP_X = 56
PAD = 12


def lineage_graph(plan: ir.Plan) -> nx.DiGraph:
    """The whole project's lineage."""
    g = nx.DiGraph()
    for s in plan.sources:
        for c, _ in s.columns:
            g.add_node(f"col:{s.name}.{c}", kind="column", label=f"{s.name}.{c}")
    for r in plan.requests:
        for f, _ in r.fields:
            g.add_node(f"req:{r.name}.{f}", kind="request", label=f"{r.name}.{f}")
    for f in plan.features:
        me = f"feat:{f.id}"
        g.add_node(me, kind="feature", label=f.id)
        for n in ir.walk(f.expr):
            if isinstance(n, ir.FeatureRef):
                g.add_edge(f"feat:{n.feature}", me)
            elif isinstance(n, ir.RequestInput):
                g.add_edge(f"req:{n.request}.{n.field}", me)
            elif isinstance(n, ir.AsOf):
                g.add_edge(f"col:{n.key.source}.{n.column}", me)
            elif isinstance(n, ir.Aggregate):
                if n.column is None:
                    g.add_node(f"col:{n.key.source}.*", kind="column", label=f"{n.key.source}.*")
                    g.add_edge(f"col:{n.key.source}.*", me)
                else:
                    g.add_edge(f"col:{n.key.source}.{n.column}", me)
                if n.where is not None:
                    for c in ir.walk(n.where):
                        if isinstance(c, ir.Column):
                            g.add_edge(f"col:{n.key.source}.{c.name}", me)
    for s in plan.services:
        me = f"svc:{s.id}"
        g.add_node(me, kind="service", label=s.id)
        for o in s.outputs:
            g.add_edge(f"feat:{o.feature}", me)
    return g


def neighbourhood(g: nx.DiGraph, focus: list[str]) -> nx.DiGraph:
    """The focus nodes with everything upstream and downstream of them, and only the edges on
    paths into or out of the focus (not, say, an input's edge to a service that also returns it)."""
    up, down = set(focus), set(focus)
    for n in focus:
        if n in g:
            up |= nx.ancestors(g, n)
            down |= nx.descendants(g, n)
    sub = nx.DiGraph()
    sub.add_nodes_from((n, g.nodes[n]) for n in up | down if n in g)
    sub.add_edges_from((a, b) for a, b in g.edges if (a in up and b in up) or (a in down and b in down))
    return sub


def layers(g: nx.DiGraph) -> list[list[str]]:
    """Nodes by layer (a node sits one layer right of its furthest input), each layer ordered by
    barycenter sweeps."""
    order = [sorted(gen, key=lambda n: (g.nodes[n]["kind"], n)) for gen in nx.topological_generations(g)]
    for _ in range(4):
        for rng, near in ((range(1, len(order)), g.predecessors), (range(len(order) - 2, -1, -1), g.successors)):
            for i in rng:
                rank = {n: j for layer in order for j, n in enumerate(layer)}
                order[i].sort(key=lambda n: _barycenter(n, near, rank))
    return order


def _barycenter(n: str, near, rank: dict[str, int]) -> float:
    seen = [rank[m] for m in near(n)]
    return sum(seen) / len(seen) if seen else math.inf


def draw(g: nx.DiGraph, focus: list[str], href) -> Markup:
    """The lineage around `focus` as an inline SVG; `href(node)` gives a node's link (or None)."""
    sub = neighbourhood(g, focus)
    if sub.number_of_nodes() == 0:
        return Markup("")
    order = layers(sub)
    pos = nx.multipartite_layout(sub, subset_key=dict(enumerate(order)))
    rows = _grid_rows(pos, order)
    widths = [max(len(sub.nodes[n]["label"]) for n in layer) * CHAR_W + 20 for layer in order]
    xs = [PAD + sum(widths[:i]) + GAP_X * i for i in range(len(order))]
    top = min(rows.values())
    box = {}
    for i, layer in enumerate(order):
        for n in layer:
            box[n] = (xs[i], PAD + (rows[n] - top) * ROW_H, widths[i])
    width = xs[-1] + widths[-1] + PAD
    height = PAD * 2 + (max(rows.values()) - top) * ROW_H + BOX_H
    parts = [Markup('<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
                    'viewBox="0 0 {w:.0f} {h:.0f}" role="img" aria-label="lineage">').format(w=width, h=height),
             Markup('<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
                    'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>')]
    for a, b in sorted(sub.edges):
        ax, ay, aw = box[a]
        bx, by, _ = box[b]
        x1, y1, x2, y2 = ax + aw, ay + BOX_H / 2, bx, by + BOX_H / 2
        mid = (x1 + x2) / 2
        cls = "edge hot" if a in focus or b in focus else "edge"
        parts.append(Markup('<path class="{c}" d="M{x1:.1f},{y1:.1f} C{m:.1f},{y1:.1f} {m:.1f},{y2:.1f} '
                            '{x2:.1f},{y2:.1f}" marker-end="url(#arrow)"/>')
                     .format(c=cls, x1=x1, y1=y1, x2=x2, y2=y2, m=mid))
    for n in sub.nodes:
        x, y, w = box[n]
        data = sub.nodes[n]
        cls = f"node {data['kind']}" + (" focus" if n in focus else "")
        shape = Markup('<g class="{c}"><title>{k}: {t}</title><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                       'height="{h}" rx="{r}"/><text x="{tx:.1f}" y="{ty:.1f}">{t}</text></g>').format(
            c=cls, k=data["kind"], t=data["label"], x=x, y=y, w=w, h=BOX_H, r=12 if data["kind"] == "column" else 4,
            tx=x + 10, ty=y + BOX_H / 2 + 4)
        link = href(n) if n not in focus else None
        parts.append(Markup('<a href="{u}">{s}</a>').format(u=link, s=shape) if link else shape)
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _grid_rows(pos: dict, order: list[list[str]]) -> dict[str, float]:
    """networkx's positions back on a grid of rows: it centres each layer and rescales all of
    them by one factor, so a row is the gap between neighbours of the tallest layer."""
    tallest = max(order, key=len)
    if len(tallest) < 2:
        return {n: 0.0 for layer in order for n in layer}
    unit = abs(pos[tallest[1]][1] - pos[tallest[0]][1]) or 1.0
    return {n: round(float(p[1]) / unit * 2) / 2 for n, p in pos.items()}
