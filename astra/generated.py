"""Files generated from the code (the editor grammar, the docs' operator tables): one `--write` /
`--check` entry point, so each generator only says how to render its file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(argv: list[str], module: str, path: Path, render: Callable[[str], str], what: str,
                   command: str) -> int:
    """`--write`: render `path` (from its current text, "" when absent) and write it if it changed;
    `--check`: exit 1 when the file differs from what would be written, naming `what` and the
    `command` that regenerates it.  Exit 2 on bad usage."""
    if argv not in (["--write"], ["--check"]):
        print(f"usage: python -m {module} --write | --check", file=sys.stderr)
        return 2
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        new = render(old)
    except (OSError, ValueError) as err:
        print(f"error: {path.name}: {err}", file=sys.stderr)
        return 1
    if argv == ["--check"]:
        if new != old:
            print(f"error: {what} is out of date: run `{command}`", file=sys.stderr)
            return 1
        return 0
    if new != old:
        path.write_text(new, encoding="utf-8")
    return 0
