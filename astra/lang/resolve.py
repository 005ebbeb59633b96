"""Name resolution: one symbol table for a whole project, with duplicates and bad declarations reported.

Checks here concern declarations only (entities, sources, requests, groups, services); expressions
are checked in `astra.lang.check`.
"""

from __future__ import annotations

import attrs

from astra.diagnostics import Collector, Edit, Label, did_you_mean, insert_at, rename_fix
from astra.lang import ast
from astra.lang.experiments import check_experiments
from astra.lang.index_check import check_indexes
from astra.lang.types import FLOAT32, TIMESTAMP, Type


@attrs.frozen
class BoundSource:
    """A source with its columns (the time column included) and its key columns per entity."""

    decl: ast.Source
    columns: dict[str, Type]
    keys: dict[str, tuple[str, ...]]  # entity name -> source columns aligned with the entity's keys


@attrs.define
class Symbols:
    """Every declaration of a project by name (groups and services by name and version)."""

    entities: dict[str, ast.Entity] = attrs.Factory(dict)
    sources: dict[str, BoundSource] = attrs.Factory(dict)
    requests: dict[str, ast.Request] = attrs.Factory(dict)
    groups: dict[tuple[str, int], ast.Group] = attrs.Factory(dict)
    services: dict[tuple[str, int], ast.Service] = attrs.Factory(dict)
    experiments: dict[str, ast.Experiment] = attrs.Factory(dict)
    assignments: dict = attrs.Factory(dict)  # experiment name -> astra.ops.assignment.Spec, when valid
    indexes: dict[tuple[str, int], ast.VectorIndex] = attrs.Factory(dict)  # valid vector index versions

    def group_versions(self, name: str) -> list[int]:
        return sorted(v for (g, v) in self.groups if g == name)

    def group_names(self) -> set[str]:
        return {g for g, _ in self.groups}


def resolve(modules: list[ast.Module], diags: Collector) -> Symbols:
    """Collect every declaration of every module into one `Symbols`, reporting conflicts."""
    syms = Symbols()
    namespace: dict[str, ast.Name] = {}  # entities, sources and requests share one namespace
    seen_groups: dict[tuple[str, int], ast.Group] = {}
    indexes: dict[tuple[str, int], ast.VectorIndex] = {}
    for module in modules:
        for decl in module.decls:
            match decl:
                case ast.Entity() | ast.Source() | ast.Request():
                    if _unique(decl.name, namespace, diags):
                        _declare(syms, decl)
                case ast.Group():
                    key = (decl.name.value, decl.version)
                    if key in seen_groups:
                        _duplicate(decl.name, seen_groups[key].name, f"features {key[0]} v{key[1]}", diags)
                    else:
                        seen_groups[key] = decl
                        syms.groups[key] = decl
                case ast.Service():
                    key = (decl.name.value, decl.version)
                    if key in syms.services:
                        _duplicate(decl.name, syms.services[key].name, f"service {key[0]} v{key[1]}", diags)
                    else:
                        syms.services[key] = decl
                case ast.Experiment():
                    if decl.name.value in syms.experiments:
                        _duplicate(decl.name, syms.experiments[decl.name.value].name,
                                   f"experiment `{decl.name.value}`", diags)
                    else:
                        syms.experiments[decl.name.value] = decl
                case ast.VectorIndex():
                    key = (decl.name.value, decl.version)
                    if key in indexes:
                        _duplicate(decl.name, indexes[key].name, f"index {key[0]} v{key[1]}", diags)
                    else:
                        indexes[key] = decl
    for module in modules:
        for decl in module.decls:
            _float32_vectors(decl, diags)
    for e in syms.entities.values():
        _check_fields(e.keys, "key", diags)
        _no_vectors(e.keys, f"entity `{e.name.value}`", "key", diags)
    for r in syms.requests.values():
        _check_fields(r.fields, "field", diags)
    for name, bound in list(syms.sources.items()):
        syms.sources[name] = _bind_source(bound.decl, syms, diags)
    syms.assignments = check_experiments(syms.experiments, syms.entities, diags)
    syms.indexes = check_indexes(indexes, syms.sources, syms.entities, diags)
    return syms


def _declare(syms: Symbols, decl) -> None:
    if isinstance(decl, ast.Entity):
        syms.entities[decl.name.value] = decl
    elif isinstance(decl, ast.Request):
        syms.requests[decl.name.value] = decl
    else:
        syms.sources[decl.name.value] = BoundSource(decl, {}, {})


def _unique(name: ast.Name, namespace: dict[str, ast.Name], diags: Collector) -> bool:
    first = namespace.get(name.value)
    if first is not None:
        _duplicate(name, first, f"`{name.value}`", diags)
        return False
    namespace[name.value] = name
    return True


def _duplicate(name: ast.Name, first: ast.Name, what: str, diags: Collector) -> None:
    diags.error("E0107", f"{what} is defined twice", name.span, label="defined again here",
                notes=(Label(span=first.span, message="first defined here"),),
                help="rename one of them, or give the new one a new version")


def _check_fields(fields: tuple[ast.Field, ...], what: str, diags: Collector) -> dict[str, Type]:
    out: dict[str, Type] = {}
    firsts: dict[str, ast.Field] = {}
    for f in fields:
        if f.name.value in firsts:
            diags.error("E0112", f"{what} `{f.name.value}` is declared twice", f.name.span,
                        label="declared again here",
                        notes=(Label(span=firsts[f.name.value].name.span, message="first declared here"),))
            continue
        firsts[f.name.value] = f
        out[f.name.value] = f.type.type
    return out


