"""Who is scored at each time of a snapshot backfill (`astra backfill --every`).

At a snapshot time `T`, an entity key is in the population when a row of a source the service
reads for that entity has that key and a time `< T` (the visibility rule: a key first seen at
`T` or later is not known yet).  Entities whose keys have the same names share the spine's key
columns, so their populations are united (two entities keyed by `driver_id` give one
`driver_id` column, holding the drivers seen by either).  Entities with other key names
multiply: the cross product, joined on any key names they share.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from astra import io
from astra.offline.errors import BackfillError
from astra.ops.dtypes import polars_dtype
from astra.plan import ir

FIRST_SEEN = "__first_seen"  # the earliest time (µs) at which a key combination is visible


def keys_read(plan: ir.Plan, svc: ir.Service) -> dict[str, list[ir.SourceKey]]:
    """Entity name -> the source keys the service's features read for it (aggregations, as-of)."""
    out: dict[str, list[ir.SourceKey]] = {}
    for f in plan.closure(tuple(o.feature for o in svc.outputs)):
        for node in ir.walk(f.expr):
            if isinstance(node, ir.Aggregate | ir.AsOf):
                src = plan.source(node.key.source)
                entity = src.entities[src.keys.index(node.key)]
                if node.key not in out.setdefault(entity, []):
                    out[entity].append(node.key)
    return out


def _source_keys(plan: ir.Plan, entity: str, read: dict[str, list[ir.SourceKey]]) -> list[ir.SourceKey]:
    """The keys read for `entity`; for an entity no feature reads a source of, every source's."""
    if read.get(entity):
        return read[entity]
    return [sk for src in plan.sources for sk, ent in zip(src.keys, src.entities) if ent == entity]


def _first_seen(plan: ir.Plan, entity: ir.Entity, key: ir.SourceKey, data_root: str | Path | None) -> pl.DataFrame:
    """Each key of `entity` in one source, renamed to the entity's key names, with its first time."""
    src = plan.source(key.source)
    frame = io.load_source(src, data_root, set(), set(key.columns))  # rows with a null key or time dropped
    return (frame.group_by(list(key.columns)).agg(pl.col(io.TIME).min().alias(FIRST_SEEN))
            .select(*(pl.col(c).cast(polars_dtype(t.non_null())).alias(k)
                      for c, (k, t) in zip(key.columns, entity.keys)), FIRST_SEEN))


def population(plan: ir.Plan, svc: ir.Service, data_root: str | Path | None) -> pl.DataFrame | None:
    """The key columns of the service's entities and `FIRST_SEEN`, one row per key combination
    (None for a service of no entity).  A combination is in the population at `T` when
    `FIRST_SEEN < T`."""
    read = keys_read(plan, svc)
    by_names: dict[tuple[str, ...], list[pl.DataFrame]] = {}
    for name in svc.entities:
        entity = plan.entity(name)
        keys = _source_keys(plan, name, read)
        if not keys:
            raise BackfillError(f"entity `{name}` has no source to take its keys from; give a --spine instead")
        names = tuple(k for k, _ in entity.keys)
        by_names.setdefault(names, []).extend(_first_seen(plan, entity, k, data_root) for k in keys)
    combined: pl.DataFrame | None = None
    for names, frames in by_names.items():
        part = pl.concat(frames).group_by(list(names)).agg(pl.col(FIRST_SEEN).min())
        if combined is None:
            combined = part
            continue
        shared = [c for c in names if c in combined.columns]
        joined = combined.join(part, on=shared, how="inner") if shared else combined.join(part, how="cross")
        # a combination is known once every part of it is
        combined = joined.with_columns(pl.max_horizontal(FIRST_SEEN, f"{FIRST_SEEN}_right").alias(FIRST_SEEN)
                                       ).drop(f"{FIRST_SEEN}_right")
    return combined
