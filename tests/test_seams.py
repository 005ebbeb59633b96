"""The pipeline's seams hold: the online engine never loads the offline one (a server process
stays small and cannot pick up Polars-only behaviour), the shared table reader and parity
check live outside both engines, and the operator registry (`astra.ops`) imports no engine: its
kernels see windows only through the structures of `astra.ops.structures`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "astra"


def imported_modules(folder: Path) -> set[tuple[str, str]]:
    """(file, module) for every import statement in the .py files under `folder`, at any depth
    (imports inside functions and under TYPE_CHECKING count: they run, or name what they need).
    `from a import b` yields both `a` and `a.b` (b may be a module); relative imports are resolved."""
    found = set()
    for path in folder.rglob("*.py"):
        package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join([*package[:len(package) - node.level + 1], *([node.module] if node.module else [])]) \
                    if node.level else node.module
                found.add((path.name, base))
                found.update((path.name, f"{base}.{alias.name}") for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update((path.name, alias.name) for alias in node.names)
    return found


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_online_engine_source_names_no_offline_module():
    crossing = sorted(f"{f}: {m}" for f, m in imported_modules(PACKAGE / "online") if _under(m, ("astra.offline",)))
    assert crossing == []


def test_operator_registry_names_no_engine_module():
    found = imported_modules(PACKAGE / "ops")
    assert ("registry.py", "astra.lang.types") in found  # the walk sees the registry's own imports
    crossing = sorted(f"{f}: {m}" for f, m in found if _under(m, ("astra.offline", "astra.online", "astra.serve")))
    assert crossing == []


def test_the_import_walk_resolves_the_forms_that_could_hide_an_engine(tmp_path, monkeypatch):
    """`from astra import offline`, a relative `from ..online import view` and an import inside a
    function under TYPE_CHECKING are all seen as imports of the engine."""
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "astra")
    folder = tmp_path / "astra" / "ops"
    folder.mkdir(parents=True)
    (folder / "a.py").write_text("from astra import offline\n")
    (folder / "b.py").write_text("from ..online import view\n")
    (folder / "c.py").write_text("if TYPE_CHECKING:\n    def f():\n        import astra.serve.app\n")
    found = imported_modules(folder)
    assert {m for _, m in found if _under(m, ("astra.offline", "astra.online", "astra.serve"))} == {
        "astra.offline", "astra.online", "astra.online.view", "astra.serve.app"}


def test_loading_the_operator_registry_loads_no_engine():
    code = (
        "import sys, astra.ops.aggregations, astra.ops.functions, astra.ops.structures, astra.ops.doc_tables\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['astra', 'offline'], ['astra', 'online'],"
        " ['astra', 'serve'])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_loading_and_querying_the_online_store_loads_no_offline_module():
    code = (
        "import sys, astra.online.store, astra.online.ingest, astra.serve.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('astra.offline')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def _members(protocol: type) -> dict[str, object]:
    """The methods and properties a protocol declares."""
    return {k: v for k, v in vars(protocol).items()
            if not k.startswith("_") and (callable(v) or isinstance(v, property))}


def test_the_engines_window_objects_offer_every_structure_the_kernels_may_ask_for():
    """Each method of the protocols in astra/ops/structures.py exists on the engine's class with
    the same parameters, so a kernel written against the protocol runs on either engine."""
    import inspect

    from astra.offline.windows import Window
    from astra.online.single import Single
    from astra.online.view import WindowView
    from astra.ops.structures import OfflineWindow, OnlineSingle, OnlineWindow

    for protocol, engine in ((OfflineWindow, Window), (OnlineWindow, WindowView), (OnlineSingle, Single)):
        members = _members(protocol)
        assert "count" in members
        for name, declared in members.items():
            got = inspect.getattr_static(engine, name, None)
            assert got is not None, f"{engine.__name__} lacks {name}"
            if isinstance(declared, property):
                assert isinstance(got, property), f"{engine.__name__}.{name} is not a property"
                continue
            want = list(inspect.signature(declared).parameters)
            have = list(inspect.signature(got).parameters)[:len(want)]
            assert have == want, f"{engine.__name__}.{name}{tuple(have)} differs from the protocol's {tuple(want)}"
