"""Run small projects through every engine (offline, online batch and single-entity plans, the
reference interpreter), with the online store fed in several ways (one push, row by row, in
batches, through eviction, after a save and load), for the aggregation edge and precision tests.
Expected values are stated by the tests, from docs/semantics.md, never taken from an engine."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from helpers import run_engine

from astra.compiler import compile_project
from astra.diagnostics import render_all
from astra.lang.types import INT64, TIMESTAMP
from astra.online import Store
from astra.online.store import SMALL
from astra.plan import ir, reference

PROJECT = """
entity item {{ key id: int64 }}
events ev for item {{
    path "ev.parquet"
    time ts
    columns {{ id: int64  {columns} }}
}}
features g v1 for item {{
{features}
}}
service svc v1 {{ g@v1.* }}
"""


def compile_features(columns: str, features: str) -> ir.Plan:
    """The plan of PROJECT with event `columns` (`name: type` pairs) and `features` lines."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "p.feat").write_text(PROJECT.format(columns=columns, features=features))
        result = compile_project(root, lock="ignore")
        assert result.ok, render_all(result.diagnostics, result.sources)
        return result.plan


def _names(plan: ir.Plan) -> list[str]:
    return [o.name for o in plan.service("svc", 1).outputs]


def online(store: Store, plan: ir.Plan, spine: list[dict]) -> dict[str, list[dict]]:
    """The store's answers through the single-entity plan and through the batch plan."""
    names = _names(plan)
    single = [store.get("svc@v1", [{"id": q["id"]}], at=q["ts"]).rows()[0] for q in spine]
    pad = max(0, SMALL + 1 - len(spine))  # enough rows to take the vectorised plan
    batch = store.get("svc@v1", [{"id": q["id"]} for q in spine] + [{"id": spine[0]["id"]}] * pad,
                      at=[q["ts"] for q in spine] + [spine[0]["ts"]] * pad).rows()[:len(spine)]
    pick = lambda rows: [{n: r[n] for n in names} for r in rows]  # noqa: E731
    return {"single": pick(single), "batch": pick(batch)}


def push_all(plan: ir.Plan, events: list[dict], batch: int | None = None, lateness: int = 10**15) -> Store:
    """A store fed `events` in file order, in pushes of `batch` rows (None: one push)."""
    store = Store(plan, allowed_lateness=lateness)
    step = batch or max(1, len(events))
    for i in range(0, len(events), step):
        store.push("ev", events[i:i + step])
    return store


def replay(plan: ir.Plan, events: list[dict], spine: list[dict]) -> dict[str, list[dict]]:
    """Rows pushed one by one in time order without lateness (so old rows are evicted), each query
    asked once every row before its time is in."""
    in_time = sorted(events, key=lambda r: r["ts"])  # stable: ties keep file order
    store, pushed = Store(plan, allowed_lateness=0), 0
    out: dict[str, list] = {"single": [None] * len(spine), "batch": [None] * len(spine)}
    for j in sorted(range(len(spine)), key=lambda j: spine[j]["ts"]):
        while pushed < len(in_time) and in_time[pushed]["ts"] < spine[j]["ts"]:
            store.push("ev", [in_time[pushed]])
            pushed += 1
        for kind, rows in online(store, plan, [spine[j]]).items():
            out[kind][j] = rows[0]
    return out


def run_offline(plan: ir.Plan, events: list[dict], spine: list[dict]) -> list[dict]:
    """The offline engine's outputs per spine row."""
    names = _names(plan)
    with tempfile.TemporaryDirectory() as d:
        rows = run_engine(plan, "svc", 1, spine, {"ev": events}, Path(d), (("id", INT64), ("ts", TIMESTAMP)))
    return [{n: r[n] for n in names} for r in rows]


def run_online(plan: ir.Plan, events: list[dict], spine: list[dict], batches=(None, 1, 3)) -> dict[str, list[dict]]:
    """The online plans' outputs per spine row: once per push batching, once fed row by row in
    time order without lateness (old rows are evicted), and once after a save and load of the
    store fed in one push."""
    out = {}
    for b in batches:
        for kind, rows in online(push_all(plan, events, b), plan, spine).items():
            out[f"{kind} (pushes of {b or 'all'})"] = rows
    for kind, rows in replay(plan, events, spine).items():
        out[f"{kind} (in time order, evicting)"] = rows
    with tempfile.TemporaryDirectory() as d:
        push_all(plan, events).save(Path(d) / "store")
        for kind, rows in online(Store.load(Path(d) / "store", plan), plan, spine).items():
            out[f"{kind} (restarted)"] = rows
    return out


def run_all(plan: ir.Plan, events: list[dict], spine: list[dict]) -> dict[str, list[dict]]:
    """Every engine's outputs per spine row (`id`, `ts` in µs): the reference, offline, online."""
    names = _names(plan)
    ref = reference.evaluate(plan, "svc", 1, spine, {"ev": events})
    return {"reference": [{n: r[n] for n in names} for r in ref], "offline": run_offline(plan, events, spine),
            **run_online(plan, events, spine)}


def close(got: object, want: object, rtol: float = 1e-9) -> bool:
    """`got` is `want`: floats within rtol relative (same infinity, NaN for NaN), others equal
    and of the same type."""
    if got is None or want is None:
        return got is None and want is None
    if isinstance(want, float):
        if not isinstance(got, float):
            return False
        if math.isnan(want) or math.isinf(want):
            return (math.isnan(got) and math.isnan(want)) or got == want
        return abs(got - want) <= rtol * abs(want)
    if isinstance(want, tuple | list):
        return isinstance(got, tuple | list) and len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))
    return type(got) is type(want) and got == want


def check(results: dict[str, list[dict]], expected: dict[str, list], rtol: float = 1e-9) -> None:
    """Every engine gives `expected` (feature -> value per spine row)."""
    bad = []
    for engine, rows in results.items():
        for name, want in expected.items():
            got = [r[name] for r in rows]
            if not all(close(g, w, rtol) for g, w in zip(got, want)):
                bad.append(f"{engine}: {name} = {got}, expected {want}")
    assert not bad, "\n".join(bad)
