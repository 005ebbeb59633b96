"""The Python API: `Project.load(path)`, then `.backfill(...)`, `.snapshot(...)`, `.store(...)`, `.plan`,
`.service(...)`."""

from __future__ import annotations

import contextlib
from pathlib import Path

import attrs

from astra.plan import ir


class ProjectError(Exception):
    """A project that does not compile, or a bad reference into it; the message is ready to print."""


@attrs.frozen
class Project:
    """A compiled project: its location and plan, with the engines' entry points.

    `notes` says what loading it found worth knowing, such as versions not yet in `astra.lock`."""

    path: Path
    plan: ir.Plan
    notes: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | Path, *, allow_unlocked: bool = False) -> Project:
        """Compile the project at `path` (a directory of `.feat` files or one file).

        A version whose logic differs from `astra.lock` is refused (`ProjectError`, with the
        E0601 diagnostic `astra compile` prints) unless `allow_unlocked=True`, an escape hatch for
        development; versions not in the lock yet load, with a note in `notes`.
        A fresh `build/plan.json` (same inputs, same compiler) is reused instead of compiling,
        and checked against the lock all the same."""
        return load_project(path, allow_unlocked=allow_unlocked)

    def service(self, ref: str, version: int | None = None) -> ir.Service:
        """Look a service up by `name@vN` (or name plus `version`); the error lists what exists."""
        try:
            return self.plan.find_service(ref, version)
        except ir.ServiceNotFound as err:
            raise ProjectError(str(err)) from None

    def backfill(self, spine, *, service: str | None = None, data_root: str | Path | None = None,
                 time_column: str = "ts", version: int | None = None, progress: bool = False, executor=None,
                 execution=None, neighbors: str | list[str] | tuple[str, ...] = (), k: int = 10):
        """Point-in-time-correct features for every row of `spine` (Polars or pandas DataFrame).

        The spine holds the keys of the service's entities and a query time in `time_column`; the
        result is the spine's columns followed by the service's outputs (a Polars DataFrame).
        `neighbors` (index versions, `name@vN`) adds per index two columns, `NAME_neighbors` and
        `NAME_distances`: the `k` keys nearest to the row's key as the index was at the row's time
        (the spine then holds that key; `service` may be left out).
        `executor` runs it on Dask instead of this process, with the same result: `"dask"` (a local
        cluster), `"dask://host:port"`, a `distributed.Client` or an
        `astra.offline.distributed.DaskExecutor` (docs/backfill.md, Distributed backfill).
        `execution` (an `astra.offline.ExecutionConfig`) sets chunk sizes and threads; the answers
        never depend on it.
        Raises `BackfillError` for bad input (spine, source files, k), `ProjectError` for an unknown service
        or index."""
        import polars as pl

        from astra.offline import BackfillError, backfill
        from astra.offline.neighbors import nearest

        refs = (neighbors,) if isinstance(neighbors, str) else tuple(neighbors)
        if service is None and not refs:
            raise ProjectError("say what to compute: service='name@vN', neighbors=['index@vN'], or both")
        svc = None if service is None else self.service(service, version)
        for ref in refs:  # every reference is checked before any work
            try:
                self.plan.find_index(ref)
            except ir.IndexNotFound as err:
                raise ProjectError(str(err)) from None
        if not isinstance(spine, pl.DataFrame):
            spine = pl.from_pandas(spine) if hasattr(spine, "to_numpy") and hasattr(spine, "columns") \
                else pl.DataFrame(spine)
        if time_column not in spine.columns:  # checked here to name the keyword, not the CLI's flag
            raise BackfillError(f"spine has no time column `{time_column}`; its columns are "
                                f"{', '.join(spine.columns)} (pass time_column=... to use another)")
        root = self._data_root(data_root)
        if svc is not None:
            spine = backfill(self.plan, svc.name, svc.version, spine, root, time_column=time_column,
                             progress=progress, executor=executor, execution=execution)
        for ref in refs:
            spine = nearest(self.plan, ref, spine, root, k=k, time_column=time_column)
        return spine

    def snapshot(self, *, service: str, every, start, end, data_root: str | Path | None = None,
                 version: int | None = None, progress: bool = False, executor=None, execution=None):
        """Batch scoring (`astra backfill --every`): the service's outputs for every entity key known
        at each of `start`, `start + every`, ... up to `end` (inclusive).

        `every` is a `timedelta`, a duration such as `"1d"` or int µs; `start` and `end` a
        `datetime`, `date` (naive means UTC), ISO string or int µs since the epoch.  Returns a Polars
        DataFrame: the key columns, `ts`, the outputs.  `executor` and `execution` as for `backfill`."""
        from astra.offline import snapshot
        from astra.times import duration_micros, micros

        svc = self.service(service, version)
        return snapshot(self.plan, svc.name, svc.version, self._data_root(data_root), duration_micros(every, "every"),
                        micros(start, "start"), micros(end, "end"), progress=progress, executor=executor,
                        execution=execution)

    def store(self, *, data_root: str | Path | None = None, services: list[str] | None = None,
              allowed_lateness=0):
        """An online `Store` for this project, materialized from the sources under `data_root`
        (default: the project directory); `services` (`name@vN`) limits it to what they read.

        `allowed_lateness` is a `timedelta`, a duration such as `"1h"` or int µs.  Query it with
        `store.get("fraud_model@v1", [{"user_id": 1}], at=datetime(2026, 3, 1))`."""
        from astra.online import Store
        from astra.times import duration_micros

        for ref in services or ():
            self.service(ref)  # an unknown service is a ProjectError listing what exists
        st = Store(self.plan, duration_micros(allowed_lateness, "allowed_lateness"), services=services)
        st.materialize(self._data_root(data_root))
        return st

    def _data_root(self, data_root: str | Path | None) -> Path:
        return Path(data_root) if data_root is not None else default_data_root(self.path)


