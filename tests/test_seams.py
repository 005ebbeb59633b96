"""The pipeline's seams hold: the online engine never loads the offline one (a server process
stays small and cannot pick up Polars-only behaviour), and the shared table reader and parity
check live outside both engines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "astra"


def imported_modules(folder: Path) -> set[tuple[str, str]]:
    """(file, module) for every import statement in the .py files under `folder`, at any depth
    (imports inside functions count: they run too)."""
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                found.update((path.name, alias.name) for alias in node.names)
    return found


def test_online_engine_source_names_no_offline_module():
    crossing = sorted(f"{f}: {m}" for f, m in imported_modules(PACKAGE / "online") if m.startswith("astra.offline"))
    assert crossing == []


def test_loading_and_querying_the_online_store_loads_no_offline_module():
    code = (
        "import sys, astra.online.store, astra.online.ingest, astra.serve.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('astra.offline')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
