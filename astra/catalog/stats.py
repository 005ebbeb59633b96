"""Statistics of every feature over the offline data, for the feature pages.

What is measured: each feature group is backfilled (the offline engine, point in time, as any
training set) over a spine made of its own source rows: the entity keys and event times of the
events sources the group reads (directly or through features it reads), or of its snapshot
sources when it reads no events.  So the numbers describe the feature as the model sees it at
the moments the entity acts.  At most `sample` rows are used, drawn at random with a fixed seed,
so a catalog is reproducible.  Features that read request inputs have no statistics: only
callers supply those values.
"""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import polars as pl

from astra.offline.errors import BackfillError
from astra.plan import ir

SAMPLE = 20_000
BINS = 20
TOP = 10


@attrs.frozen
class Stats:
    """What the feature page shows; `bars` are (label, count) for a histogram or top values."""

    rows: int
    spine: str  # where the rows came from, in words
    nulls: int
    distinct: int | None
    minimum: str | None = None
    maximum: str | None = None
    mean: str | None = None
    nan: int = 0
    infinite: int = 0
    unit: str = ""  # "s" for durations, shown in seconds
    bars: tuple[tuple[str, int], ...] = ()
    bars_kind: str = ""  # "histogram" | "values" | ""


def feature_stats(plan: ir.Plan, data_root: Path, sample: int = SAMPLE, seed: int = 0) -> dict[str, Stats | str]:
    """Per feature id: its `Stats`, or a sentence saying why there are none."""
    out: dict[str, Stats | str] = {}
    for g in plan.groups:
        out.update(_group_stats(plan, g, data_root, sample, seed))
    return out


def _reads_request(plan: ir.Plan, f: ir.Feature) -> list[str]:
    return sorted({f"{n.request}.{n.field}" for x in plan.closure((f.id,)) for n in ir.walk(x.expr)
                   if isinstance(n, ir.RequestInput)})


def _group_stats(plan: ir.Plan, g: ir.Group, data_root: Path, sample: int, seed: int) -> dict[str, Stats | str]:
    out: dict[str, Stats | str] = {}
    wanted = []
    for fid in g.features:
        req = _reads_request(plan, plan.feature(fid))
        if req:
            out[fid] = f"it reads request input {', '.join(req)}, which only callers supply"
        else:
            wanted.append(plan.feature(fid))
    if not wanted:
        return out
    try:
        spine, what = _spine(plan, g, wanted, data_root, sample, seed)
    except (BackfillError, pl.exceptions.PolarsError, OSError) as err:
        return out | {f.id: f"the offline data could not be read: {' '.join(str(err).split())}" for f in wanted}
    if spine is None:
        return out | {f.id: "it reads no source" for f in wanted}
    outputs = tuple(ir.Output(name=f"__f{i}", feature=f.id) for i, f in enumerate(wanted))
    svc = ir.Service(name="__catalog", version=1, outputs=outputs, requests=(), entities=(g.entity,))
    from astra.offline import backfill

    try:
        frame = backfill(attrs.evolve(plan, services=(svc,)), svc.name, 1, spine, data_root,
                         time_column=spine.columns[-1])
    except (BackfillError, pl.exceptions.PolarsError, OSError) as err:
        return out | {f.id: f"the backfill failed: {' '.join(str(err).split())}" for f in wanted}
    for o, f in zip(outputs, wanted, strict=True):
        out[f.id] = describe(frame[o.name], f.type, what)
    return out


