"""`astra backfill`: a point-in-time-correct training set for a spine, or a batch snapshot."""

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
    output_file,
    project_dir,
    readable_file,
    resolve_data_root,
)
from astra.cli.executor import executor_options
from astra.cli.options import Duration, Timestamp, parse_duration, parse_time  # noqa: F401  (re-exported)


@click.command("backfill")
@PROJECT
@click.option("--service", "service_ref", help="The service, as name@vN (e.g. fraud_model@v1).")
@click.option("--neighbors", "indexes", multiple=True, metavar="INDEX@vN",
              help="Add the k nearest keys to each spine row's key in this declared index, as it was at the "
              "row's time (repeatable; columns NAME_neighbors and NAME_distances).")
@click.option("-k", "--k", "k", type=click.IntRange(1, 9999), default=10, show_default=True,
              help="How many neighbours --neighbors adds per row.")
@click.option("--spine", type=click.Path(path_type=Path), help="Entity keys and query times (.parquet/.csv/.arrow).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Result file (.parquet/.csv/.arrow).")
@DATA_ROOT
@click.option("--time-column", default="ts", show_default=True, help="The spine's query-time column.")
@click.option("--every", type=Duration(), help="Snapshot mode: a schedule step such as 1d (needs --start and --end, "
              "no --spine).")
@click.option("--start", type=Timestamp(), help="Snapshot mode: first schedule time (ISO date or datetime, UTC).")
@click.option("--end", type=Timestamp(), help="Snapshot mode: last schedule time (inclusive).")
@ALLOW_UNLOCKED
@executor_options
def backfill(project: Path | None, service_ref: str | None, indexes: tuple[str, ...], k: int, spine: Path | None,
             out: Path, data_root: Path | None, time_column: str, every: int | None, start: int | None,
             end: int | None, allow_unlocked: bool, executor=None) -> None:
    """Compute SERVICE's features for every row of SPINE (each row sees only data from before its
    time), or with --every/--start/--end for every entity on a schedule, and write them to OUT.
    --neighbors adds, per spine row, the k nearest keys of an index as it was at the row's time.

    PROJECT defaults to ./features, the data root to the project directory.  Arguments and paths
    are checked before any work; every error is one line, exit 1 (2 for a usage error)."""
    from astra.io import read_table, write_table
    from astra.offline import backfill as run_backfill
    from astra.offline.errors import BackfillError
    from astra.offline.neighbors import nearest
    from astra.plan import ir
    from astra.project import ProjectError

    if service_ref is None and not indexes:
        fail("give --service (or --neighbors INDEX@vN, or both)", 2)
    snapshot_mode = every is not None or start is not None or end is not None
    if snapshot_mode and (every is None or start is None or end is None or spine is not None):
        fail("snapshot mode needs --every, --start and --end, and no --spine", 2)
    if snapshot_mode and (indexes or service_ref is None):
        fail("snapshot mode computes a --service's features; --neighbors needs a --spine", 2)
    if not snapshot_mode and spine is None:
        fail("give --spine (or --every/--start/--end for a snapshot)", 2)
    root = project_dir(project)
    output_file(out)
    if indexes and out.suffix.lower() == ".csv":
        fail(f"{out}: CSV cannot hold the list columns --neighbors adds; write .parquet or .arrow instead", 2)
    if spine is not None:
        readable_file(spine, "--spine")
    where = resolve_data_root(data_root, root)
    stages = Stages("backfill")
    proj = load(root, allow_unlocked)
    try:
        svc = None if service_ref is None else proj.service(service_ref)
        for ref in indexes:
            proj.plan.find_index(ref)
    except (ProjectError, ir.IndexNotFound) as err:
        fail(str(err))
    stages.done("loaded the project")
    try:
        if snapshot_mode:
            result = proj.snapshot(service=svc.id, every=every, start=start, end=end, data_root=where,
                                   executor=executor)
        else:
            table = read_table(spine)
            stages.done("read the spine:", table.height)
            # the engine, not Project.backfill: a missing time column names --time-column
            result = table
            if svc is not None:
                result = run_backfill(proj.plan, svc.name, svc.version, table, where, time_column=time_column,
                                      executor=executor)
            for ref in indexes:
                result = nearest(proj.plan, ref, result, where, k=k, time_column=time_column)
        stages.done("computed", result.height)
        write_table(result, out)
    except (BackfillError, ProjectError) as err:
        fail(str(err))
    stages.done(f"wrote {result.width} columns to {out}:", result.height)

