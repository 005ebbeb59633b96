"""`astra materialize`: bulk-load the sources into an online store and save it to a state dir."""

from __future__ import annotations

import sys
import time

import click

from astra.cli.options import Duration, Timestamp, format_time


@click.command("materialize")
@click.argument("project", type=click.Path(exists=True))
@click.option("--data-root", default=".", type=click.Path(exists=True), help="Where source paths are relative to")
@click.option("--until", type=Timestamp(), default=None,
              help="Load rows with time < UNTIL (ISO date/datetime in UTC, or µs since the epoch)")
@click.option("--state", default="build/online", show_default=True, type=click.Path(), help="State directory")
@click.option("--allowed-lateness", type=Duration(), default="0s", show_default=True,
              help="How late a pushed row may be (e.g. 5m, or µs)")
def materialize(project, data_root, until, state, allowed_lateness):
    """Build the store from the offline sources and save it (atomically) to --state.

    Prints, per source, the rows read and those left out (null time, null key per entity)."""
    from astra.offline.errors import BackfillError
    from astra.online import Store
    from astra.online.errors import OnlineError
    from astra.project import Project, ProjectError

    t0 = time.perf_counter()
    try:
        plan = Project.load(project).plan
        store = Store(plan, allowed_lateness)
        counts = store.materialize(data_root, until)
        store.save(state)
    except (ProjectError, BackfillError, OnlineError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for c in counts.values():
        no_key = c.skipped - c.null_time
        hidden = "".join(f", {n} invisible to {e} (null key)" for e, n in c.null_key.items() if n)
        click.echo(f"{c.source}: {c.rows} rows read, {c.skipped} skipped ({c.null_time} null time"
                   + (f", {no_key} a null in every entity's key" if no_key else "") + f"){hidden}")
    rows = sum(tb.used - tb.holes for tb in store.tables)
    click.echo(f"materialized {rows} rows into {state} in {time.perf_counter() - t0:.2f} s "
               f"(queries from {format_time(store.horizon)} on, {store.nbytes() / 2**20:.1f} MiB)")
