"""Computing a fit: the statistics of every fitted transform a service reads, over a training spine.

The pre-transform values are the service's own backfill: each transform's argument becomes an
output of a throwaway service over the same spine, computed by the offline engine, so a fit
learns from exactly the point-in-time values training sees.  A transform whose argument holds
another (`standard_scale(impute(x, median))`) is fitted after it, on the imputed values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import polars as pl

from astra import io
from astra.offline.backfill import backfill
from astra.ops.transforms import TRANSFORMS, FitDataError
from astra.plan import ir
from astra.plan.fit import FORMAT, PLACEHOLDER, bind_expr, bind_features, feature_sites, is_placeholder, service_sites
from astra.plan.pretty import expr as pretty

SCRATCH = "__fit__"


def format_timestamp(us: int) -> str:
    """µs since the epoch as ISO 8601 in UTC (exact to the µs)."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()


def training_spine(spine: pl.DataFrame, time_column: str, start: int | None, end: int | None) -> pl.DataFrame:
    """The spine rows with start <= time < end (µs; None: unbounded)."""
    times = io.spine_times(spine, time_column)
    keep = pl.Series([True] * spine.height)
    if start is not None:
        keep = keep & pl.Series(times >= start)
    if end is not None:
        keep = keep & pl.Series(times < end)
    return spine.filter(keep) if start is not None or end is not None else spine


def fit_service(plan: ir.Plan, svc: ir.Service, spine: pl.DataFrame, data_root: str | Path | None, *,
                time_column: str = "ts", start: int | None = None, end: int | None = None) -> dict:
    """The fit artifact of `svc` (unbound plan) over the spine rows in [start, end).

    Raises `FitDataError` (no rows, a transform with nothing to learn from) or the engine's
    `BackfillError` (a bad spine or source)."""
    spine = training_spine(spine, time_column, start, end)
    if spine.height == 0:
        raise FitDataError("no spine rows in the training range")
    sites = service_sites(plan, svc)
    if not sites:
        raise FitDataError(f"`{svc.id}` applies no fitted transform; there is nothing to fit")
    owner = {key: f for f in plan.closure(tuple(o.feature for o in svc.outputs)) for key, _ in feature_sites(f)}
    stats: dict[str, dict] = {}
    entries: dict[str, dict] = {}
    while len(stats) < len(sites):
        ready = [(k, n) for k, n in sites if k not in stats and _ready(plan, owner[k], n, stats)]
        work = bind_features(plan, stats)
        key_of = {id(n): k for k, n in sites}
        args = {k: bind_expr(n.args[0], key_of, stats) for k, n in ready}
        values = _values(work, svc, args, {k: owner[k] for k, _ in ready}, spine, data_root, time_column)
        for k, n in ready:
            name = n.op.removeprefix(PLACEHOLDER)
            params = tuple(a.value for a in n.args[1:])
            what = f"`{name}({pretty(n.args[0])})` of `{owner[k].id}`"
            if name == "target_encode":
                stats[k] = _fit_target(plan, owner[k], values[k], spine, time_column, what, params, start, end)
            else:
                stats[k] = TRANSFORMS[name].fit(values[k], what, params)
            entries[k] = {"transform": name, "input": pretty(n.args[0]), "params": list(params), "stats": stats[k],
                          "training_values": int(values[k].drop_nulls().len())}
    times = io.spine_times(spine, time_column)
    return {
        "format": FORMAT, "service": svc.id, "service_fingerprint": svc.fingerprint,
        "training": {"spine_rows": spine.height, "first": format_timestamp(int(times.min())),
                     "last": format_timestamp(int(times.max())),
                     "start": None if start is None else format_timestamp(start),
                     "end": None if end is None else format_timestamp(end)},
        "transforms": entries,
    }


def _fit_target(plan: ir.Plan, f: ir.Feature, values: pl.Series, spine: pl.DataFrame, time_column: str,
                what: str, params: tuple, start: int | None, end: int | None) -> dict:
    """A target encoding's statistics: the label is a spine column, the folds hash the entity's
    first key, and the digest of the training rows tells a later backfill to cross-fit."""
    from astra.ops.target_encode import fit_target, spine_digest

    label = params[0]
    if label not in spine.columns:
        raise FitDataError(f"{what}: the spine has no label column `{label}`")
    labels = spine.get_column(label)
    if not (labels.dtype.is_numeric() or labels.dtype == pl.Boolean):
        raise FitDataError(f"{what}: the label column `{label}` must be numeric or bool, found {labels.dtype}")
    entity = plan.entity(f.entity)
    keys = io.spine_keys(spine, entity).get_column(entity.keys[0][0])
    out = fit_target(values, labels.cast(pl.Float64), keys, what, params)
    return {**out, "spine": spine_digest(keys, io.spine_times(spine, time_column)), "start": start, "end": end}


def _ready(plan: ir.Plan, f: ir.Feature, node: ir.Apply, stats: dict) -> bool:
    """Whether the transform's argument can be computed: every fitted call inside it, and in the
    features it reads, already has statistics."""
    inner = {id(n) for n in ir.walk(node.args[0]) if is_placeholder(n)}
    if any(id(n) in inner and k not in stats for k, n in feature_sites(f)):
        return False
    refs = tuple(r.feature for r in ir.walk(node.args[0]) if isinstance(r, ir.FeatureRef))
    return all(k in stats for g in plan.closure(refs) for k, _ in feature_sites(g))


def _values(plan: ir.Plan, svc: ir.Service, args: dict[str, ir.Expr], owners: dict[str, ir.Feature],
            spine: pl.DataFrame, data_root, time_column: str) -> dict[str, pl.Series]:
    """Each argument's values over the spine, as the outputs of a scratch service."""
    features, outputs, groups = [], [], {}
    for j, (key, e) in enumerate(args.items()):
        entity = owners[key].entity
        gname = f"{SCRATCH}{entity}"
        fid = f"{gname}@v1.s{j}"
        features.append(ir.Feature(id=fid, group=gname, version=1, name=f"s{j}", entity=entity, expr=e, type=e.type))
        outputs.append(ir.Output(name=f"{SCRATCH}s{j}", feature=fid))
        groups.setdefault(gname, ir.Group(name=gname, version=1, entity=entity, features=()))
        groups[gname] = attrs.evolve(groups[gname], features=(*groups[gname].features, fid))
    scratch = ir.Service(name=SCRATCH, version=1, outputs=tuple(outputs), requests=svc.requests,
                         entities=svc.entities)
    work = attrs.evolve(plan, features=(*plan.features, *features), groups=(*plan.groups, *groups.values()),
                        services=(*plan.services, scratch))
    out = backfill(work, SCRATCH, 1, spine.select([c for c in spine.columns if not c.startswith(SCRATCH)]),
                   data_root, time_column=time_column)
    return {key: out.get_column(o.name) for key, o in zip(args, outputs)}
