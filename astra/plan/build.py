"""Checked AST -> IR plan: features per group, the dependency DAG, services.

The DAG has one node per feature id (`group@vN.name`) and an edge from each dependency to its
dependant; a cycle is reported with its whole path.  `Plan.features` comes out in topological
order, so engines evaluate it front to back.
"""

from __future__ import annotations

import attrs
import networkx as nx

from astra.diagnostics import Collector, Edit, Label, did_you_mean, insert_at, rename_fix
from astra.lang import ast
from astra.lang.check import Scope, check_expr, fits, literal, lookup_group
from astra.lang.resolve import Symbols
from astra.lang.types import Type
from astra.ops.registry import TypeRuleError
from astra.ops.scalars import cast_result
from astra.plan import ir
from astra.plan.fingerprint import fingerprint_plan
from astra.plan.indexes import vector_indexes
from astra.plan.pretty import null_reason
from astra.source import Span


def build_plan(syms: Symbols, diags: Collector) -> ir.Plan:
    """Lower every group and service; diagnostics go to `diags`, the plan holds what checked clean."""
    declared = {f"{g.name.value}@v{g.version}": _declared_types(g, diags) for g in syms.groups.values()}
    features: dict[str, ir.Feature] = {}
    groups = []
    for g in syms.groups.values():
        if g.entity.value not in syms.entities:
            diags.error("E0101", f"unknown entity `{g.entity.value}`", g.entity.span,
                        help=did_you_mean(g.entity.value, syms.entities), about=(g.entity.value,),
                        fix=rename_fix(g.entity.value, g.entity.span, syms.entities))
            continue
        scope = Scope(group=g, syms=syms, feature_types=declared)
        ids = []
        for f in _unique_features(g, diags):
            feature = _feature(f, attrs.evolve(scope, feature=f.name.value), diags)
            if feature is not None:
                features[feature.id] = feature
                ids.append(feature.id)
        groups.append(ir.Group(name=g.name.value, version=g.version, entity=g.entity.value, features=tuple(ids),
                               owner=g.meta.owner, description=g.meta.description, tags=g.meta.tags,
                               deprecated=g.meta.deprecated, span=g.name.span.to(g.entity.span)))
    ordered = _topological(features, diags)
    built = {g.id for g in groups}
    warned: set[object] = set()  # deprecations already reported: each is reported at its first use only
    services = [s for s in (_service(s, syms, built, features, diags, warned) for s in syms.services.values())
                if s]
    plan = ir.Plan(
        entities=tuple(ir.Entity(name=e.name.value, keys=tuple((k.name.value, k.type.type) for k in e.keys),
                                 owner=e.meta.owner, description=e.meta.description)
                       for e in syms.entities.values()),
        sources=tuple(_source(s) for s in syms.sources.values()),
        requests=tuple(ir.Request(name=r.name.value, fields=tuple((f.name.value, f.type.type) for f in r.fields))
                       for r in syms.requests.values()),
        features=ordered, groups=tuple(groups), services=tuple(services),
        experiments=_experiments(syms), indexes=vector_indexes(syms),
    )
    return fingerprint_plan(plan)


def _declared_types(g: ast.Group, diags: Collector) -> dict[str, Type]:
    # references are typed by the declared type, so features check independently of order
    return {f.name.value: f.type.type for f in g.features}


def _unique_features(g: ast.Group, diags: Collector):
    seen: dict[str, ast.Feature] = {}
    for f in g.features:
        if f.name.value in seen:
            diags.error("E0107", f"feature `{f.name.value}` is defined twice in `{g.name.value}@v{g.version}`",
                        f.name.span, label="defined again here",
                        notes=(Label(span=seen[f.name.value].name.span, message="first defined here"),))
            continue
        seen[f.name.value] = f
        yield f


