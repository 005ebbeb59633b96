"""The project catalog (`astra docs`): a static HTML site with a page per entity, source,
request, feature group, feature, service and `.feat` file, column-level lineage drawings, a
client-side search and, given the offline data, statistics of every feature.

    load_catalog (compile, declarations, lock, page addresses) -> feature_stats (optional)
    -> Pages (jinja2) -> write_site
"""

from __future__ import annotations

from pathlib import Path

from astra.catalog.model import Catalog, CatalogError, load_catalog
from astra.catalog.site import OutputError

__all__ = ["Catalog", "CatalogError", "OutputError", "build_site", "load_catalog", "site_files"]


def site_files(cat: Catalog, stats=None, stats_note: str = "") -> dict[str, str]:
    """Every file of the site (relative path -> text)."""
    from astra.catalog.render import Pages, static_files

    pages = Pages(cat, stats, stats_note)
    files = dict(pages.all_pages())
    files["search-index.js"] = pages.search_index()
    files.update({f"static/{name}": text for name, text in static_files().items()})
    return files


def build_site(project: str | Path, out: str | Path, *, data_root: str | Path | None = None,
               allow_unlocked: bool = False, sample: int | None = None) -> int:
    """Build the catalog of `project` into `out`; with `data_root`, feature statistics from the
    offline data there.  Returns the number of pages written."""
    from astra.catalog.site import check_output, write_site
    from astra.catalog.stats import SAMPLE, feature_stats

    out = Path(out)
    check_output(out)
    cat = load_catalog(project, allow_unlocked=allow_unlocked)
    from astra.plan.fit import bind_recorded  # statistics of fitted transforms need their pinned fit

    stats = feature_stats(bind_recorded(cat.plan, cat.root)[0], Path(data_root), sample or SAMPLE) \
        if data_root is not None else None
    files = site_files(cat, stats, "" if stats is not None else "no statistics: built without --data-root")
    write_site(out, files)
    return sum(1 for f in files if f.endswith(".html"))
