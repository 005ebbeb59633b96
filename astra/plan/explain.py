"""`astra explain`: the semantics a feature will execute, written out."""

from __future__ import annotations

from astra.diagnostics import did_you_mean
from astra.ops.aggregations import AGGREGATIONS
from astra.plan import ir
from astra.plan.fingerprint import feature_fingerprints
from astra.plan.pretty import expr, window


def find_features(plan: ir.Plan, name: str) -> list[ir.Feature]:
    """`feature`, `group.feature` or `group@vN.feature`."""
    out = []
    for f in plan.features:
        if name in (f.id, f.name, f"{f.group}.{f.name}"):
            out.append(f)
    return out


def suggest(plan: ir.Plan, name: str) -> str:
    """A "did you mean" hint for a name no feature matches, in the form the name was written in
    (`feature`, `group.feature` or `group@vN.feature`), as the compiler gives for unknown names."""
    if "@" in name:
        forms = [f.id for f in plan.features]
    elif "." in name:
        forms = [f"{f.group}.{f.name}" for f in plan.features]
    else:
        forms = [f.name for f in plan.features]
    return did_you_mean(name, forms)


def explain(plan: ir.Plan, f: ir.Feature) -> str:
    """A feature's resolved type, expression, windows, dependencies, users and fingerprints."""
    group = next(g for g in plan.groups if g.name == f.group and g.version == f.version)
    lines = [f"{f.id}: {f.type}", f"  = {expr(f.expr)}"]
    if f.default is not None:
        lines.append(f"  default {f.default!r} (replaces a null result)")
    if f.description:
        lines.append(f"  description: {f.description}")
    lines.append(f"  entity: {f.entity} ({', '.join(k for k, _ in plan.entity(f.entity).keys)})")
    seen = set()
    for n in ir.walk(f.expr):
        if isinstance(n, ir.Aggregate) and n not in seen:
            seen.add(n)
            keys = ", ".join(n.key.columns)
            lines.append(f"  {expr(n)}: {n.type}")
            kept = "; rows where the `where` filter is not true left out" if n.where is not None else ""
            lines.append(f"      rows of `{n.key.source}` with ({keys}) = the entity's key and time in "
                         f"{window(n)}, {'h' if n.hop else 't'} excluded{kept}; "
                         f"{AGGREGATIONS[n.op].null_policy(n.column)}")
        elif isinstance(n, ir.AsOf) and n not in seen:
            seen.add(n)
            src = plan.source(n.key.source)
            lines.append(f"  {expr(n)}: {n.type}")
            lines.append(f"      latest `{n.key.source}` row with {src.time} < t (ties: later row); "
                         "null when there is none")
    for n in ir.walk(f.expr):
        if isinstance(n, ir.Apply) and n.op == "assignment" and n not in seen:
            seen.add(n)
            names = [e.name for e in plan.experiments or () if e.spec == n.args[1].value]
            lines.append(f"  assignment({', '.join(names) or '?'}): {n.type}")
            lines.append(f"      the arm of the entity's {n.args[0].field} by hash version 2 of the key "
                         "(docs/language.md, Experiments); null when not in the experiment; never reads rows")
    deps = sorted({n.feature for n in ir.walk(f.expr) if isinstance(n, ir.FeatureRef)})
    lines.append("  depends on: " + (", ".join(deps) if deps else "nothing but sources"))
    users = [g.id for g in plan.features if any(isinstance(n, ir.FeatureRef) and n.feature == f.id
                                                 for n in ir.walk(g.expr))]
    if users:
        lines.append("  used by: " + ", ".join(users))
    services = [s.id for s in plan.services if any(o.feature == f.id for o in s.outputs)]
    lines.append("  served by: " + (", ".join(services) if services else "no service"))
    lines.append(f"  fingerprint: {feature_fingerprints(plan)[f.id]} (group {group.id}: data "
                 f"{group.data_fingerprint}, metadata {group.meta_fingerprint})")
    if group.deprecated:
        lines.append(f"  deprecated: {group.deprecated}")
    return "\n".join(lines)