def _feature(f: ast.Feature, scope: Scope, diags: Collector) -> ir.Feature | None:
    expr = check_expr(f.expr, scope, diags)
    declared = f.type.type
    default = None
    if f.default is not None:
        d = literal(f.default)
        if fits(d.value, declared.non_null()):
            d = ir.Const(value=d.value, type=declared.non_null())
        if d.value is None or not declared.non_null().accepts(d.type):
            diags.error("E0206", f"default `{f.default.text or f.default.value}` does not fit `{declared}`",
                        f.default.span, label=f"this is `{d.type}`")
        default = d.value
    if expr is None:
        return None
    inferred = expr.type.non_null() if default is not None else expr.type
    if not declared.accepts(inferred):
        if declared.accepts(inferred.non_null()) or inferred.is_null:
            reason = null_reason(expr)
            zero = zero_literal(declared)
            instead = f", or give null a value: `default {zero}` or `?? {zero}`" if zero else ""
            diags.error("E0205", f"`{f.name.value}` may be null but is declared `{declared}`", f.expr.span,
                        label=f"may be null: {reason}", help=f"declare it `{declared.nullable()}`{instead}",
                        fix=(Edit(span=f.type.span, text=str(declared.nullable())),))
        else:
            redeclare = f.default is None or inferred.non_null().accepts(literal(f.default).type)
            diags.error("E0204", f"`{f.name.value}` is declared `{declared}` but its expression is `{inferred}`",
                        f.expr.span, label=f"this is `{inferred}`",
                        notes=(Label(span=f.type.span, message="declared here"),),
                        help=_retype_help(inferred, declared),
                        fix=(Edit(span=f.type.span, text=str(inferred)),) if redeclare else ())
        return None
    g = scope.group
    return ir.Feature(id=f"{scope.group_id}.{f.name.value}", group=g.name.value, version=g.version,
                      name=f.name.value, entity=g.entity.value, expr=expr, type=declared, default=default,
                      description=f.description, span=f.span)


def zero_literal(t: Type) -> str:
    """A literal of type `t` to replace a null with (`0`, `0.0`, `""`, ...), or "" when `t` has none."""
    return {"int32": "0", "int64": "0", "float32": "0.0", "float64": "0.0", "string": '""', "bool": "false",
            "duration": "0s"}.get(t.name, "")


def _retype_help(inferred: Type, declared: Type) -> str:
    """E0204's hint: declare the expression's type, or a cast the checker accepts, if there is one."""
    out = f"declare it `{inferred}`"
    try:
        cast = cast_result(inferred, declared.non_null())
    except TypeRuleError:
        return out
    if declared.accepts(cast):
        return out + f", or cast: `(...) as {declared.non_null()}`"
    zero = zero_literal(declared)
    if declared.accepts(cast.non_null()) and zero:
        return out + f", or cast and give null a value: `(...) as {declared.non_null()} ?? {zero}`"
    return out


def _dependencies(f: ir.Feature) -> set[str]:
    return {n.feature for n in ir.walk(f.expr) if isinstance(n, ir.FeatureRef)}


def _topological(features: dict[str, ir.Feature], diags: Collector) -> tuple[ir.Feature, ...]:
    graph = dependency_graph(features.values())
    for found in nx.simple_cycles(graph):
        graph.remove_edges_from(list(zip(found, found[1:] + found[:1])))
        # edges run dependency -> dependant; show the path as "reads" arrows from the first feature
        cycle = list(reversed(found))
        start = cycle.index(min(cycle))
        cycle = cycle[start:] + cycle[:start]
        path = " -> ".join([*cycle, cycle[0]])
        diags.error("E0401", f"dependency cycle: {path}", features[cycle[0]].span, label="part of the cycle",
                    notes=tuple(Label(span=features[c].span, message="also in the cycle") for c in cycle[1:]),
                    help="each arrow means `reads`; a feature cannot depend on itself, directly or not")
    order = list(nx.lexicographical_topological_sort(graph))
    return tuple(features[i] for i in order if i in features)


def dependency_graph(features) -> nx.DiGraph:
    """Feature ids as nodes; an edge from each dependency to the feature that reads it."""
    graph = nx.DiGraph()
    for f in features:
        graph.add_node(f.id)
        for dep in _dependencies(f):
            graph.add_edge(dep, f.id)
    return graph


