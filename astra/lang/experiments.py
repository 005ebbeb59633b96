"""Checks of experiment declarations, and their assignment thresholds (`astra.ops.assignment.Spec`)."""

from __future__ import annotations

import attrs

from astra.diagnostics import Collector, Label, did_you_mean, rename_fix
from astra.lang import ast
from astra.ops.assignment import Spec, spec


def check_experiments(experiments: dict[str, ast.Experiment], entities: dict[str, ast.Entity],
                      diags: Collector) -> dict[str, Spec]:
    """The thresholds of every valid experiment; each broken rule is reported where it was written."""
    out: dict[str, Spec] = {}
    taken: dict[str, list[tuple[float, float, ast.Experiment]]] = {}
    for e in experiments.values():
        ok = True
        if e.unit is not None and e.unit.value not in entities:
            diags.error("E0101", f"unknown entity `{e.unit.value}`", e.unit.span, label="not an entity",
                        help=did_you_mean(e.unit.value, entities))
            ok = False
        for lit, what, lo, hi in ([(a.percent, f"arm `{a.name.value}`", 0, 100) for a in e.arms]
                                  + [(p, "a layer slice bound", 0, 100) for p in e.slice or ()]
                                  + [(e.holdout, "holdout", 0, 100), (e.coverage, "coverage", 0, 100)]):
            if lit is not None and not (lo <= lit.value <= hi):
                diags.error("E0702", f"{what} is {lit.text}, outside 0%..100%", lit.span)
                ok = False
        if e.holdout is not None and e.holdout.value >= 100:
            diags.error("E0702", "a holdout of 100% leaves no unit for the arms", e.holdout.span)
            ok = False
        seen: dict[str, ast.Arm] = {}
        for a in e.arms:
            if a.name.value in seen:
                diags.error("E0703", f"arm `{a.name.value}` is declared twice", a.name.span,
                            notes=(Label(span=seen[a.name.value].name.span, message="first declared here"),))
                ok = False
            seen[a.name.value] = a
        total = sum(a.percent.value for a in e.arms)
        if e.arms and abs(total - 100.0) > 1e-9:
            span = e.arms[0].span.to(e.arms[-1].span)
            diags.error("E0701", f"the arms of `{e.name.value}` add up to {total:g}%, not 100%", span,
                        help="give the arms shares that sum to 100%")
            ok = False
        lo, hi = (e.slice[0].value, e.slice[1].value) if e.slice else (0.0, 100.0)
        if lo >= hi:
            diags.error("E0702", "a layer slice must run from a lower to a higher percentage", e.layer.span)
            ok = False
        if e.layer is not None:
            for olo, ohi, other in taken.get(e.layer.value, []):
                if lo < ohi and olo < hi:
                    diags.error("E0704", f"`{e.name.value}` and `{other.name.value}` overlap in layer "
                                f"`{e.layer.value}`", e.layer.span,
                                notes=(Label(span=other.layer.span, message="the other slice"),),
                                help="give each experiment of a layer its own slice, e.g. `layer "
                                f"{e.layer.value} 0%-50%` and `layer {e.layer.value} 50%-100%`")
                    ok = False
            taken.setdefault(e.layer.value, []).append((lo, hi, e))
        if ok and e.unit is not None and e.layer is not None and e.salt is not None and e.arms:
            out[e.name.value] = spec(e.layer.value, e.salt, tuple((a.name.value, a.percent.value) for a in e.arms),
                                     holdout=e.holdout.value if e.holdout else 0.0,
                                     coverage=e.coverage.value if e.coverage else 100.0, slice=(lo, hi))
    nested = [e for e in experiments.values() if e.within is not None]
    for e in nested:
        _check_within(e, experiments, diags)
    resolved: dict[str, Spec | None] = {}
    for e in nested:
        _nest(e.name.value, experiments, out, resolved, (), diags)
    nest = {name: resolved.get(name, s) for name, s in out.items()}
    return {name: s for name, s in nest.items() if s is not None}


def _check_within(e: ast.Experiment, experiments: dict[str, ast.Experiment], diags: Collector) -> None:
    """`within parent.arm`: the parent exists, has that arm and randomises the same unit."""
    parent, arm = e.within
    other = experiments.get(parent.value)
    if other is None:
        others = [n for n in experiments if n != e.name.value]
        diags.error("E0707", f"unknown experiment `{parent.value}`", parent.span, label="not an experiment",
                    help=did_you_mean(parent.value, others), fix=rename_fix(parent.value, parent.span, others))
        return
    if other is e:
        diags.error("E0707", f"`{e.name.value}` cannot be nested in itself", parent.span)
        return
    if all(a.name.value != arm.value for a in other.arms):
        arms = [a.name.value for a in other.arms]
        diags.error("E0707", f"`{parent.value}` has no arm `{arm.value}`", arm.span, label="not an arm",
                    help=did_you_mean(arm.value, arms), fix=rename_fix(arm.value, arm.span, arms))
    if e.unit is not None and other.unit is not None and e.unit.value != other.unit.value:
        diags.error("E0707", f"`{e.name.value}` randomises `{e.unit.value}` units but `{parent.value}` "
                    f"randomises `{other.unit.value}`", e.unit.span,
                    notes=(Label(span=other.unit.span, message="the parent's unit"),),
                    help="a nested experiment splits the units of one arm of its parent: give both the same unit")


def _nest(name: str, experiments: dict[str, ast.Experiment], specs: dict[str, Spec],
          resolved: dict[str, Spec | None], path: tuple[str, ...], diags: Collector) -> Spec | None:
    """The spec of `name` with its chain of parents (None when it or a parent is invalid, or
    when the chain loops: a loop is reported once, where it closes)."""
    if name in resolved:
        return resolved[name]
    e = experiments.get(name)
    own = specs.get(name)
    if e is None or own is None:
        return None
    if e.within is None:
        resolved[name] = own
        return own
    parent, arm = e.within[0].value, e.within[1].value
    if parent in path:
        loop = [*path[path.index(parent):], name, parent]
        diags.error("E0707", f"experiments nested in a loop: {' -> '.join(loop)}", e.within[0].span,
                    help="a nested experiment's parent must not be nested, directly or not, in it")
        resolved[name] = None
        return None
    if parent == name:  # reported by _check_within
        resolved[name] = None
        return None
    top = _nest(parent, experiments, specs, resolved, (*path, name), diags)
    if top is None or all(a[0] != arm for a in top.arms) or e.unit is None \
            or experiments[parent].unit is None or experiments[parent].unit.value != e.unit.value:
        resolved[name] = None
        return None
    resolved[name] = attrs.evolve(own, parent=(top, arm))
    return resolved[name]
