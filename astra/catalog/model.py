"""What a project defines, for the catalog: the checked plan, the declarations as written (for
metadata the plan does not keep and for the `.feat` text), the lock, and one page address per
definition.

Pages live one directory below the site root (`feature/user_spend.v1.tx_sum_7d.html`), so every
page reaches every other with `../`.  Names are identifiers (`[A-Za-z_][A-Za-z0-9_]*`), so they
are safe in file names; two names that differ only in case get distinct files, for file systems
that ignore case.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from astra.diagnostics import Collector
from astra.lang.resolve import Symbols
from astra.plan import ir
from astra.source import SourceFile

_SLUG = re.compile(r"[^A-Za-z0-9._-]")  # file names are the user's: keep URLs plain


class CatalogError(Exception):
    """A project the catalog cannot be built from; the message is ready to print."""


@attrs.frozen
class Catalog:
    """Everything a page is rendered from."""

    root: Path  # the project directory (or the directory of a one-file project)
    plan: ir.Plan
    syms: Symbols
    sources: dict[str, SourceFile]  # by the path spans carry
    lock: dict  # `astra.lock`'s groups ({} when there is none)
    urls: dict[tuple[str, str], str]  # (kind, key) -> page path from the site root
    files: dict[str, str]  # span path -> the file's path relative to the project
    notes: tuple[str, ...] = ()

    def url(self, kind: str, key: str, anchor: str = "") -> str | None:
        """The page of a definition, from the site root (None when it has none)."""
        page = self.urls.get((kind, key))
        if page is None:
            return None
        return page + (f"#{anchor}" if anchor else "")

    def group(self, gid: str) -> ir.Group:
        return next(g for g in self.plan.groups if g.id == gid)



def load_catalog(path: str | Path, *, allow_unlocked: bool = False) -> Catalog:
    """Compile the project at `path` as the engines do (refusing logic that differs from
    `astra.lock` unless `allow_unlocked`), and read its declarations as written."""
    from astra.compiler import compile_project
    from astra.diagnostics import render_all
    from astra.lang.project import load_modules
    from astra.lang.resolve import resolve
    from astra.plan.lock import LOCK_NAME, LockFileError, read_lock

    root = Path(path)
    result = compile_project(root, lock="run", escape="--allow-unlocked", allow_unlocked=allow_unlocked)
    if not result.ok or result.plan is None:
        raise CatalogError(render_all(result.diagnostics, result.sources))
    modules, sources = load_modules(root, Collector())  # parsed cleanly just above
    syms = resolve(modules, Collector())
    base = root if root.is_dir() else root.parent
    try:
        lock = (read_lock(base / LOCK_NAME) or {}).get("groups", {})
    except LockFileError:  # compile_project has already refused a malformed lock
        lock = {}
    files = {shown: _relative(src, base) for shown, src in sources.items()}
    return Catalog(root=base, plan=result.plan, syms=syms, sources=sources, lock=lock,
                   urls=page_urls(result.plan, files), files=files, notes=result.notes)


def _relative(src: SourceFile, base: Path) -> str:
    """A file's path relative to the project directory (imports may reach outside it)."""
    origin = Path(src.origin or src.path)
    try:
        return origin.relative_to(base.resolve()).as_posix()
    except ValueError:
        return origin.name


def page_urls(plan: ir.Plan, files: dict[str, str]) -> dict[tuple[str, str], str]:
    """One page per definition: (kind, key) -> `kind/slug.html`."""
    keys: list[tuple[str, str, str]] = []  # kind, key, slug
    keys += [("entity", e.name, e.name) for e in plan.entities]
    keys += [("source", s.name, s.name) for s in plan.sources]
    keys += [("request", r.name, r.name) for r in plan.requests]
    keys += [("group", g.id, f"{g.name}.v{g.version}") for g in plan.groups]
    keys += [("feature", f.id, f"{f.group}.v{f.version}.{f.name}") for f in plan.features]
    keys += [("service", s.id, f"{s.name}.v{s.version}") for s in plan.services]
    keys += [("file", shown, _SLUG.sub("_", rel.replace("../", "up.").replace("/", ".")))
             for shown, rel in sorted(files.items())]
    urls: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for kind, key, slug in keys:
        page = f"{kind}/{slug}.html"
        n = 1
        while page.lower() in taken:  # `User` and `user` on a file system that ignores case
            n += 1
            page = f"{kind}/{slug}-{n}.html"
        taken.add(page.lower())
        urls[kind, key] = page
    return urls
