"""`build/plan.json`: the compiled plan, for the engines and for tools.

It records a hash of every `.feat` file it was compiled from (and of the compiler itself), so
`Project.load` can reuse it instead of parsing again when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from astra.lang.project import project_files
from astra.plan import ir
from astra.plan.serialize import from_data, to_data
from astra.source import SourceFile

FORMAT = 1


def plan_path(root: Path) -> Path:
    """Where the compiled plan of the project at `root` is written."""
    return (root if root.is_dir() else root.parent) / "build" / "plan.json"


def _compiler_version() -> str:
    """Changes whenever the compiler's own code or grammar changes, invalidating cached plans."""
    import astra

    package = Path(astra.__file__).parent
    # only what shapes a plan: the language, the plan builder, the operators' type rules, the grammar
    files = [*package.glob("*.py"), *package.glob("lang/*.py"), *package.glob("plan/*.py"),
             *package.glob("ops/*.py"), *package.glob("grammar/*.lark"), *package.parent.glob("grammar/*.lark")]
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_plan(target: Path, plan: ir.Plan, sources: dict[str, SourceFile]) -> None:
    """Write the plan with the hashes of its inputs, atomically."""
    inputs = {s.origin or str(Path(s.path).resolve()): _digest(s.text) for s in sources.values()}
    from astra.plan.graph import lineage

    data = {"format": FORMAT, "compiler": _compiler_version(), "inputs": inputs, "plan": to_data(plan),
            "lineage": lineage(plan)}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(target)


def read_fresh_plan(root: Path) -> ir.Plan | None:
    """The cached plan of the project at `root`, or None when it is missing or stale."""
    target = plan_path(root)
    try:
        data = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != FORMAT or data.get("compiler") != _compiler_version():
        return None
    inputs: dict[str, str] = data.get("inputs", {})
    entries = {str(p.resolve()) for p in project_files(root)}
    if not entries or not entries <= inputs.keys():
        return None  # a new top-level file
    for path, digest in inputs.items():
        try:
            if _digest(Path(path).read_text(encoding="utf-8")) != digest:
                return None
        except OSError:
            return None
    try:
        return from_data(data["plan"])
    except (KeyError, TypeError, ValueError):
        return None
