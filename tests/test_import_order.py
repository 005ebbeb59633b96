"""Every module of the compiler and the engines imports on its own, first, in a fresh interpreter.

A user (or a test, or a plugin) may import `astra.ops.aggregations.histogram` before anything else;
a cycle between a package's registry and the modules it lists only shows up in that order, never
when the package is imported first as the CLI does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGES = ("lang", "plan", "ops", "offline", "online")
ROOT = Path(__file__).resolve().parents[1]

# One interpreter for all modules (startup is the cost), forgetting every astra module between
# two imports so each one is imported first.
SCRIPT = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "astra" or m.startswith("astra.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ":\\n" + traceback.format_exc(limit=-3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def _modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / "astra" / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_every_module_imports_first():
    modules = _modules()
    assert "astra.ops.aggregations.histogram" in modules  # the walk finds the registry's modules
    run = subprocess.run([sys.executable, "-c", SCRIPT, *modules], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert run.returncode == 0, f"modules that fail when imported first:\n{run.stdout}{run.stderr}"
