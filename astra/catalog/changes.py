"""What each version is and what changed between versions: fingerprints from the plan, release
status from `astra.lock`, and differences between consecutive versions in words."""

from __future__ import annotations

import attrs

from astra.plan import ir
from astra.plan.lock import token_change
from astra.plan.pretty import expr as pretty


@attrs.frozen
class Version:
    """One version of a group, a feature or a service, with what changed since the one before."""

    key: str  # group id, feature id or service id
    version: int
    fingerprint: str
    status: str  # "released", "under development", ...
    changes: tuple[str, ...]  # since the previous version; () for the first


def release_status(g: ir.Group, lock: dict) -> str:
    """Where a group version stands against `astra.lock`."""
    entry = lock.get(g.id)
    if entry is None:
        return "under development (not in astra.lock)"
    if entry.get("data") != g.data_fingerprint:
        return "logic differs from astra.lock (built with --allow-unlocked)"
    if entry.get("meta") != g.meta_fingerprint:
        return "released; metadata changed since (run astra compile to record it)"
    return "released"


def own_expr(plan: ir.Plan, f: ir.Feature) -> str:
    """A feature's expression with references into its own group written bare, so that the same
    logic in two versions of a group reads the same."""
    text = pretty(f.expr)
    return text.replace(f"{f.group}@v{f.version}.", "")


def group_changes(plan: ir.Plan, old: ir.Group, new: ir.Group) -> tuple[str, ...]:
    """How `new` differs from `old` (two versions of one group), most important first."""
    out: list[str] = []
    if old.entity != new.entity:
        out.append(f"entity {old.entity} -> {new.entity}")
    before = {plan.feature(fid).name: plan.feature(fid) for fid in old.features}
    after = {plan.feature(fid).name: plan.feature(fid) for fid in new.features}
    out += [f"removed `{n}`" for n in before if n not in after]
    out += [f"added `{n}`" for n in after if n not in before]
    for name in after:
        if name in before:
            out += [f"`{name}`: {c}" for c in feature_changes(plan, before[name], after[name])]
    for what in ("owner", "description", "deprecated"):
        a, b = getattr(old, what), getattr(new, what)
        if a != b:
            out.append(f"{what}: {_quoted(a)} -> {_quoted(b)}")
    if old.tags != new.tags:
        out.append(f"tags: [{', '.join(old.tags)}] -> [{', '.join(new.tags)}]")
    return tuple(out) or ("no change in logic or metadata",)


def feature_changes(plan: ir.Plan, old: ir.Feature, new: ir.Feature) -> list[str]:
    """How one feature differs between two versions of its group ([] when its logic is the same)."""
    out = []
    if old.type != new.type:
        out.append(f"type {old.type} -> {new.type}")
    a, b = own_expr(plan, old), own_expr(plan, new)
    if a != b:
        out.append(token_change(a, b))
    if old.default != new.default:
        out.append(f"default {_literal(old)} -> {_literal(new)}")
    if old.description != new.description:
        out.append(f"description {_quoted(old.description)} -> {_quoted(new.description)}")
    return out


def _literal(f: ir.Feature) -> str:
    return "none" if f.default is None else pretty(ir.Const(value=f.default, type=f.type.non_null()))


def _quoted(text: str | None) -> str:
    return "none" if text is None else f'"{text}"'


def group_history(plan: ir.Plan, name: str, lock: dict) -> list[Version]:
    """Every version of group `name`, oldest first."""
    groups = sorted((g for g in plan.groups if g.name == name), key=lambda g: g.version)
    out = []
    for i, g in enumerate(groups):
        changes = group_changes(plan, groups[i - 1], g) if i else ()
        out.append(Version(key=g.id, version=g.version, fingerprint=g.data_fingerprint,
                           status=release_status(g, lock), changes=changes))
    return out


def feature_history(plan: ir.Plan, f: ir.Feature, fingerprints: dict[str, str], lock: dict) -> list[Version]:
    """Every version of `f`'s group that defines a feature of the same name, oldest first."""
    same = sorted((x for x in plan.features if x.group == f.group and x.name == f.name), key=lambda x: x.version)
    out = []
    for i, x in enumerate(same):
        g = next(g for g in plan.groups if g.name == x.group and g.version == x.version)
        if i == 0:
            changes: tuple[str, ...] = ()
        else:
            changes = tuple(feature_changes(plan, same[i - 1], x)) or ("same logic",)
        out.append(Version(key=x.id, version=x.version, fingerprint=fingerprints[x.id],
                           status=release_status(g, lock), changes=changes))
    return out


def service_history(plan: ir.Plan, name: str) -> list[Version]:
    """Every version of service `name`, oldest first."""
    services = sorted((s for s in plan.services if s.name == name), key=lambda s: s.version)
    out = []
    for i, s in enumerate(services):
        changes = service_changes(services[i - 1], s) if i else ()
        out.append(Version(key=s.id, version=s.version, fingerprint=s.fingerprint, status="", changes=changes))
    return out


def service_changes(old: ir.Service, new: ir.Service) -> tuple[str, ...]:
    """How `new` differs from `old` (two versions of one service)."""
    before = {o.name: o.feature for o in old.outputs}
    after = {o.name: o.feature for o in new.outputs}
    removed = [n for n in before if n not in after]
    added = [n for n in after if n not in before]
    out = [f"removed output{'s' if len(removed) > 1 else ''} {', '.join(removed)}"] if removed else []
    out += [f"added output{'s' if len(added) > 1 else ''} {', '.join(added)}"] if added else []
    out += [f"`{n}` reads {after[n]} instead of {before[n]}" for n in after if n in before and before[n] != after[n]]
    out += [f"accepts request `{r}`" for r in new.requests if r not in old.requests]
    out += [f"no longer accepts request `{r}`" for r in old.requests if r not in new.requests]
    if [n for n in before if n in after] != [n for n in after if n in before]:
        out.append("outputs reordered")
    return tuple(out) or ("no change in outputs",)


def removed_versions(plan: ir.Plan, name: str, lock: dict) -> list[str]:
    """Versions of group `name` recorded in `astra.lock` but no longer defined."""
    defined = {g.id for g in plan.groups}
    return sorted(gid for gid in lock if gid.partition("@")[0] == name and gid not in defined)
