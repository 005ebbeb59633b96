"""Finding and parsing a project's `.feat` files, following `import`s.

A project is a directory (every `.feat` file directly inside it, plus what they import) or a
single `.feat` file.  Imports are relative to the importing file; a directory import takes every
`.feat` file in that directory.  Each file is parsed once however often it is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from astra.diagnostics import Collector
from astra.source import SourceFile

if TYPE_CHECKING:  # the AST's ~60 attrs classes take ~50 ms to build: `project_files` alone needs none
    from astra.lang import ast


def project_files(root: Path) -> list[Path]:
    """The entry files of a project: a single file, or the `.feat` files of a directory."""
    return [root] if root.is_file() else sorted(root.glob("*.feat"))


def load_modules(root: Path, diags: Collector, read: Callable[[Path, str], SourceFile] = SourceFile.read,
                 ) -> tuple[list[ast.Module], dict[str, SourceFile]]:
    """Parse the project at `root`; syntax errors go to `diags`, and of a file that has some only
    the declarations they did not damage are kept (the names of the others go to `diags.uncertain`).
    `read(path, display)` gives a file's text: an editor passes one that prefers unsaved buffers."""
    from astra.lang import ast
    from astra.lang.parser import parse_partial
    from astra.lang.recover import keep_undamaged

    base = root if root.is_dir() else root.parent
    modules: list[ast.Module] = []
    sources: dict[str, SourceFile] = {}
    seen: set[Path] = set()
    queue = [p.resolve() for p in project_files(root)]
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        display = _display(path, base)
        try:
            src = read(path, display)
        except (OSError, UnicodeDecodeError) as err:
            diags.error("E0110", f"cannot read `{display}`: {getattr(err, 'strerror', None) or err}")
            continue
        sources[display] = src
        parsed = parse_partial(src)
        for d in parsed.diagnostics:
            diags.add(d)
        module = parsed.module
        if parsed.diagnostics:
            module, lost = keep_undamaged(parsed, src)
            diags.uncertain |= lost
        if module is None:
            continue
        modules.append(module)
        for decl in module.decls:
            if isinstance(decl, ast.Import):
                queue.extend(_resolve_import(decl, path.parent, diags))
    return modules, sources


def _resolve_import(imp: ast.Import, here: Path, diags: Collector) -> list[Path]:
    try:
        target = (here / imp.path).resolve()
        if target.is_dir():
            files = sorted(target.glob("*.feat"))
            if not files:
                diags.error("E0110", f"import `{imp.path}`: the directory has no `.feat` files", imp.span)
            return files
        if target.is_file():
            return [target]
    except (OSError, ValueError, RuntimeError) as err:  # a NUL byte, a name too long, a symlink loop
        diags.error("E0110", f"import `{imp.path[:80]}`: not a readable path ({getattr(err, 'strerror', None) or err})",
                    imp.span, label="imported here")
        return []
    diags.error("E0110", f"import `{imp.path}`: no such file or directory", imp.span,
                label="imported here", help=f"paths are relative to the importing file's directory ({here.name}/)")
    return []


def _display(path: Path, base: Path) -> str:
    """Paths in diagnostics: relative to the working directory when possible, never absolute noise."""
    for anchor in (Path.cwd(), base.resolve()):
        try:
            return str(path.relative_to(anchor))
        except ValueError:
            continue
    return str(path)
