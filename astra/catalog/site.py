"""Writing the site into its output directory without ever touching a file it did not write.

A directory astra built holds a manifest (`MANIFEST`) of the files it wrote.  Building again into
it replaces them and removes those no longer produced; a directory that exists, is not empty and
has no manifest is refused, since its files are someone else's.
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = ".astra-catalog.json"


class OutputError(Exception):
    """An output directory the catalog may not write into; the message is ready to print."""


def check_output(out: Path) -> None:
    """Refuse an output directory that holds files astra did not write."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out `{out}` exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise OutputError(f"--out `{out}` is not empty and was not built by `astra docs` (no {MANIFEST}); "
                          "give a new or empty directory")


def previous_files(out: Path) -> list[str]:
    """The files the last build wrote (relative paths), [] when there was none."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return [f for f in data.get("files", []) if isinstance(f, str)]
    except (OSError, ValueError, AttributeError):
        return []


def write_site(out: Path, files: dict[str, str]) -> None:
    """Write `files` (relative path -> text) under `out`, then remove what the previous build
    wrote and this one did not."""
    check_output(out)
    old = previous_files(out)
    out.mkdir(exist_ok=True)
    base = out.resolve()
    for rel, text in files.items():
        path = _inside(base, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for rel in old:
        if rel in files:
            continue
        try:
            path = _inside(base, rel)
        except OutputError:
            continue  # a manifest edited to point outside --out: never delete there
        if path.is_file() and not path.is_symlink():
            path.unlink()
            _prune(path.parent, base)
    (out / MANIFEST).write_text(json.dumps({"files": sorted(files)}, indent=0) + "\n", encoding="utf-8")


def _inside(base: Path, rel: str) -> Path:
    path = (base / rel).resolve()
    if base not in path.parents:
        raise OutputError(f"refusing to write outside --out: {rel}")
    return path


def _prune(directory: Path, base: Path) -> None:
    """Remove directories this build emptied, up to the output directory itself."""
    while directory != base and base in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