def _float32_vectors(decl, diags: Collector) -> None:
    """A vector holds float32 numbers, never null: `vector<float32, N>` is its one element type."""
    refs = [f.type for f in getattr(decl, "keys", None) or getattr(decl, "columns", None) or
            getattr(decl, "fields", None) or ()]
    refs += [f.type for f in getattr(decl, "features", None) or () if isinstance(f, ast.Feature)]
    for ref in refs:
        t = ref.type
        while t.name == "list":
            t = t.item
        if t.name == "vector" and t.item != FLOAT32:
            diags.error("E0222", f"a vector holds float32 numbers, not `{t.item}`", ref.span,
                        label=f"`{t.non_null()}`", help=f"write `vector<float32, {t.size}>`")


def _no_vectors(fields: tuple[ast.Field, ...], owner: str, what: str, diags: Collector) -> None:
    """Vectors reach features through sources (docs/language.md, "Vectors"), never as an entity key."""
    for f in fields:
        if f.type.type.name == "vector":
            diags.error("E0221", f"{owner}: {what} `{f.name.value}` is a vector; a {what} must be a scalar",
                        f.type.span, label="a vector", help="declare vectors as columns of a source and read them "
                        "from there (an as-of lookup or `last`)")


def _bind_source(decl: ast.Source, syms: Symbols, diags: Collector) -> BoundSource:
    columns = _check_fields(decl.columns, "column", diags)
    time = decl.time.value
    if time not in columns:
        columns[time] = TIMESTAMP  # the time column need not be listed
    elif columns[time].name != "timestamp":
        help, fix = _time_help(decl, time, columns, syms)
        diags.error("E0114", f"time column `{time}` of `{decl.name.value}` must be a timestamp, "
                    f"not `{columns[time]}`", decl.time.span, label="declared as the time column here",
                    help=help, fix=fix)
    keys: dict[str, tuple[str, ...]] = {}
    for binding in decl.entities:
        entity = syms.entities.get(binding.entity.value)
        if entity is None:
            diags.error("E0101", f"unknown entity `{binding.entity.value}`", binding.entity.span,
                        label="not an entity", help=did_you_mean(binding.entity.value, syms.entities),
                        about=(binding.entity.value,),
                        fix=rename_fix(binding.entity.value, binding.entity.span, syms.entities))
            continue
        keys[entity.name.value] = _bind_keys(decl, binding, entity, columns, diags)
    if decl.max_staleness is not None and (decl.max_staleness.kind != "duration" or decl.max_staleness.value <= 0):
        diags.error("E0303", "`max_staleness` must be a positive duration such as `1h`", decl.max_staleness.span)
    return BoundSource(decl, columns, keys)


def _time_help(decl: ast.Source, time: str, columns: dict[str, Type], syms: Symbols) -> tuple[str, tuple]:
    """E0114's hint: a timestamp column the source has, else retyping the column when no entity key
    binds it (a key keeps its type), else a new time column, which need not be listed."""
    stamps = [c for c, t in columns.items() if t.name == "timestamp"]
    if stamps:
        return f"pick a timestamp column: `time {stamps[0]}`", (Edit(span=decl.time.span, text=stamps[0]),)
    keyed = {m.column.value for b in decl.entities for m in b.mapping}
    keyed |= {k.name.value for b in decl.entities if b.entity.value in syms.entities
              for k in syms.entities[b.entity.value].keys if k.name.value not in {m.key.value for m in b.mapping}}
    field = next(f for f in decl.columns if f.name.value == time)
    if time not in keyed:
        return (f"declare `{time}: timestamp`, or pick another time column",
                (Edit(span=field.type.span, text="timestamp"),))
    new = next(n for n in ("ts", "event_time", "time_") if n not in columns)
    return (f"`{time}` is a key column; name a timestamp column instead, e.g. `time {new}`",
            (Edit(span=decl.time.span, text=new),))


def _bind_keys(decl: ast.Source, binding: ast.Binding, entity: ast.Entity, columns: dict[str, Type],
               diags: Collector) -> tuple[str, ...]:
    mapping = {m.key.value: m for m in binding.mapping}
    key_names = [k.name.value for k in entity.keys]
    for m in binding.mapping:
        if m.key.value not in key_names:
            diags.error("E0113", f"entity `{entity.name.value}` has no key `{m.key.value}`", m.key.span,
                        label="not a key", help=did_you_mean(m.key.value, key_names) or
                        f"its keys are: {', '.join(key_names)}", fix=rename_fix(m.key.value, m.key.span, key_names))
    out = []
    for k in entity.keys:
        m = mapping.get(k.name.value)
        column = m.column.value if m else k.name.value
        span = m.column.span if m else binding.entity.span
        ctype = columns.get(column)
        if ctype is None:
            diags.error("E0113", f"source `{decl.name.value}` has no column `{column}` for key "
                        f"`{entity.name.value}.{k.name.value}`", span, label="key column missing",
                        help=f"add `{column}: {k.type.type}` to its columns, or map the key: "
                        f"`for {entity.name.value}({k.name.value} = some_column)`",
                        fix=(insert_at(decl.columns[0].span, f"{column}: {k.type.type}  "),) if decl.columns else ())
        elif ctype.non_null() != k.type.type.non_null():
            diags.error("E0113", f"key column `{column}` is `{ctype}` but key `{entity.name.value}."
                        f"{k.name.value}` is `{k.type.type}`", span, label="types differ")
        out.append(column)
    return tuple(out)
