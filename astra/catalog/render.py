"""Rendering the catalog: one jinja2 environment (autoescape on, undefined names an error), one
context per page, the search index as a script, and the static files.

Pages are written with relative links only and the search index is a script assigning a global
(`window.ASTRA_SEARCH`), not JSON to fetch: a browser opening the site from the file system
allows neither fetch nor modules."""

from __future__ import annotations

import json
from importlib import resources

import jinja2
from markupsafe import Markup, escape

from astra.catalog import changes, lineage, windows
from astra.catalog.model import Catalog
from astra.catalog.source_view import file_links, highlight
from astra.catalog.stats import Stats
from astra.plan import ir
from astra.plan.fingerprint import feature_fingerprints
from astra.plan.pretty import duration
from astra.plan.pretty import expr as pretty

STATIC = ("style.css", "search.js")
UP = "../"


def environment() -> jinja2.Environment:
    """The templates, autoescaped: every value a template prints is escaped unless it is
    `Markup` built here from escaped parts (SVG, highlighted source)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("astra.catalog", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["pct"] = lambda x: f"{x:.1%}"
    env.filters["num"] = lambda x: f"{x:,}"
    env.filters["ticks"] = ticks
    return env


def ticks(text: str) -> Markup:
    """A sentence whose `quoted` parts are code, escaped: "added `x`" -> added <code>x</code>."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: show the text as it is
        return escape(text)
    return Markup("").join(Markup("<code>{0}</code>").format(p) if i % 2 else escape(p) for i, p in enumerate(parts))


def static_files() -> dict[str, str]:
    """The site's hand-written assets, by name."""
    base = resources.files("astra.catalog") / "static"
    return {name: (base / name).read_text(encoding="utf-8") for name in STATIC}


