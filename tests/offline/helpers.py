"""Running the offline engine on row-dict data (as the reference interpreter takes it)."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from astra.offline import backfill
from astra.ops.dtypes import polars_dtype
from astra.plan import ir


def frame(rows: list[dict], columns: tuple[tuple[str, object], ...]) -> pl.DataFrame:
    """Rows -> DataFrame with the declared dtypes (timestamps given as int µs)."""
    schema = {}
    for name, t in columns:
        schema[name] = pl.Int64 if t.name == "timestamp" else polars_dtype(t)
    df = pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema, orient="row")
    return df.with_columns(pl.col(n).cast(pl.Datetime("us")) for n, t in columns if t.name == "timestamp")


def run_engine(plan: ir.Plan, service: str, version: int, spine: list[dict], tables: dict[str, list[dict]],
               tmp: Path, spine_columns: tuple[tuple[str, object], ...]) -> list[dict]:
    """Write the tables as Parquet under tmp, backfill, and return output rows with times as int µs."""
    for src in plan.sources:
        frame(tables.get(src.name, []), src.columns).write_parquet(tmp / src.path)
    out = backfill(plan, service, version, frame(spine, spine_columns), tmp)
    out = out.with_columns(pl.col(c).dt.epoch("us") for c, d in out.schema.items() if isinstance(d, pl.Datetime))
    out = out.with_columns(pl.col(c).dt.total_microseconds() for c, d in out.schema.items()
                           if isinstance(d, pl.Duration))
    return [{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()} for r in out.to_dicts()]


def same(a: object, b: object, rtol: float = 1e-9) -> bool:
    """Equal, floats within rtol (NaN matches NaN), element-wise for tuples."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= rtol * max(abs(a), abs(b))  # a == b: equal infinities
    return a == b
