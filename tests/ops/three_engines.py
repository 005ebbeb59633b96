"""Run one small project through the offline engine, the online store (its single-entity and its
batch plan) and the reference interpreter, so a semantics test states each expected value once."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from helpers import run_engine

from astra.compiler import compile_project
from astra.diagnostics import render_all
from astra.lang.types import TIMESTAMP
from astra.online import Store
from astra.online.store import SMALL
from astra.plan import ir, reference

PROJECT = """
entity user {{ key uid: int64 }}
events ev for user {{
    path "ev.parquet"
    time ts
    columns {{ uid: int64  x: float64?  n: int64?  s: string? }}
}}
request r {{ {fields} }}
features g v1 for user {{
{features}
}}
service svc v1 {{ request r  g@v1.* }}
"""


class CompileFailed(Exception):
    """The project did not compile; the message is the rendered diagnostics."""


def compile_features(features: str, fields: str = "unused: int64?") -> ir.Plan:
    """The plan of PROJECT with `features` (lines `name: type = expr`) and request `fields`."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "p.feat").write_text(PROJECT.format(fields=fields, features=features))
        result = compile_project(root, lock="ignore")
        if not result.ok:
            raise CompileFailed(render_all(result.diagnostics, result.sources))
        return result.plan


def run_all(plan: ir.Plan, spine: list[dict], events: list[dict] = ()) -> dict[str, list[dict]]:
    """Each engine's outputs (name -> Python value, None for null) per spine row.

    Spine rows hold `uid`, `ts` (µs) and the request fields by bare name; `events` are rows of `ev`."""
    svc = plan.service("svc", 1)
    names = [o.name for o in svc.outputs]
    request = plan.requests[0]
    fields = tuple((name, t) for name, t in request.fields)
    spine = [{"uid": 1, **r} for r in spine]
    spine_columns = (("uid", plan.entity("user").keys[0][1]), ("ts", TIMESTAMP), *fields)
    with tempfile.TemporaryDirectory() as tmp:
        offline = run_engine(plan, "svc", 1, spine, {"ev": list(events)}, Path(tmp), spine_columns)
    ref = reference.evaluate(plan, "svc", 1, spine, {"ev": list(events)})
    store = Store(plan)
    if events:
        store.push("ev", list(events))
    requests = [{f: r.get(f) for f, _ in fields} for r in spine]
    single = [store.get("svc@v1", [{"uid": r["uid"]}], at=r["ts"], request=[q]).rows()[0]
              for r, q in zip(spine, requests)]
    pad = max(0, SMALL + 1 - len(spine))  # enough rows to take the vectorised plan
    batch = store.get("svc@v1", [{"uid": r["uid"]} for r in spine] + [{"uid": 1}] * pad,
                      at=[r["ts"] for r in spine] + [spine[0]["ts"]] * pad,
                      request=requests + [requests[0]] * pad).rows()[:len(spine)]
    pick = lambda rows: [{n: r[n] for n in names} for r in rows]  # noqa: E731
    return {"offline": pick(offline), "single": pick(single), "batch": pick(batch), "reference": pick(ref)}


class Near(float):
    """An expected float that math libraries may round differently: matched within 2 ulps."""


def identical(a: object, b: object) -> bool:
    """Equal values of the same kind; NaN matches NaN, and floats must match to the bit (an
    expected `Near` value within 2 ulps)."""
    if isinstance(b, Near) and isinstance(a, float):
        return abs(a - b) <= 2 * math.ulp(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, float) and isinstance(b, float)):
            return False
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def check(results: dict[str, list[dict]], expected: dict[str, list]) -> None:
    """Assert every engine gives `expected` (feature -> value per spine row)."""
    for engine, rows in results.items():
        for name, want in expected.items():
            got = [r[name] for r in rows]
            assert len(got) == len(want) and all(identical(g, w) for g, w in zip(got, want)), \
                f"{engine}: {name} = {got}, expected {want}"