class Pages:
    """Builds every page's HTML from a catalog (and statistics, when there are any)."""

    def __init__(self, cat: Catalog, stats: dict[str, Stats | str] | None, stats_note: str = ""):
        self.cat = cat
        self.plan = cat.plan
        self.stats = stats
        self.stats_note = stats_note
        self.env = environment()
        self.graph = lineage.lineage_graph(cat.plan)
        self.fps = feature_fingerprints(cat.plan)
        self.title = cat.root.resolve().name or "project"
        self._links: dict[str, list] = {}

    def links(self, module_path: str) -> list:
        """A file's linked names, found once however many pages show its lines."""
        if module_path not in self._links:
            self._links[module_path] = file_links(self.cat, module_path)
        return self._links[module_path]

    # ------------------------------------------------------------------ helpers for the templates

    def href(self, kind: str, key: str, anchor: str = "", prefix: str = UP) -> str | None:
        url = self.cat.url(kind, key, anchor)
        return None if url is None else prefix + url

    def node_href(self, node: str) -> str | None:
        kind, _, key = node.partition(":")
        if kind == "feat":
            return self.href("feature", key)
        if kind == "svc":
            return self.href("service", key)
        if kind in ("col", "req"):
            owner, _, name = key.partition(".")
            if kind == "col":
                return self.href("source", owner, "" if name == "*" else f"col-{name}")
            return self.href("request", owner, f"field-{name}")
        return None

    def svg(self, focus: list[str]) -> Markup:
        return lineage.draw(self.graph, focus, self.node_href)

    def snippet(self, span) -> dict | None:
        """The declaration's lines with links, and where it is written."""
        if span is None or span.file not in self.cat.sources or span.line < 1:
            return None
        return {"code": highlight(self.cat, span.file, span.line, span.end_line, links=self.links(span.file)),
                "where": f"{self.cat.files[span.file]}:{span.line}",
                "href": self.href("file", span.file, f"L{span.line}")}

    def decl_span(self, kind: str, key):
        syms = self.cat.syms
        decl = {"entity": syms.entities, "source": {k: b.decl for k, b in syms.sources.items()},
                "request": syms.requests, "group": syms.groups, "service": syms.services}[kind].get(key)
        return None if decl is None else decl.span

    def feature_row(self, f: ir.Feature) -> dict:
        return {"f": f, "href": self.href("feature", f.id), "type": str(f.type), "optional": f.type.optional,
                "window": windows.effective_window(self.plan, f), "expr": pretty(f.expr)}

    def readers(self, node: str) -> list[ir.Feature]:
        return [self.plan.feature(n[5:]) for n in sorted(self.graph.successors(node)) if n.startswith("feat:")] \
            if node in self.graph else []

    # ------------------------------------------------------------------ pages

    def render(self, template: str, path: str, **context) -> str:
        prefix = "" if "/" not in path else UP
        return self.env.get_template(template).render(
            page=path, prefix=prefix, site_title=self.title, h=self, **context)

    def all_pages(self):
        """(path, html) for every page of the site."""
        yield "index.html", self.index()
        for e in self.plan.entities:
            yield self.cat.url("entity", e.name), self.entity(e)
        for s in self.plan.sources:
            yield self.cat.url("source", s.name), self.source(s)
        for r in self.plan.requests:
            yield self.cat.url("request", r.name), self.request(r)
        for g in self.plan.groups:
            yield self.cat.url("group", g.id), self.group(g)
        for f in self.plan.features:
            yield self.cat.url("feature", f.id), self.feature(f)
        for s in self.plan.services:
            yield self.cat.url("service", s.id), self.service(s)
        for shown in self.cat.files:
            yield self.cat.url("file", shown), self.file(shown)

    def index(self) -> str:
        groups = sorted(self.plan.groups, key=lambda g: (g.name, g.version))
        return self.render("index.html", "index.html", groups=groups,
                           entities=self.plan.entities, sources=self.plan.sources, requests=self.plan.requests,
                           services=sorted(self.plan.services, key=lambda s: (s.name, s.version)),
                           files=sorted(self.cat.files.items(), key=lambda kv: kv[1]),
                           request_about={name: r.meta.description for name, r in self.cat.syms.requests.items()},
                           n_features=len(self.plan.features), stats_note=self.stats_note)

    def entity(self, e: ir.Entity) -> str:
        sources = [(s, s.keys[s.entities.index(e.name)].columns) for s in self.plan.sources if e.name in s.entities]
        groups = [g for g in self.plan.groups if g.entity == e.name]
        services = [s for s in self.plan.services if e.name in s.entities]
        return self.render("entity.html", self.cat.url("entity", e.name), e=e, sources=sources, groups=groups,
                           services=services, decl=self.snippet(self.decl_span("entity", e.name)))

    def source(self, s: ir.Source) -> str:
        columns = list(s.columns)
        if s.time not in dict(columns):
            columns.append((s.time, "timestamp"))
        rows = [{"name": c, "type": str(t), "optional": getattr(t, "optional", False),
                 "time": c == s.time, "key_of": [e for e, k in zip(s.entities, s.keys) if c in k.columns],
                 "readers": self.readers(f"col:{s.name}.{c}")} for c, t in columns]
        counted = self.readers(f"col:{s.name}.*")
        focus = [n for n in self.graph if n.startswith(f"col:{s.name}.")]
        return self.render("source.html", self.cat.url("source", s.name), s=s, rows=rows, counted=counted,
                           staleness=duration(s.max_staleness) if s.max_staleness is not None else None,
                           svg=self.svg(focus), decl=self.snippet(self.decl_span("source", s.name)))

    def request(self, r: ir.Request) -> str:
        decl = self.cat.syms.requests.get(r.name)
        rows = [{"name": f, "type": str(t), "optional": t.optional, "readers": self.readers(f"req:{r.name}.{f}")}
                for f, t in r.fields]
        services = [s for s in self.plan.services if r.name in s.requests]
        focus = [f"req:{r.name}.{f}" for f, _ in r.fields]
        return self.render("request.html", self.cat.url("request", r.name), r=r, rows=rows, services=services,
                           description=decl.meta.description if decl else None,
                           owner=decl.meta.owner if decl else None,
                           svg=self.svg(focus), decl=self.snippet(self.decl_span("request", r.name)))

    def group(self, g: ir.Group) -> str:
        feats = [self.feature_row(self.plan.feature(fid)) for fid in g.features]
        services = [s for s in self.plan.services if any(o.feature.startswith(g.id + ".") for o in s.outputs)]
        return self.render("group.html", self.cat.url("group", g.id), g=g, features=feats, services=services,
                           status=changes.release_status(g, self.cat.lock),
                           versions=changes.group_history(self.plan, g.name, self.cat.lock),
                           removed=changes.removed_versions(self.plan, g.name, self.cat.lock),
                           svg=self.svg([f"feat:{fid}" for fid in g.features]),
                           decl=self.snippet(self.decl_span("group", (g.name, g.version))))

    def feature(self, f: ir.Feature) -> str:
        g = self.cat.group(f"{f.group}@v{f.version}")
        node = f"feat:{f.id}"
        depends = [self.plan.feature(n[5:]) for n in sorted(self.graph.predecessors(node)) if n.startswith("feat:")]
        served = [(s, o.name) for s in self.plan.services for o in s.outputs if o.feature == f.id]
        stats = None if self.stats is None else self.stats.get(f.id)
        return self.render("feature.html", self.cat.url("feature", f.id), f=f, g=g, row=self.feature_row(f),
                           fingerprint=self.fps[f.id], inputs=windows.inputs(f), depends=depends,
                           used_by=self.readers(node), served=served, stats=stats,
                           stats_note=self.stats_note, is_stats=isinstance(stats, Stats),
                           versions=changes.feature_history(self.plan, f, self.fps, self.cat.lock),
                           default=None if f.default is None else pretty(ir.Const(value=f.default, type=f.type)),
                           svg=self.svg([node]), decl=self.snippet(f.span if f.span.line else None),
                           hist=histogram_svg(stats) if isinstance(stats, Stats) else Markup(""))

    def service(self, s: ir.Service) -> str:
        outputs = [(o, self.plan.feature(o.feature)) for o in s.outputs]
        keys = [(e, self.plan.entity(e).keys) for e in s.entities]
        return self.render("service.html", self.cat.url("service", s.id), s=s, outputs=outputs, keys=keys,
                           versions=changes.service_history(self.plan, s.name),
                           svg=self.svg([f"svc:{s.id}"]),
                           decl=self.snippet(self.decl_span("service", (s.name, s.version))))

    def file(self, shown: str) -> str:
        return self.render("file.html", self.cat.url("file", shown), name=self.cat.files[shown],
                           code=highlight(self.cat, shown, line_anchors=True, links=self.links(shown)))

    # ------------------------------------------------------------------ search

    def search_index(self) -> str:
        """The search entries as a script: names, descriptions, owners and tags of everything."""
        items = []

        def add(kind, key, name, description=None, owner=None, tags=(), extra=""):
            items.append({"kind": kind, "name": name, "description": description or "", "owner": owner or "",
                          "tags": list(tags), "url": self.cat.url(kind, key), "extra": extra})

        for e in self.plan.entities:
            add("entity", e.name, e.name, e.description, e.owner, extra=" ".join(k for k, _ in e.keys))
        for s in self.plan.sources:
            add("source", s.name, s.name, s.description, s.owner, extra=" ".join(c for c, _ in s.columns))
        for r in self.plan.requests:
            decl = self.cat.syms.requests.get(r.name)
            add("request", r.name, r.name, decl.meta.description if decl else None,
                decl.meta.owner if decl else None, extra=" ".join(f for f, _ in r.fields))
        for g in self.plan.groups:
            add("group", g.id, g.id, g.description, g.owner, g.tags, "deprecated" if g.deprecated else "")
        for f in self.plan.features:
            g = self.cat.group(f"{f.group}@v{f.version}")
            add("feature", f.id, f.id, f.description, g.owner, g.tags, str(f.type))
        for s in self.plan.services:
            add("service", s.id, s.id, s.description, s.owner)
        body = json.dumps(items, ensure_ascii=True, separators=(",", ":"))
        return f"window.ASTRA_SEARCH = {body};\n"


