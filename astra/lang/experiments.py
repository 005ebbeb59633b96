"""Checks of experiment declarations, and their assignment thresholds (`astra.ops.assignment.Spec`)."""

from __future__ import annotations

from astra.diagnostics import Collector, Label, did_you_mean
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
        if ok and e.layer is not None and e.salt is not None and e.arms:
            out[e.name.value] = spec(e.layer.value, e.salt, tuple((a.name.value, a.percent.value) for a in e.arms),
                                     holdout=e.holdout.value if e.holdout else 0.0,
                                     coverage=e.coverage.value if e.coverage else 100.0, slice=(lo, hi))
    return out
