"""`astra materialize`: bulk-load the sources into an online store and save it to a state dir."""

from __future__ import annotations

from pathlib import Path

import click

from astra.cli.common import (
    ALLOW_UNLOCKED,
    DATA_ROOT,
    PROJECT,
    Stages,
    fail,
    load,
    project_dir,
    resolve_data_root,
    writable_parent,
)
from astra.cli.options import Duration, Timestamp, format_time


@click.command("materialize")
@PROJECT
@DATA_ROOT
@click.option("--until", type=Timestamp(), default=None,
              help="Load rows with time < UNTIL (ISO date/datetime in UTC, or µs since the epoch)")
@click.option("--state", default="build/online", show_default=True, type=click.Path(path_type=Path),
              help="State directory")
@click.option("--allowed-lateness", type=Duration(), default="0s", show_default=True,
              help="How late a pushed row may be, as in .feat files (e.g. 5m)")
@ALLOW_UNLOCKED
def materialize(project, data_root, until, state, allowed_lateness, allow_unlocked):
    """Build the store from the offline sources and save it (atomically) to --state.

    PROJECT defaults to ./features, the data root to the project directory.  Prints, per source,
    the rows read and those left out (null time, null key per entity), and the rows loaded per
    group version."""
    from astra.offline.errors import BackfillError
    from astra.online import Store
    from astra.online.errors import OnlineError

    root = project_dir(project)
    where = resolve_data_root(data_root, root)
    if state.exists() and not state.is_dir():
        fail(f"--state `{state}` is not a directory")
    writable_parent(state, "--state")
    stages = Stages("materialize")
    plan = load(root, allow_unlocked).plan
    stages.done("loaded the project")
    try:
        store = Store(plan, allowed_lateness)
        counts = store.materialize(where, until)
        stages.done("loaded the sources:", sum(c.rows for c in counts.values()))
        store.save(state)
        stages.done(f"saved the store to {state}")
    except (BackfillError, OnlineError, OSError) as exc:
        fail(exc)
    for c in counts.values():
        no_key = c.skipped - c.null_time
        hidden = "".join(f", {n} invisible to {e} (null key)" for e, n in c.null_key.items() if n)
        click.echo(f"{c.source}: {c.rows} rows read, {c.skipped} skipped ({c.null_time} null time"
                   + (f", {no_key} a null in every entity's key" if no_key else "") + f"){hidden}")
    for group, rows in group_rows(plan, store).items():
        click.echo(f"{group}: {rows} rows loaded")
    rows = sum(tb.used - tb.holes for tb in store.tables)
    click.echo(f"materialized {rows} rows into {state} in {stages.total:.2f} s "
               f"(queries from {format_time(store.horizon)} on, {store.nbytes() / 2**20:.1f} MiB)")


def group_rows(plan, store) -> dict[str, int]:
    """Per group version that reads a source, the rows stored in the tables its features read."""
    from astra.plan import ir

    out = {}
    for g in plan.groups:
        keys = {n.key for fid in g.features for n in ir.walk(plan.feature(fid).expr)
                if isinstance(n, ir.Aggregate | ir.AsOf)}
        if keys:
            out[g.id] = sum(store.stored[ti] for ti, spec in enumerate(store.specs) if spec.key in keys)
    return out
