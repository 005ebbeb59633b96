"""`astra fit`: the statistics of a service's fitted transforms, over a training spine, or the
covariance of a mahalanobis index, over its source file."""

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
@click.option("--service", "service_ref", help="The service, as name@vN (e.g. fraud_scores@v1).")
@click.option("--index", "index_ref", help="A `metric mahalanobis` index, as name@vN: fit its covariance instead.")
@click.option("--spine", type=click.Path(path_type=Path),
              help="Training entity keys and query times (.parquet/.csv/.arrow); with --service.")
@DATA_ROOT
@click.option("--time-column", default="ts", show_default=True, help="The spine's query-time column.")
@click.option("--start", type=Timestamp(), help="Train on spine rows at or after this time (ISO date/datetime, UTC).")
@click.option("--end", type=Timestamp(), help="Train on spine rows before this time (exclusive).")
@ALLOW_UNLOCKED
def fit_cmd(project: Path | None, service_ref: str | None, index_ref: str | None, spine: Path | None,
            data_root: Path | None, time_column: str, start: int | None, end: int | None, allow_unlocked: bool) -> None:
    """Fit SERVICE's transforms (standard_scale, quantile_bucketize, ordinal, impute, ...) on its
    backfill over the SPINE rows in [--start, --end), write the statistics to
    PROJECT/fits/<id>.json (the id is the hash of the content) and pin the service to that fit in
    astra.lock.  Backfill and serving refuse a transformed service until it is fitted.

    With --index NAME@vN instead: fit a `metric mahalanobis` index's covariance over every vector of
    its source file (under --data-root) and pin it the same way; the index is built by nothing
    until then."""
    if (service_ref is None) == (index_ref is None):
        fail("give exactly one of --service (a service's transforms) and --index (a mahalanobis index)", 2)
    if index_ref is not None:
        if spine is not None or start is not None or end is not None:
            fail("--spine, --start and --end are for --service; an index is fitted on its whole source file", 2)
        _fit_index(project, index_ref, data_root, allow_unlocked)
        return
    if spine is None:
        fail("--service needs --spine (the training entity keys and query times)", 2)
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


def _fit_index(project: Path | None, index_ref: str, data_root: Path | None, allow_unlocked: bool) -> None:
    from astra.errors import DataError
    from astra.plan import ir
    from astra.plan.fit import FitError, record_fit, recorded_fits, write_artifact
    from astra.plan.index_fit import fit_index, lock_key
    from astra.project import ProjectError, load_project

    root = project_dir(project)
    where = resolve_data_root(data_root, root)
    try:
        proj = load_project(root, allow_unlocked=allow_unlocked, escape="--allow-unlocked", fitted=False)
        decl = proj.plan.find_index(index_ref)
    except ProjectError as err:
        fail(str(err))
    except ir.IndexNotFound as err:
        fail(str(err))
    try:
        artifact = fit_index(proj.plan, decl, where)
    except (DataError, FitError) as err:
        fail(str(err))
    old = recorded_fits(root).get(lock_key(decl), {}).get("id")
    try:
        fid, path = write_artifact(root, artifact)
        record_fit(root, lock_key(decl), fid)
    except OSError as err:
        fail(f"cannot write the fit: {err.strerror or err} ({err.filename or root})")
    change = "unchanged" if old == fid else (f"replaces {old}" if old else "new")
    click.echo(f"fitted the covariance of index {decl.id} ({decl.dim} x {decl.dim}) on "
               f"{artifact['training']['vectors']:,} vectors: fit {fid} ({change}) -> {path}")
