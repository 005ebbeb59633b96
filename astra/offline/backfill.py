"""The offline engine's entry points: `backfill` (a spine of queries) and `snapshot` (every
entity on a schedule)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

from astra.offline import io
from astra.offline.errors import BackfillError
from astra.offline.evaluate import compute, leaves
from astra.offline.memory import reuse_freed_memory
from astra.ops.dtypes import polars_dtype
from astra.plan import ir


def find_service(plan: ir.Plan, service: str, version: int | None) -> ir.Service:
    """The service `name` (or `name@vN`) at `version`; the error lists what exists."""
    try:
        return plan.find_service(service, version)
    except ir.ServiceNotFound as err:
        raise BackfillError(str(err)) from None


@contextmanager
def _progress(enabled: bool, steps: int):
    if not enabled:
        yield lambda: None
        return
    import click

    with click.progressbar(length=steps, label="backfill", file=sys.stderr) as bar:
        yield lambda: bar.update(1)


def backfill(plan: ir.Plan, service: str, version: int | None, spine: pl.DataFrame,
             data_root: str | Path | None, time_column: str = "ts", progress: bool = False) -> pl.DataFrame:
    """Point-in-time correct values of a service's outputs for every spine row.

    The spine holds the keys of the service's entities and a query time (Datetime of any unit,
    or int64 µs); its columns come back unchanged, followed by `service.outputs` in order.
    Raises `BackfillError` for any bad input.
    """
    svc = find_service(plan, service, version)
    clash = [o.name for o in svc.outputs if o.name in spine.columns]
    if clash:
        raise BackfillError(f"spine column(s) {', '.join(clash)} have the same name as outputs of {svc.id}; "
                            "rename them in the spine")
    q_times = io.spine_times(spine, time_column)
    for name in svc.entities:
        io.spine_keys(spine, plan.entity(name))  # validate up front, even if no source uses them
    features = plan.closure(tuple(o.feature for o in svc.outputs))
    with _progress(progress, len(leaves(features)) + 2) as tick, reuse_freed_memory():
        out = compute(plan, svc, spine, q_times, data_root, tick)
    return spine.hstack(out)


def snapshot(plan: ir.Plan, service: str, version: int | None, data_root: str | Path | None, every: int,
             start: int, end: int, progress: bool = False) -> pl.DataFrame:
    """A service's outputs for every entity seen in the sources at each of start, start +
    every, ... <= end (int µs since the epoch): batch scoring.

    Entities are those whose keys appear in any source keyed by the service's entities
    (for several entities, their cross product).  Output: the key columns, `ts`, the outputs.
    """
    svc = find_service(plan, service, version)
    if every <= 0 or end < start:
        raise BackfillError(f"empty schedule: every={every} µs from {start} to {end}")
    keys = None
    for name in svc.entities:
        entity = plan.entity(name)
        names = [k for k, _ in entity.keys]
        found = []
        for src in plan.sources:
            for sk, ent in zip(src.keys, src.entities):
                if ent == name:
                    frame = io.load_source(src, data_root, set(), set(sk.columns))
                    found.append(frame.select(pl.col(c).alias(k).cast(polars_dtype(t.non_null()))
                                              for c, (k, t) in zip(sk.columns, entity.keys)))
        if not found:
            raise BackfillError(f"entity `{name}` has no source to take its keys from")
        part = pl.concat(found).unique(maintain_order=True).sort(names)
        keys = part if keys is None else keys.join(part, how="cross")
    times = pl.DataFrame({"ts": pl.Series(np.arange(start, end + 1, every, dtype=np.int64))
                          .cast(pl.Datetime("us"))})
    spine = times.join(keys, how="cross") if keys is not None else times
    spine = spine.select(*(c for c in spine.columns if c != "ts"), "ts")
    return backfill(plan, svc.name, svc.version, spine, data_root, "ts", progress)