def histogram_svg(stats: Stats) -> Markup:
    """Bars of a histogram (or of the most frequent values) as inline SVG, one `<title>` each."""
    if not stats.bars:
        return Markup("")
    top = max(c for _, c in stats.bars) or 1
    if stats.bars_kind == "histogram":
        w, h, bw = 480, 120, 480 / len(stats.bars)
        parts = [Markup('<svg class="histogram" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h2}" '
                        'viewBox="0 0 {w} {h2}" role="img" aria-label="histogram">').format(w=w, h2=h + 18)]
        for i, (label, count) in enumerate(stats.bars):
            bh = h * count / top
            parts.append(Markup('<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}"><title>{t}: {c}'
                                '</title></rect>').format(x=i * bw + 1, y=h - bh, bw=max(bw - 2, 1), bh=bh,
                                                          t=label, c=f"{count:,}"))
        first, last = stats.bars[0][0], stats.bars[-1][0]
        parts.append(Markup('<text x="0" y="{y}" class="axis">{a}</text><text x="{w}" y="{y}" class="axis" '
                            'text-anchor="end">{b}</text>').format(y=h + 14, w=w, a=_low(first), b=_high(last)))
    else:
        w, row = 480, 20
        h = row * len(stats.bars)
        parts = [Markup('<svg class="histogram values" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
                        'viewBox="0 0 {w} {h}" role="img" aria-label="most frequent values">').format(w=w, h=h)]
        for i, (label, count) in enumerate(stats.bars):
            bw = 300 * count / top
            text = label if len(label) <= 22 else label[:21] + "…"
            parts.append(Markup('<text x="0" y="{ty}" class="axis">{t}</text><rect x="160" y="{y}" width="{bw:.1f}" '
                                'height="{bh}"><title>{full}: {c}</title></rect><text x="{cx:.1f}" y="{ty}" '
                                'class="axis">{c}</text>').format(ty=i * row + 14, t=text, y=i * row + 3, bw=bw,
                                                                  bh=row - 6, full=label, c=f"{count:,}",
                                                                  cx=160 + bw + 6))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _low(label: str) -> str:
    return label[1:].split(", ")[0] if label.startswith("[") else label


def _high(label: str) -> str:
    return label.rstrip(")]").split(", ")[-1] if label.startswith("[") else label
