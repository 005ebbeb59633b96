"""`astra parity`: replay the offline data through a fresh online store and compare with backfill."""

from __future__ import annotations

import sys

import click


@click.command("parity")
@click.argument("project", type=click.Path(exists=True))
@click.option("--service", "service_ref", required=True, help="NAME@vN")
@click.option("--spine", required=True, type=click.Path(exists=True), help="Parquet/CSV spine: keys + time")
@click.option("--data-root", default=".", type=click.Path(exists=True), help="Where source paths are relative to")
@click.option("--time-column", default="ts", show_default=True)
@click.option("--allowed-lateness", default=0, show_default=True, help="µs")
def parity(project, service_ref, spine, data_root, time_column, allowed_lateness):
    """Print a per-feature report; exit 1 on any mismatch."""
    from astra.offline import io
    from astra.online.parity import run_parity
    from astra.project import Project, ProjectError

    try:
        proj = Project.load(project)
        svc = proj.service(service_ref)
        report = run_parity(proj.plan, svc.name, svc.version, io.read_table(spine), data_root, time_column,
                            allowed_lateness)
    except (ProjectError, KeyError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(report.table())
    sys.exit(0 if report.ok else 1)
