"""`astra docs`: build the project's catalog, a static HTML site that opens from the file system."""

from __future__ import annotations

import os
from pathlib import Path

import click

from astra.cli.common import ALLOW_UNLOCKED, DATA_ROOT, PROJECT, Stages, fail, note, project_dir


@click.command("docs")
@PROJECT
@click.option("--out", type=click.Path(path_type=Path), default=Path("site"), show_default=True,
              help="The directory to write the site into: new, empty, or built by astra docs before.")
@DATA_ROOT
@click.option("--no-stats", is_flag=True, help="Leave feature statistics out (they read the offline data).")
@click.option("--sample", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="At most this many source rows per feature group for the statistics.")
@ALLOW_UNLOCKED
def docs_cmd(project: Path | None, out: Path, data_root: Path | None, no_stats: bool, sample: int,
             allow_unlocked: bool) -> None:
    """Build the HTML catalog of PROJECT (default ./features): a page per entity, source, feature
    group, feature and service with types, owners, versions, windows, lineage and the .feat source,
    and a search box.  Statistics of every feature come from the offline data under --data-root
    (default: the project directory, when the sources are there).  Open OUT/index.html."""
    from astra.catalog import CatalogError, OutputError, load_catalog, site_files
    from astra.catalog.site import check_output, write_site
    from astra.catalog.stats import feature_stats
    from astra.io import source_path
    from astra.project import default_data_root

    root = project_dir(project)
    _check_out(out)
    try:
        check_output(out)
    except OutputError as err:
        fail(str(err))
    if data_root is not None and not data_root.is_dir():
        fail(f"data root `{data_root}` is not a directory")
    stages = Stages("docs")
    try:
        cat = load_catalog(root, allow_unlocked=allow_unlocked)
    except CatalogError as err:
        click.echo(str(err), err=True)
        raise SystemExit(1) from None
    for text in cat.notes:
        note(text)
    stages.done("loaded the project")
    stats, why = None, ""
    base = data_root if data_root is not None else default_data_root(root)
    have = [s for s in cat.plan.sources if source_path(s, base).is_file()]
    if no_stats:
        why = "no statistics: built with --no-stats"
    elif data_root is None and len(have) < len(cat.plan.sources):
        why = "no statistics: the sources are not under the project directory; give --data-root"
        note(why)
    else:
        from astra.plan.fit import bind_recorded  # statistics of fitted transforms need their pinned fit

        stats = feature_stats(bind_recorded(cat.plan, cat.root)[0], base, sample)
        missing = sorted({v.split(": ", 1)[-1] for v in stats.values() if isinstance(v, str)
                          and v.startswith(("the offline data", "the backfill"))})
        for text in missing:
            note(f"statistics left out: {text}")
        stages.done("computed statistics")
    files = site_files(cat, stats, why)
    try:
        write_site(out, files)
    except (OutputError, OSError) as err:
        fail(f"cannot write the site into `{out}`: {getattr(err, 'strerror', None) or err}")
    pages = sum(1 for f in files if f.endswith(".html"))
    stages.done(f"wrote {out}/index.html:", pages, unit="pages")


def _check_out(out: Path) -> None:
    """Refuse, before any work, an --out whose parent is missing or not writable."""
    parent = out.parent
    if not parent.is_dir():
        fail(f"cannot write --out `{out}`: " + (f"`{parent}` is not a directory" if parent.exists()
                                                else f"directory `{parent}` does not exist"))
    if out.exists() and not out.is_dir():
        fail(f"--out `{out}` exists and is not a directory")
    target = out if out.exists() else parent
    if not os.access(target, os.W_OK | os.X_OK):
        fail(f"cannot write --out `{out}`: `{target}` is not writable")