def default_data_root(project: str | Path) -> Path:
    """Where source paths are resolved when no data root is given: the project directory (the
    directory of a one-file project)."""
    path = Path(project)
    return path.parent if path.is_file() else path


def load_project(path: str | Path, *, allow_unlocked: bool = False, escape: str = "allow_unlocked=True",
                 fitted: bool = True) -> Project:
    """`Project.load`, with the name of the escape hatch the lock error offers (a command line
    offers its flag instead of the keyword).  With `fitted`, the services' fits recorded in the
    lock are bound (`astra.plan.fit`); `astra fit` loads without them."""
    proj = _load_project(path, allow_unlocked=allow_unlocked, escape=escape)
    if not fitted:
        return proj
    from astra.plan.fit import bind_recorded

    plan, notes = bind_recorded(proj.plan, proj.path)
    return attrs.evolve(proj, plan=plan, notes=proj.notes + notes)


def _load_project(path: str | Path, *, allow_unlocked: bool, escape: str) -> Project:
    from astra.plan.artifact import plan_path, read_fresh_plan, write_plan
    from astra.plan.lock import LOCK_NAME, LockFileError, read_lock, under_development, unlocked

    root = Path(path)
    cached = read_fresh_plan(root) if root.exists() else None
    if cached is not None:
        try:
            locked = read_lock((root if root.is_dir() else root.parent) / LOCK_NAME) or {"groups": {}}
        except LockFileError:
            locked = None  # compiled below, for the located diagnostic
        if locked is not None:
            changed, new = unlocked(cached, locked)
            if not changed:
                return Project(path=root, plan=cached, notes=(under_development(new),) if new else ())
    # the compiler (lark, networkx) is imported only when the cached plan is stale or unlocked
    from astra.compiler import compile_project
    from astra.diagnostics import render_all

    result = compile_project(root, lock="run", escape=escape, allow_unlocked=allow_unlocked)
    if not result.ok:
        raise ProjectError(render_all(result.diagnostics, result.sources))
    with contextlib.suppress(OSError):  # a read-only project still loads; it compiles every time
        write_plan(plan_path(root), result.plan, result.sources)
    return Project(path=root, plan=result.plan, notes=result.notes)
