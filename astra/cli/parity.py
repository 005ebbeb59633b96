"""`astra parity`: replay the offline data through a fresh online store and compare with backfill."""

from __future__ import annotations

import json
import sys

import click


@click.command("parity")
@click.argument("project", type=click.Path(exists=True))
@click.option("--service", "service_ref", required=True, help="NAME@vN")
@click.option("--spine", required=True, help="Parquet/CSV/Arrow spine: keys + time")
@click.option("--data-root", default=".", help="Where source paths are relative to")
@click.option("--time-column", default="ts", show_default=True)
@click.option("--allowed-lateness", default=0, show_default=True, help="µs")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def parity(project, service_ref, spine, data_root, time_column, allowed_lateness, fmt):
    """Print the rows each engine read and a per-feature report; exit 1 on any mismatch.

    Any bad input (project, spine, source file, store) is a one-line `error:` and exit 1."""
    from astra.offline import io
    from astra.online.parity import run_parity
    from astra.project import Project

    try:
        proj = Project.load(project)
        svc = proj.service(service_ref)
        report = run_parity(proj.plan, svc.name, svc.version, io.read_table(spine), data_root, time_column,
                            allowed_lateness)
    except Exception as exc:  # every failure is reported as one line, never a traceback
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(1)
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
