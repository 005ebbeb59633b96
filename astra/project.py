"""The Python API: `Project.load(path)` then `.backfill(...)`, `.plan`, `.service(...)`."""

from __future__ import annotations

import contextlib
from pathlib import Path

import attrs

from astra.plan import ir


class ProjectError(Exception):
    """A project that does not compile, or a bad reference into it; the message is ready to print."""


@attrs.frozen
class Project:
    """A compiled project: its location and plan, with the engines' entry points."""

    path: Path
    plan: ir.Plan

    @classmethod
    def load(cls, path: str | Path) -> Project:
        """Compile the project at `path` (a directory of `.feat` files or one file).

        A fresh `build/plan.json` (same inputs, same compiler) is reused instead of compiling."""
        from astra.plan.artifact import plan_path, read_fresh_plan, write_plan

        root = Path(path)
        cached = read_fresh_plan(root) if root.exists() else None
        if cached is not None:
            return cls(path=root, plan=cached)
        # the compiler (lark, networkx) is imported only when the cached plan is stale
        from astra.compiler import compile_project
        from astra.diagnostics import render_all

        result = compile_project(root, lock="ignore")
        if not result.ok:
            raise ProjectError(render_all(result.diagnostics, result.sources))
        with contextlib.suppress(OSError):  # a read-only project still loads; it compiles every time
            write_plan(plan_path(root), result.plan, result.sources)
        return cls(path=root, plan=result.plan)

    def service(self, ref: str, version: int | None = None) -> ir.Service:
        """Look a service up by `name@vN` (or name plus `version`); the error lists what exists."""
        try:
            return self.plan.find_service(ref, version)
        except ir.ServiceNotFound as err:
            raise ProjectError(str(err)) from None

    def backfill(self, spine, *, service: str, data_root: str | Path | None = None, time_column: str = "ts",
                 version: int | None = None, progress: bool = False):
        """Point-in-time-correct features for every row of `spine` (Polars or pandas DataFrame)."""
        import polars as pl

        from astra.offline import backfill

        svc = self.service(service, version)
        if not isinstance(spine, pl.DataFrame):
            spine = pl.from_pandas(spine) if hasattr(spine, "to_numpy") and hasattr(spine, "columns") \
                else pl.DataFrame(spine)
        root = Path(data_root) if data_root is not None else self.path
        return backfill(self.plan, svc.name, svc.version, spine, root, time_column=time_column, progress=progress)
