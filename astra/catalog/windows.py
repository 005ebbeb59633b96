"""Which rows a feature can see: each aggregation's and lookup's window, and the widest window
over everything the feature reads (its dependencies included)."""

from __future__ import annotations

from astra.plan import ir
from astra.plan.pretty import expr as pretty
from astra.plan.pretty import window


def inputs(f: ir.Feature) -> list[tuple[str, str]]:
    """(read, window) for each distinct aggregation and as-of lookup of the feature's own expression."""
    out, seen = [], set()
    for n in ir.walk(f.expr):
        if n in seen:
            continue
        if isinstance(n, ir.Aggregate):
            seen.add(n)
            out.append((pretty(n), window(n)))
        elif isinstance(n, ir.AsOf):
            seen.add(n)
            out.append((pretty(n), "(-inf, t): the latest row before t"))
    return out


def effective_window(plan: ir.Plan, f: ir.Feature) -> str:
    """The span of event time the feature's value depends on, dependencies included:
    `[t - 30d, t)`, `(-inf, t)` for lifetime aggregations and as-of lookups, or what else it reads."""
    widest, lifetime, request, rows = 0, False, False, False
    for x in plan.closure((f.id,)):
        for n in ir.walk(x.expr):
            if isinstance(n, ir.AsOf) or (isinstance(n, ir.Aggregate) and ir.reach(n) is None):
                lifetime = rows = True
            elif isinstance(n, ir.Aggregate):
                widest, rows = max(widest, ir.reach(n)), True
            elif isinstance(n, ir.RequestInput):
                request = True
    if rows:
        text = window(None if lifetime else widest)
        return text + (" and request inputs at t" if request else "")
    return "request inputs at t" if request else "t only (no source rows)"
