"""`astra parity`: replay the offline data through a fresh online store and compare with backfill."""

from __future__ import annotations

import json
import sys
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
    readable_file,
    resolve_data_root,
)
from astra.cli.options import Duration


@click.command("parity")
@PROJECT
@click.option("--service", "service_ref", required=True, help="NAME@vN")
@click.option("--spine", required=True, type=click.Path(path_type=Path), help="Parquet/CSV/Arrow spine: keys + time")
@DATA_ROOT
@click.option("--time-column", default="ts", show_default=True)
@click.option("--allowed-lateness", type=Duration(), default="0s", show_default=True,
              help="As in .feat files (e.g. 5m)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@ALLOW_UNLOCKED
def parity(project, service_ref, spine, data_root, time_column, allowed_lateness, fmt, allow_unlocked):
    """Print the rows each engine read and a per-feature report; exit 1 on any mismatch.

    PROJECT defaults to ./features, the data root to the project directory.  Any bad input
    (project, spine, source file, store) is a one-line `error:` and exit 1."""
    from astra import io
    from astra.parity import run_parity
    from astra.project import ProjectError

    root = project_dir(project)
    readable_file(spine, "--spine")
    where = resolve_data_root(data_root, root)
    stages = Stages("parity")
    proj = load(root, allow_unlocked)
    try:
        svc = proj.service(service_ref)
    except ProjectError as err:
        fail(str(err))
    stages.done("loaded the project")
    try:
        table = io.read_table(spine)
        stages.done("read the spine:", table.height)
        report = run_parity(proj.plan, svc.name, svc.version, table, where, time_column, allowed_lateness)
        stages.done("replayed and compared", sum(f.rows for f in report.features))
    except Exception as exc:  # every failure is reported as one line, never a traceback
        fail(one_line(exc))
    click.echo(json.dumps(report.to_dict(), indent=2) if fmt == "json" else report.table())
    sys.exit(0 if report.ok else 1)


def one_line(exc: Exception) -> str:
    """An exception as one line: its message, prefixed by its type when that is not one of the
    engines' own input errors (whose messages already say what was wrong).  A project that does
    not compile keeps its located diagnostics as they are rendered."""
    from astra.offline.errors import BackfillError
    from astra.online.errors import OnlineError
    from astra.project import ProjectError

    if isinstance(exc, ProjectError):
        return str(exc)
    text = " ".join(str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).split())
    if isinstance(exc, BackfillError | OnlineError | KeyError | ValueError | OSError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
