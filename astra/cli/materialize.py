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
    """Build the store from the offline sources and save it (atomically) to --state."""
    from astra.online import Store
    from astra.project import Project, ProjectError

    try:
        plan = Project.load(project).plan
    except ProjectError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    t0 = time.perf_counter()
    store = Store(plan, allowed_lateness)
    store.materialize(data_root, until)
    store.save(state)
    rows = sum(tb.used - tb.holes for tb in store.tables)
    click.echo(f"materialized {rows} rows into {state} in {time.perf_counter() - t0:.2f} s "
               f"(queries from {format_time(store.horizon)} on, {store.nbytes() / 2**20:.1f} MiB)")
