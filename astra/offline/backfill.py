"""The offline engine's entry points: `backfill` (a spine of queries) and `snapshot` (every
entity on a schedule)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

from astra import io
from astra.offline.errors import BackfillError
from astra.offline.evaluate import compute, leaves
from astra.offline.execution import ExecutionConfig
from astra.offline.memory import reuse_freed_memory
from astra.offline.population import FIRST_SEEN, population
from astra.plan import ir
from astra.plan.fit import cross_fit, require_fitted

MAX_SNAPSHOT_TIMES = 1_000_000  # a schedule longer than this is a typo (`--every 1us`), not a job


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
             data_root: str | Path | None, time_column: str = "ts", progress: bool = False,
             executor=None, cross_fitting: bool = True, execution: ExecutionConfig | None = None) -> pl.DataFrame:
    """Point-in-time correct values of a service's outputs for every spine row.

    The spine holds the keys of the service's entities and a query time (Datetime of any unit,
    or int64 µs); its columns come back unchanged, followed by `service.outputs` in order.
    `executor` (None: this process) runs it on a Dask cluster instead, with the same result
    (`astra.offline.distributed`).  `execution` sets chunk sizes and threads (default
    `ExecutionConfig()`; on Dask, each task takes its worker's threads); answers never depend on
    it.  Target encodings of their own training rows are out-of-fold
    unless `cross_fitting` is False (parity checks compare with what is served: the full fit).
    Raises `BackfillError` for any bad input.
    """
    svc = find_service(plan, service, version)
    require_fitted(plan, svc, BackfillError)  # a transformed service never runs without its statistics
    clash = [o.name for o in svc.outputs if o.name in spine.columns]
    if clash:
        raise BackfillError(f"spine column(s) {', '.join(clash)} have the same name as outputs of {svc.id}; "
                            "rename them in the spine")
    q_times = io.spine_times(spine, time_column)
    for name in svc.entities:
        io.spine_keys(spine, plan.entity(name))  # validate up front, even if no source uses them
    if cross_fitting:  # target encodings of their own training rows: out-of-fold
        plan = cross_fit(plan, svc, spine, time_column)
    if executor is not None:
        from astra.offline import distributed

        return spine.hstack(distributed.compute(plan, svc, spine, q_times, data_root, executor, execution))
    features = plan.closure(tuple(o.feature for o in svc.outputs))
    with _progress(progress, len(leaves(features)) + 2) as tick, reuse_freed_memory():
        out = compute(plan, svc, spine, q_times, data_root, tick, execution)
    return spine.hstack(out)


def snapshot(plan: ir.Plan, service: str, version: int | None, data_root: str | Path | None, every: int,
             start: int, end: int, progress: bool = False, executor=None,
             execution: ExecutionConfig | None = None) -> pl.DataFrame:
    """A service's outputs at each of start, start + every, ... <= end (int µs since the epoch)
    for every entity key known by then: batch scoring.

    The rows are those of a spine backfill over the same keys and times: one per (key, time),
    for the keys in `astra.offline.population` (seen in a source the service reads, at a time
    before that snapshot time).  Output: the key columns, `ts`, the outputs; ordered by time,
    then keys.
    """
    svc = find_service(plan, service, version)
    if every <= 0 or end < start:
        raise BackfillError(f"empty schedule: every={every} µs from {start} to {end}")
    steps = (end - start) // every + 1
    if steps > MAX_SNAPSHOT_TIMES:
        raise BackfillError(f"a schedule of {steps:,} times (every {every} µs from {start} to {end}); "
                            f"at most {MAX_SNAPSHOT_TIMES:,}: use a longer step or a shorter range")
    times = pl.DataFrame({"ts": np.arange(start, end + 1, every, dtype=np.int64)})
    keys = population(plan, svc, data_root)
    if keys is None:
        spine = times
    else:
        names = [c for c in keys.columns if c != FIRST_SEEN]
        if "ts" in names:
            raise BackfillError("an entity key named `ts` clashes with the snapshot time column `ts`; "
                                "give a --spine instead")
        spine = (times.join(keys, how="cross").filter(pl.col(FIRST_SEEN) < pl.col("ts"))
                 .select(*names, "ts").sort("ts", *names))
    spine = spine.with_columns(pl.col("ts").cast(pl.Datetime("us")))
    return backfill(plan, svc.name, svc.version, spine, data_root, "ts", progress, executor, execution=execution)
