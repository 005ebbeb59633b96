"""One case, five answers: the independent oracle (`tests/oracle.py`), the reference interpreter,
the offline engine (Polars backfill), and the online store's two generated plans (the vectorised
batch plan and the single-entity plan), compared by declared type.

Comparison rules (docs/semantics.md): integers, strings, booleans, times and nulls exactly; float64
within 1e-9 relative error and float32 within one float32 ulp, NaN equal to NaN, infinities
exactly; lists item by item.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import attrs
import oracle
import polars as pl
from strategies_plan import Case

from astra.lang.types import Type
from astra.offline import ExecutionConfig, backfill
from astra.online import Store
from astra.ops.dtypes import polars_dtype
from astra.plan import ir, pretty, reference

RTOL = 1e-9
ENGINES = ("reference", "offline", "online_batch", "online_single")


def agree(a: object, b: object, t: Type) -> bool:
    """Equal under the comparison rules, for a value of declared type t."""
    if a is None or b is None:
        return a is None and b is None
    if t.name == "list":
        return (isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(agree(x, y, t.item) for x, y in zip(a, b)))
    if t.is_float:
        if not isinstance(a, float) or not isinstance(b, float):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        rtol = 2**-23 if t.name == "float32" else RTOL  # float32: one ulp, as the parity check allows
        return abs(a - b) <= rtol * max(abs(a), abs(b))
    if t.name == "bool":
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if t.is_integer or t.name in ("timestamp", "duration"):
        return isinstance(a, int) and not isinstance(a, bool) and isinstance(b, int) and a == b
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------- offline


def frame(rows: list[dict], columns: tuple[tuple[str, Type], ...]) -> pl.DataFrame:
    """Rows -> a DataFrame of the declared dtypes (timestamps and durations given as int µs)."""
    schema = {n: pl.Int64 if t.name in ("timestamp", "duration") else polars_dtype(t) for n, t in columns}
    df = pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema, orient="row")
    return df.with_columns(pl.col(n).cast(polars_dtype(t)) for n, t in columns
                           if t.name in ("timestamp", "duration"))


def _as_micros(df: pl.DataFrame) -> pl.DataFrame:
    """Timestamps and durations (also inside lists) as int µs."""
    def micros(e: pl.Expr, dtype) -> pl.Expr:
        return e.dt.epoch("us") if isinstance(dtype, pl.Datetime) else e.dt.total_microseconds()

    exprs = []
    for c, d in df.schema.items():
        if isinstance(d, pl.Datetime | pl.Duration):
            exprs.append(micros(pl.col(c), d).alias(c))
        elif isinstance(d, pl.List) and isinstance(d.inner, pl.Datetime | pl.Duration):
            exprs.append(pl.col(c).list.eval(micros(pl.element(), d.inner)).alias(c))
    return df.with_columns(exprs) if exprs else df


def write_sources(case: Case, root: Path, split: int = 1) -> None:
    """Each source's rows as Parquet under root, in file order."""
    for src in case.plan.sources:
        frame(case.tables.get(src.name, []), src.columns).write_parquet(root / src.path)