def _source(s) -> ir.Source:
    d = s.decl
    entities = tuple(s.keys)
    return ir.Source(name=d.name.value, kind=d.kind, path=d.path, time=d.time.value,
                     columns=tuple(s.columns.items()),
                     keys=tuple(ir.SourceKey(source=d.name.value, columns=s.keys[e]) for e in entities),
                     entities=entities,
                     max_staleness=d.max_staleness.value if d.max_staleness is not None else None,
                     owner=d.meta.owner, description=d.meta.description)


def _service(s: ast.Service, syms: Symbols, built: set[str], features: dict[str, ir.Feature], diags: Collector,
             warned: set[object]):
    """A service's outputs and requests; selections of groups that failed to build are left out
    (their errors are already reported), so later passes only see what exists."""
    outputs: list[ir.Output] = []
    names: dict[str, ast.Selection] = {}
    versions: dict[str, ast.Selection] = {}
    entities: list[str] = []
    taken: set[str] = set()  # output names that clashed, or that a fix proposes
    sid = f"{s.name.value}@v{s.version}"
    for sel in s.selections:
        group = lookup_group(sel.group, sel.version, sel.span, syms, diags)
        if group is None:
            continue
        gname = sel.group.value
        if gname in versions and versions[gname].version != sel.version:
            diags.error("E0502", f"service `{sid}` mixes versions of `{gname}`: v{versions[gname].version} "
                        f"and v{sel.version}", sel.span,
                        notes=(Label(span=versions[gname].span, message="other version selected here"),),
                        help="a service pins one version of each group")
            continue
        versions[gname] = sel
        if f"{gname}@v{sel.version}" not in built:
            continue
        if group.meta.deprecated:
            _warn_deprecated(group, sel, warned, diags)
        if group.entity.value not in entities:
            entities.append(group.entity.value)
        chosen = [f.name.value for f in group.features]
        if sel.feature is not None:
            if sel.feature.value not in chosen:
                # a name the service already returns would clash (E0501): not a fix
                free = [c for c in chosen if sel.alias is not None or c not in names]
                diags.error("E0104", f"`{gname}@v{sel.version}` has no feature `{sel.feature.value}`",
                            sel.feature.span, help=did_you_mean(sel.feature.value, free), about=(gname,),
                            fix=rename_fix(sel.feature.value, sel.feature.span, free))
                continue
            chosen = [sel.feature.value]
        clashes = []
        for name in chosen:
            out = sel.alias.value if sel.alias is not None else name
            if out in names:
                clashes.append((out, names[out]))
                taken.add(out)
                continue
            names[out] = sel
            fid = f"{gname}@v{sel.version}.{name}"
            if fid in features:  # a feature that failed its checks is reported already
                outputs.append(ir.Output(name=out, feature=fid))
        if clashes:
            listed = ", ".join(f"`{n}`" for n, _ in clashes[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5
                                                                    else "")
            other = f"{gname}_{clashes[0][0]}"
            renamable = sel.feature is not None and other not in names and other not in taken
            diags.error("E0501", f"service `{sid}` would return two columns named {listed}", sel.span,
                        notes=(Label(span=clashes[0][1].span, message="first selected here"),),
                        help=f"rename with `as`: `{gname}@v{sel.version}.{sel.feature.value} as {other}`" if renamable
                        else "rename with `as`: `group@v1.feature as other_name`",
                        fix=(_rename_output(sel, other),) if renamable else ())
            if renamable:
                taken.add(other)
    _check_caller_columns(sid, names, entities, s.requests, syms, diags)
    declared_requests = {r.value: r for r in s.requests}
    for r in s.requests:
        if r.value not in syms.requests:
            diags.error("E0109", f"unknown request `{r.value}`", r.span, help=did_you_mean(r.value, syms.requests),
                        about=(r.value,), fix=rename_fix(r.value, r.span, syms.requests))
    _check_requests(s, sid, outputs, features, declared_requests, diags)
    return ir.Service(name=s.name.value, version=s.version, outputs=tuple(outputs),
                      requests=tuple(r.value for r in s.requests if r.value in syms.requests),
                      entities=tuple(entities), owner=s.meta.owner, description=s.meta.description)


def _warn_deprecated(group: ast.Group, sel: ast.Selection, warned: set[object], diags: Collector) -> None:
    """W0503 once per cause: the group's `deprecated` clause, however many selections use it."""
    cause = dict(group.meta.item_spans).get("deprecated") or (group.name.value, group.version)
    if cause in warned:
        return
    warned.add(cause)
    notes = (Label(span=cause, message="deprecated here"),) if isinstance(cause, Span) else ()
    diags.warning("W0503", f"`{group.name.value}@v{group.version}` is deprecated: {group.meta.deprecated}",
                  sel.span, notes=notes)


def _rename_output(sel: ast.Selection, name: str) -> Edit:
    """The edit giving a one-feature selection the output name `name` (`as name`)."""
    if sel.alias is not None:
        return Edit(span=sel.alias.span, text=name)
    return insert_at(sel.span, f" as {name}", after=True)


def _check_caller_columns(sid: str, names: dict[str, ast.Selection], entities: list[str],
                          requests: tuple[ast.Name, ...], syms: Symbols, diags: Collector) -> None:
    """An output may not take the name of a column the caller supplies: an entity key or a field of
    a declared request. A backfill returns the spine's columns and the outputs side by side, so such
    a service could be compiled but never backfilled."""
    supplied: dict[str, tuple[ast.Name, str]] = {}
    for e in entities:
        for k in syms.entities[e].keys:
            supplied.setdefault(k.name.value, (k.name, f"entity key `{e}.{k.name.value}`"))
    for r in requests:
        if r.value in syms.requests:
            for f in syms.requests[r.value].fields:
                supplied.setdefault(f.name.value, (f.name, f"request field `{r.value}.{f.name.value}`"))
    for out, sel in names.items():
        if out in supplied:
            decl, what = supplied[out]
            other = f"{out}_feature"
            renamable = sel.feature is not None and other not in names and other not in supplied
            diags.error("E0504", f"`{sid}` output `{out}` has the name of {what}, which the caller supplies",
                        sel.span, label=f"output `{out}`",
                        notes=(Label(span=decl.span, message=f"{what} declared here"),),
                        help=f"rename the output with `as`, e.g. `as {other}`",
                        fix=(_rename_output(sel, other),) if renamable else ())


def _check_requests(s, sid, outputs, features, declared, diags: Collector) -> None:
    """Request inputs reach a feature only through a service that declares the request."""
    need = {o.feature for o in outputs}
    if not need:
        return
    first = s.selections[0].span  # outputs come from selections; a new `request` line goes before them
    seen: set[str] = set()
    while need:
        fid = need.pop()
        if fid in seen or fid not in features:
            continue
        seen.add(fid)
        for n in ir.walk(features[fid].expr):
            if isinstance(n, ir.FeatureRef):
                need.add(n.feature)
            elif isinstance(n, ir.RequestInput) and n.request not in declared:
                diags.error("E0305", f"`{fid}` reads request input `{n.request}.{n.field}`, which service "
                            f"`{sid}` does not declare", s.name.span, label="service declared here",
                            notes=(Label(span=n.span, message="request input read here"),),
                            help=f"add `request {n.request}` to the service",
                            fix=(insert_at(first, f"request {n.request}\n{' ' * (first.col - 1)}"),))
                declared = {**declared, n.request: None}  # report each request once


def _experiments(syms) -> tuple[ir.Experiment, ...] | None:
    """The valid experiments (None when there are none, so plans without any keep their data)."""
    out = tuple(ir.Experiment(name=name, unit=syms.experiments[name].unit.value, layer=spec.layer,
                              arms=tuple((a.name.value, float(a.percent.value)) for a in syms.experiments[name].arms),
                              spec=spec.text(), span=syms.experiments[name].span,
                              within=_within(syms.experiments[name]))
                for name, spec in sorted(syms.assignments.items()))
    return out or None


def _within(e) -> tuple[str, str] | None:
    return None if e.within is None else (e.within[0].value, e.within[1].value)