def _spine(plan: ir.Plan, g: ir.Group, features: list[ir.Feature], data_root: Path, sample: int, seed: int):
    """Entity keys and times of the group's own source rows (events first), sampled."""
    from astra.io import TIME, load_source

    entity = plan.entity(g.entity)
    keys = [k for k, _ in entity.keys]
    reads = {n.key.source for x in plan.closure(tuple(f.id for f in features)) for n in ir.walk(x.expr)
             if isinstance(n, ir.Aggregate | ir.AsOf) and x.entity == g.entity}
    sources = [plan.source(s) for s in sorted(reads)]
    chosen = [s for s in sources if s.kind == "events"] or sources
    if not chosen:
        return None, ""
    t = next(n for n in ("ts", "t", "time", "__catalog_ts") if n not in keys)
    parts = []
    for s in chosen:
        key = s.keys[s.entities.index(g.entity)]
        frame = load_source(s, data_root, set(), set(key.columns))
        parts.append(frame.select(*(pl.col(c).alias(k) for c, k in zip(key.columns, keys, strict=True)),
                                  pl.col(TIME).alias(t)))
    spine = pl.concat(parts, how="vertical_relaxed")
    total = spine.height
    if total > sample:
        spine = spine.sample(sample, seed=seed)
    spine = spine.sort(t)
    names = " and ".join(s.name for s in chosen)
    what = f"{spine.height:,} rows of {names}" + (f" (a sample of {total:,})" if total > sample else "") + \
        ", each queried at its own time"
    return spine, what


def describe(s: pl.Series, t, what: str) -> Stats:
    """Null rate, distinct count, range, mean and a histogram (or top values) of one column."""
    rows, nulls = s.len(), s.null_count()
    base = {"rows": rows, "spine": what, "nulls": nulls}
    if t.name in ("list", "vector"):
        return Stats(**base, distinct=None)
    values = s.drop_nulls()
    if t.name == "bool":
        counts = values.value_counts()
        by = dict(zip(counts[values.name].to_list(), counts["count"].to_list(), strict=True))
        return Stats(**base, distinct=values.n_unique(), bars=(("false", by.get(False, 0)), ("true", by.get(True, 0))),
                     bars_kind="values")
    if t.name == "string":
        counts = values.value_counts(sort=True).head(TOP)
        bars = tuple(zip(counts[values.name].to_list(), counts["count"].to_list(), strict=True))
        return Stats(**base, distinct=values.n_unique(), minimum=_text(values.min()), maximum=_text(values.max()),
                     bars=bars, bars_kind="values")
    if t.name == "timestamp":
        return Stats(**base, distinct=values.n_unique(), minimum=_text(values.min()), maximum=_text(values.max()))
    unit = ""
    if t.name == "duration":
        values, unit = values.cast(pl.Int64).cast(pl.Float64) / 1_000_000, "s"
    nan = int(values.is_nan().sum()) if values.dtype.is_float() else 0
    finite = values.filter(values.is_finite()) if values.dtype.is_float() else values
    infinite = values.len() - finite.len() - nan
    base |= {"distinct": values.n_unique(), "nan": nan, "infinite": infinite, "unit": unit}
    if finite.len() == 0:
        return Stats(**base)
    lo, hi = finite.min(), finite.max()
    return Stats(**base, minimum=_number(lo), maximum=_number(hi), mean=_number(finite.cast(pl.Float64).mean()),
                 bars=histogram(finite, t.is_integer), bars_kind="histogram")


def histogram(values: pl.Series, integer: bool) -> tuple[tuple[str, int], ...]:
    """Equal-width bins over [min, max]; one bin per value when integers span fewer than BINS."""
    lo, hi = float(values.min()), float(values.max())
    if integer and hi - lo < BINS:
        counts = values.value_counts()
        by = dict(zip(counts[values.name].to_list(), counts["count"].to_list(), strict=True))
        return tuple((str(v), by.get(v, 0)) for v in range(int(lo), int(hi) + 1))
    if hi == lo:
        return ((_number(lo), values.len()),)
    width = (hi - lo) / BINS
    idx = ((values.cast(pl.Float64) - lo) / width).floor().clip(0, BINS - 1).cast(pl.Int64)
    counts = idx.value_counts()
    by = dict(zip(counts[idx.name].to_list(), counts["count"].to_list(), strict=True))
    return tuple((f"[{_number(lo + i * width)}, {_number(lo + (i + 1) * width)}{']' if i == BINS - 1 else ')'}",
                  by.get(i, 0)) for i in range(BINS))


def _number(x) -> str:
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-3):
        return f"{x:.4g}"
    return f"{x:,.4f}".rstrip("0").rstrip(".")


def _text(x) -> str | None:
    return None if x is None else str(x)
