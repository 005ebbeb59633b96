"""`astra fit`: the statistics of a service's fitted transforms, over a training spine."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from astra.cli.common import (
    ALLOW_UNLOCKED,
    DATA_ROOT,
    PROJECT,
    Stages,
    fail,
    note,
    project_dir,
    readable_file,
    resolve_data_root,
)
from astra.cli.options import Timestamp


@click.command("fit")
@PROJECT
@click.option("--service", "service_ref", required=True, help="The service, as name@vN (e.g. fraud_scores@v1).")
@click.option("--spine", type=click.Path(path_type=Path), required=True,
              help="Training entity keys and query times (.parquet/.csv/.arrow).")
@DATA_ROOT
@click.option("--time-column", default="ts", show_default=True, help="The spine's query-time column.")
@click.option("--start", type=Timestamp(), help="Train on spine rows at or after this time (ISO date/datetime, UTC).")
@click.option("--end", type=Timestamp(), help="Train on spine rows before this time (exclusive).")
@ALLOW_UNLOCKED
def fit_cmd(project: Path | None, service_ref: str, spine: Path, data_root: Path | None, time_column: str,
            start: int | None, end: int | None, allow_unlocked: bool) -> None:
    """Fit SERVICE's transforms (standard_scale, quantile_bucketize, ordinal, impute, ...) on its
    backfill over the SPINE rows in [--start, --end), write the statistics to
    PROJECT/fits/<id>.json (the id is the hash of the content) and pin the service to that fit in
    astra.lock.  Backfill and serving refuse a transformed service until it is fitted."""
    from astra.io import read_table
    from astra.offline.errors import BackfillError
    from astra.ops.transforms import FitDataError
    from astra.plan.fit import FitError, record_fit, recorded_fits, write_artifact
    from astra.plan.fitting import fit_service
    from astra.project import ProjectError, load_project

    if start is not None and end is not None and end <= start:
        fail("--end must be after --start", 2)
    root = project_dir(project)
    readable_file(spine, "--spine")
    where = resolve_data_root(data_root, root)
    stages = Stages("fit")
    try:
        proj = load_project(root, allow_unlocked=allow_unlocked, escape="--allow-unlocked", fitted=False)
        svc = proj.service(service_ref)
    except ProjectError as err:
        click.echo(str(err), err=True)
        sys.exit(1)
    for text in proj.notes:
        note(text)
    stages.done("loaded the project")
    try:
        table = read_table(spine)
        stages.done("read the spine:", table.height)
        artifact = fit_service(proj.plan, svc, table, where, time_column=time_column, start=start, end=end)
    except (BackfillError, FitDataError, FitError) as err:
        fail(str(err))
    old = recorded_fits(root).get(svc.id, {}).get("id")
    try:
        fid, path = write_artifact(root, artifact)
        record_fit(root, svc.id, fid)
    except OSError as err:  # a read-only project: one line, nothing half-written in the lock
        fail(f"cannot write the fit: {err.strerror or err} ({err.filename or root})")
    n = len(artifact["transforms"])
    rows = artifact["training"]["spine_rows"]
    change = "unchanged" if old == fid else (f"replaces {old}" if old else "new")
    click.echo(f"fitted {n} transform(s) of {svc.id} on {rows:,} spine rows: fit {fid} ({change}) -> {path}")
