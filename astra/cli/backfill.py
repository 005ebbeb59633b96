"""`astra backfill`: a point-in-time-correct training set for a spine, or a batch snapshot."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from astra.cli.options import parse_duration, parse_time


@click.command("backfill")
@click.argument("project", type=click.Path(exists=True, path_type=Path))
@click.option("--service", "service_ref", required=True, help="The service, as name@vN (e.g. fraud_model@v1).")
@click.option("--spine", type=click.Path(path_type=Path), help="Entity keys and query times (.parquet/.csv/.arrow).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Result file (.parquet/.csv/.arrow).")
@click.option("--data-root", type=click.Path(path_type=Path), help="Where source paths are resolved "
              "(default: the project directory).")
@click.option("--time-column", default="ts", show_default=True, help="The spine's query-time column.")
@click.option("--every", help="Snapshot mode: a schedule step such as 1d (needs --start and --end, no --spine).")
@click.option("--start", help="Snapshot mode: first schedule time (ISO date or datetime, UTC).")
@click.option("--end", help="Snapshot mode: last schedule time (inclusive).")
def backfill(project: Path, service_ref: str, spine: Path | None, out: Path, data_root: Path | None,
             time_column: str, every: str | None, start: str | None, end: str | None) -> None:
    """Compute SERVICE's features for every row of SPINE (each row sees only data from before its
    time), or with --every/--start/--end for every entity on a schedule, and write them to OUT."""
    from astra.offline import backfill as run_backfill
    from astra.offline import snapshot
    from astra.offline.errors import BackfillError
    from astra.offline.io import read_table, table_format, write_table
    from astra.project import Project, ProjectError

    snapshot_mode = every is not None or start is not None or end is not None
    if snapshot_mode and (every is None or start is None or end is None or spine is not None):
        _fail("snapshot mode needs --every, --start and --end, and no --spine")
    if not snapshot_mode and spine is None:
        _fail("give --spine (or --every/--start/--end for a snapshot)")
    tty = sys.stderr.isatty()
    t0 = time.perf_counter()
    try:
        table_format(out)
        proj = Project.load(project)
        svc = proj.service(service_ref)
        root = data_root if data_root is not None else project
        if snapshot_mode:
            result = snapshot(proj.plan, svc.name, svc.version, root, parse_duration(every), parse_time(start),
                              parse_time(end), progress=tty)
        else:
            result = run_backfill(proj.plan, svc.name, svc.version, read_table(spine), root,
                                  time_column=time_column, progress=tty)
        write_table(result, out)
    except (BackfillError, ProjectError) as err:
        _fail(str(err))
    if tty:
        click.echo(f"wrote {result.height:,} rows x {result.width} columns to {out} "
                   f"({time.perf_counter() - t0:.2f} s)", err=True)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