def run_offline(case: Case, root: Path, chunk_rows: int | None = None, threads: int | None = None) -> list[dict]:
    """The backfill's output rows (outputs only), sources written under root; with `chunk_rows`,
    sources cut into chunks of that many rows and partitioned by slices of half that, on `threads`."""
    write_sources(case, root)
    execution = ExecutionConfig()
    if chunk_rows is not None:
        execution = attrs.evolve(execution, chunk_rows=chunk_rows, slice_rows=max(1, chunk_rows // 2))
    if threads is not None:
        execution = attrs.evolve(execution, threads=threads)
    out = backfill(case.plan, case.service, case.version, frame(case.spine, case.spine_columns), root,
                   execution=execution)
    names = [o.name for o in case.outputs]
    out = _as_micros(out.select(names))
    return [{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()} for r in out.to_dicts()]


# --------------------------------------------------------------------------- online


def pushable(case: Case, source: str) -> list[dict]:
    """Rows the store accepts: a time, and the complete key of at least one entity (a row with one
    entity's key null still counts for the others)."""
    src = case.plan.source(source)
    return [r for r in case.tables.get(source, []) if r.get(src.time) is not None
            and any(all(r.get(c) is not None for c in k.columns) for k in src.keys)]


def online_store(case: Case, batches: list[int] | None = None, root: Path | None = None) -> Store:
    """A store fed every source in file order: pushed in batches of the given sizes (cycled;
    default one push per source), or materialized from the Parquet files under root."""
    store = Store(case.plan, allowed_lateness=1 << 62)
    if root is not None:
        store.materialize(root)
        return store
    for src in case.plan.sources:
        rows = pushable(case, src.name)
        i, j = 0, 0
        while i < len(rows):
            k = batches[j % len(batches)] if batches else len(rows)
            store.push(src.name, rows[i:i + k])
            i, j = i + k, j + 1
    return store


def run_online(case: Case, store: Store) -> tuple[list[dict], list[dict]]:
    """(batch plan rows, single-entity plan rows), outputs only."""
    sid = f"{case.service}@v{case.version}"
    keys = sorted({k for e in case.plan.entities for k, _ in e.keys})
    entities = [{k: r[k] for k in keys} for r in case.spine]
    at = [r["ts"] for r in case.spine]
    fields = [f for req in case.plan.requests for f, _ in req.fields]
    request = [{f: r.get(f) for f in fields} for r in case.spine]
    q = store.query(sid, entities, at, request)
    names = [o.name for o in case.outputs]
    batch = store._lookup(q, single=False).rows()
    single = store._lookup(q, single=True).rows()
    return [{n: r[n] for n in names} for r in batch], [{n: r[n] for n in names} for r in single]


# --------------------------------------------------------------------------- all of them


@attrs.define
class Mismatch:
    row: int
    output: str
    engine: str
    got: object
    expected: object

    def __str__(self) -> str:
        return f"row {self.row} `{self.output}`: {self.engine} gave {self.got!r}, the oracle {self.expected!r}"


def answers(case: Case, tmp: Path | None = None, chunk_rows: int | None = None,
            batches: list[int] | None = None, materialize: bool = False) -> dict[str, object]:
    """Every engine's output rows for the case (the oracle's under "oracle"); an engine that
    raised is represented by its exception, so the others are still compared."""
    got: dict[str, object] = {}

    def attempt(name: str, fn) -> None:
        try:
            got[name] = fn()
        except Exception as exc:  # a well-typed program must not make an engine raise
            got[name] = exc

    names = [o.name for o in case.outputs]
    with tempfile.TemporaryDirectory() as d:
        root = Path(tmp or d)
        got["oracle"] = oracle.evaluate(case.plan, case.service, case.version, case.spine, case.tables)
        attempt("reference", lambda: [{n: r[n] for n in names} for r in reference.evaluate(
            case.plan, case.service, case.version, case.spine, case.tables)])
        attempt("offline", lambda: run_offline(case, root, chunk_rows))
        attempt("online", lambda: run_online(case, online_store(case, batches, root if materialize else None)))
    online = got.pop("online")
    got["online_batch"], got["online_single"] = (online, online) if isinstance(online, Exception) else online
    return got


def mismatches(case: Case, got: dict[str, object], engines=ENGINES) -> list[Mismatch]:
    """Every (row, output, engine) whose value differs from the oracle's (row -1: the engine raised)."""
    types = case.output_types()
    out = []
    for engine in engines:
        rows = got[engine]
        if isinstance(rows, Exception):
            out.append(Mismatch(-1, "*", engine, f"raised {type(rows).__name__}: {rows}", None))
            continue
        for i, (want, have) in enumerate(zip(got["oracle"], rows)):
            for name, t in types.items():
                if not agree(have[name], want[name], t):
                    out.append(Mismatch(i, name, engine, have[name], want[name]))
    return out


def describe(case: Case, found: list[Mismatch], limit: int = 6) -> str:
    """A readable account of mismatches: the features involved, the query rows, the source rows."""
    by_output = {o.name: case.plan.feature(o.feature) for o in case.outputs}
    lines = [str(m) for m in found[:limit]]
    if len(found) > limit:
        lines.append(f"... and {len(found) - limit} more")
    for name in dict.fromkeys(m.output for m in found if m.output in by_output) or by_output:
        f = by_output[name]
        lines.append(f"  {name} = {f.id}: {f.type} = {pretty.expr(f.expr)}" +
                     (f" default {f.default!r}" if f.default is not None else ""))
        for dep in case.plan.closure((f.id,))[:-1]:
            lines.append(f"    needs {dep.id}: {dep.type} = {pretty.expr(dep.expr)}")
    for i in dict.fromkeys(m.row for m in found[:limit] if m.row >= 0):
        lines.append(f"  query row {i}: {case.spine[i]}")
    for src, rows in case.tables.items():
        lines.append(f"  {src} ({len(rows)} rows): {rows}")
    return "\n".join(lines)


def used_windows(plan: ir.Plan) -> set[int]:
    """The finite windows a plan's aggregations use."""
    return {n.window for f in plan.features for n in ir.walk(f.expr) if isinstance(n, ir.Aggregate)
            and n.window is not None}
