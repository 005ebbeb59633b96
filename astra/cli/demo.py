"""`astra demo`: the whole pipeline on embedded defaults, from nothing to a training set."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


def example_project() -> Path:
    """The example project: the copy shipped in the wheel, else the checkout's `features/`.

    Found from this file, never from the working directory: the demo is the first command a user
    runs, from wherever they are, and a `features/` of their own is not the example.
    """
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "example_project", package.parent / "features"):
        if (candidate / "services.feat").is_file():
            return _shown(candidate)
    raise click.ClickException(f"the example project is missing from this installation ({package})")


def _shown(path: Path) -> Path:
    """`path` relative to the working directory when it is inside it: `features`, not a long path."""
    try:
        return path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/demo"), show_default=True,
              help="Where demo data and results go.")
@click.option("--events", type=int, default=200_000, show_default=True)
def demo(out: Path, events: int) -> None:
    """Generate demo data, compile the example project, backfill `fraud_model` v1 and v2, and check
    that the online store serves exactly the same values."""
    import polars as pl

    from astra.compiler import compile_project
    from astra.demo_data import generate
    from astra.diagnostics import render_all
    from astra.offline.errors import BackfillError
    from astra.project import Project

    project = example_project()
    t0 = time.perf_counter()
    generate(out, events=events)
    click.echo(f"1. generated {events:,} transactions, profiles and a 20,000-row spine in {out}/ "
               f"({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    result = compile_project(project, lock="run", escape="")
    if not result.ok:
        click.echo(render_all(result.diagnostics, result.sources), err=True)
        sys.exit(1)
    plan = result.plan
    click.echo(f"2. compiled {project}/: {len(plan.features)} features in {len(plan.groups)} group versions, "
               f"services {', '.join(s.id for s in plan.services)} ({time.perf_counter() - t0:.2f} s)")
    proj = Project(path=project, plan=plan)
    spine = pl.read_parquet(out / "spine.parquet")
    tables = {}
    for service in ("fraud_model@v1", "fraud_model@v2"):
        t0 = time.perf_counter()
        try:
            tables[service] = table = proj.backfill(spine, service=service, data_root=out)
        except BackfillError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)
        target = out / f"{service.replace('@', '_')}.parquet"
        table.write_parquet(target)
        click.echo(f"3. backfilled {service}: {table.height:,} rows x {table.width - spine.width} features "
                   f"-> {target} ({time.perf_counter() - t0:.2f} s)")
    from astra.parity import run_parity

    for version in (1, 2):
        t0 = time.perf_counter()
        report = run_parity(plan, "fraud_model", version, spine, out)
        values = sum(f.rows for f in report.features)
        bad = sum(f.mismatches for f in report.features)
        click.echo(f"4. replayed the data through the online store for fraud_model@v{version}: "
                   f"{values:,} values compared with the backfill, {bad} mismatches ({time.perf_counter() - t0:.1f} s)")
        if not report.ok:
            click.echo(report.table(), err=True)
            sys.exit(1)
    shown = ["user_id", "ts", "tx_count_7d", "tx_mean_7d", "merchants_30d", "last_category", "country",
             "spend_ratio_1d_30d"]
    with pl.Config(tbl_width_chars=150, tbl_cols=len(shown), tbl_rows=6, fmt_str_lengths=20):
        busy = tables["fraud_model@v1"].filter(pl.col("tx_count_7d") > 0)
        click.echo(busy.select(shown).head(6))
    at = "" if project == Path("features") else f" {project}"  # the commands default to ./features
    click.echo(f"\nnext: `astra explain tx_mean_7d{at}`, "
               f"`astra graph{at} --service fraud_model@v2`, "
               f"edit {project / 'spend.feat'} and run `astra compile{at}`")
