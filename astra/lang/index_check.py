"""Checks of `index` declarations: a nearest-neighbour index over a snapshot source's vector column."""

from __future__ import annotations

from astra.diagnostics import Collector, Label, did_you_mean, rename_fix
from astra.lang import ast

# mahalanobis is fitted from data: `astra fit --index` (astra.plan.index_fit)
METRICS = ("cosine", "euclidean", "manhattan", "inner_product", "mahalanobis")
KINDS = ("exact", "hnsw")
FILTER_TYPES = ("string", "int32", "int64", "bool")  # metadata an index filters on: exact-match values
SETTINGS = ("m", "ef_construction", "ef_search")  # an hnsw graph's (astra.vectors.HnswParams), 2 to 4096
MEMORY = "memory_limit_mib"  # either kind: the most the built index may hold, in MiB
MAX_MEMORY_MIB = 1 << 24  # 16 TiB


def check_indexes(indexes: dict[tuple[str, int], ast.VectorIndex], sources: dict, entities: dict[str, ast.Entity],
                  diags: Collector) -> dict[tuple[str, int], ast.VectorIndex]:
    """The valid index declarations; each broken rule is reported where it was written."""
    return {name: decl for name, decl in indexes.items() if _check(decl, sources, entities, diags)}


def _check(d: ast.VectorIndex, sources: dict, entities: dict[str, ast.Entity], diags: Collector) -> bool:
    ok = True
    if d.metric is not None and d.metric.value not in METRICS:
        diags.error("E0903", f"unknown index metric `{d.metric.value}`", d.metric.span, label="not a metric",
                    help=did_you_mean(d.metric.value, METRICS) or "metrics are " + ", ".join(METRICS),
                    fix=rename_fix(d.metric.value, d.metric.span, METRICS))
        ok = False
    for name, value in d.settings:
        if name.value == MEMORY:
            if not 1 <= value <= MAX_MEMORY_MIB:
                diags.error("E0903", f"`{MEMORY}` must be from 1 to {MAX_MEMORY_MIB:,}, not {value}", name.span)
                ok = False
        elif name.value not in SETTINGS:
            known = (*SETTINGS, MEMORY)
            diags.error("E0903", f"unknown index setting `{name.value}`", name.span, label="not a setting",
                        help=did_you_mean(name.value, known) or "settings: " + ", ".join(known),
                        fix=rename_fix(name.value, name.span, known))
            ok = False
        elif d.kind is None or d.kind.value != "hnsw":
            diags.error("E0903", f"`{name.value}` is a setting of the hnsw kind; this index is "
                        f"`{d.kind.value if d.kind else 'exact'}`", name.span,
                        help="the exact kind scans every row and has no graph to tune: set `kind hnsw`, "
                             "or drop the setting")
            ok = False
        elif not 2 <= value <= 4096:
            diags.error("E0903", f"`{name.value}` must be from 2 to 4096, not {value}", name.span)
            ok = False
    if d.kind is not None and d.kind.value not in KINDS:
        diags.error("E0903", f"unknown index kind `{d.kind.value}`", d.kind.span, label="not an index kind",
                    help="kinds are `exact` (a scan: exact answers) and `hnsw` (a graph: fast, approximate)",
                    fix=rename_fix(d.kind.value, d.kind.span, KINDS))
        ok = False
    bound = sources.get(d.source.value)
    if bound is None:
        diags.error("E0901", f"unknown source `{d.source.value}`", d.source.span, label="not a source",
                    help=did_you_mean(d.source.value, sources), fix=rename_fix(d.source.value, d.source.span, sources))
        return False
    src = bound.decl
    if src.kind != "snapshot":
        diags.error("E0901", f"`{d.source.value}` is an events source; an index is built over a snapshot source",
                    d.source.span, notes=(Label(span=src.name.span, message="declared here"),),
                    help="index the latest vector of each key: declare the vectors in a `snapshot` source")
        ok = False
    elif len(src.entities) != 1 or len(getattr(entities.get(src.entities[0].entity.value), "keys", ())) != 1:
        diags.error("E0901", f"an index needs a source keyed by one entity with one key; `{d.source.value}` is not",
                    d.source.span, notes=(Label(span=src.name.span, message="declared here"),))
        ok = False
    columns = {f.name.value: f for f in src.columns}
    col = columns.get(d.column.value)
    if col is None:
        diags.error("E0902", f"source `{d.source.value}` has no column `{d.column.value}`", d.column.span,
                    label="not a column", help=did_you_mean(d.column.value, columns),
                    fix=rename_fix(d.column.value, d.column.span, columns))
        ok = False
    elif col.type.type.name != "vector":
        diags.error("E0902", f"column `{d.column.value}` is `{col.type.type}`, not a vector", d.column.span,
                    notes=(Label(span=col.span, message="declared here"),),
                    help="an index is built over a `vector<float32, N>` column")
        ok = False
    seen: dict[str, ast.Name] = {}
    for f in d.filters:
        fc = columns.get(f.value)
        if f.value in seen:
            diags.error("E0904", f"filter column `{f.value}` is given twice", f.span,
                        notes=(Label(span=seen[f.value].span, message="first given here"),))
            ok = False
        elif fc is None:
            diags.error("E0904", f"source `{d.source.value}` has no column `{f.value}` to filter on", f.span,
                        label="not a column", help=did_you_mean(f.value, columns),
                        fix=rename_fix(f.value, f.span, columns))
            ok = False
        elif fc.type.type.name not in FILTER_TYPES or f.value == src.time.value:
            diags.error("E0904", f"cannot filter on `{f.value}`: it is `{fc.type.type}`", f.span,
                        notes=(Label(span=fc.span, message="declared here"),),
                        help="filters match exact values: use a " + ", ".join(FILTER_TYPES) + " column")
            ok = False
        seen[f.value] = f
    return ok

