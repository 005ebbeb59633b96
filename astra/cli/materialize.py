"""`astra materialize`: bulk-load the sources into an online store, saved as a state directory
that `astra serve --state` restores (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

import click

from astra.cli.common import (
    ALLOW_UNLOCKED,
    DATA_ROOT,
    PROJECT,
    Stages,
    fail,
    load,
    project_dir,
    resolve_data_root,
    writable_parent,
)
from astra.cli.options import Duration, Timestamp, format_time


@click.command("materialize")
@PROJECT
@DATA_ROOT
@click.option("--until", type=Timestamp(), default=None,
              help="Load rows with time < UNTIL (ISO date/datetime in UTC, or µs since the epoch)")
@click.option("--state", default="build/serve", show_default=True, type=click.Path(path_type=Path),
              help="State directory (as `astra serve --state` reads it)")
@click.option("--allowed-lateness", type=Duration(), default="0s", show_default=True,
              help="How late a pushed row may be, as in .feat files (e.g. 5m)")
@click.option("--store", "store_url", default=None, metavar="URL",
              help="Load into a shared Redis (redis://host:port/db, as `astra serve --store`) instead of --state")
@click.option("--discard-pushes", is_flag=True,
              help="Replace acknowledged pushes the new store cannot carry over (by default: refuse)")
@ALLOW_UNLOCKED
def materialize(project, data_root, until, state, allowed_lateness, store_url, discard_pushes, allow_unlocked):
    """Build the store from the offline sources and save it (atomically) to --state.

    PROJECT defaults to ./features, the data root to the project directory.  Into a state
    directory a server has pushed to, every acknowledged push it holds (kept beside its snapshot,
    then its log) is replayed into the new store; pushes it cannot replay (held only by an older
    snapshot, refused by the new store) make it refuse unless --discard-pushes.  Prints, per
    source, the rows read and those left out (null time, null key per entity), and the rows
    loaded per group version."""
    from astra.offline.errors import BackfillError
    from astra.online import Store
    from astra.online.errors import OnlineError
    from astra.serve.state_install import foreign_entries, held_pushes, install
    from astra.serve.wal import StateDir, WalError

    root = project_dir(project)
    where = resolve_data_root(data_root, root)
    if store_url is not None:
        _into_redis(root, where, until, allowed_lateness, store_url, allow_unlocked)
        return
    if state.exists() and not state.is_dir():
        fail(f"--state `{state}` is not a directory")
    if _defaulted("state"):  # build/ may not exist before the first `astra compile`; a given path must
        state.parent.mkdir(parents=True, exist_ok=True)
    writable_parent(state, "--state")
    sd = StateDir(state)
    foreign = foreign_entries(sd)
    if foreign:
        fail(f"--state `{state}` is not a state directory (it holds {', '.join(foreign[:3])}"
             f"{', ...' if len(foreign) > 3 else ''}); give a new or empty directory, or one `astra serve` uses")
    stages = Stages("materialize")
    plan = load(root, allow_unlocked).plan
    stages.done("loaded the project")
    try:
        if sd.root.is_dir():
            sd.lock(exclusive=True)  # kept until exit: no server may write meanwhile
        base, in_snapshot, saved, kept, logged = held_pushes(sd)
        store = Store(plan, allowed_lateness)
        counts = store.materialize(where, until)
        stages.done("loaded the sources:", sum(c.rows for c in counts.values()))
        from_files = dict(store.next_seq)
        carried, lost = carry_over(store, kept + logged)
        # pushes the snapshot holds beyond the records kept of them are lost to a rebuild; a
        # snapshot that does not say how many it holds: whatever it holds beyond the files
        if in_snapshot is None:
            in_snapshot = {s: n - from_files.get(s, 0) for s, n in saved.items()}
        for src, n in in_snapshot.items():
            n -= sum(len(r["rows"]) for r in kept if r["source"] == src)
            if n > 0:
                lost[src, "snapshot"] = lost.get((src, "snapshot"), 0) + n
        if lost and not discard_pushes:
            fail(refusal(state, base, lost))
        n = install(sd, store, carried, discard=bool(lost))
        stages.done(f"saved the store to {state}")
    except (BackfillError, OnlineError, WalError, OSError, ValueError) as exc:
        fail(str(exc).strip("'\""))
    for c in counts.values():
        no_key = c.skipped - c.null_time
        hidden = "".join(f", {n} invisible to {e} (null key)" for e, n in c.null_key.items() if n)
        click.echo(f"{c.source}: {c.rows} rows read, {c.skipped} skipped ({c.null_time} null time"
                   + (f", {no_key} a null in every entity's key" if no_key else "") + f"){hidden}")
    for group, rows in group_rows(plan, store).items():
        click.echo(f"{group}: {rows} rows loaded")
    for src, k in sorted(carried.items()):
        click.echo(f"carried over {k} pushed row(s) of `{src}` from {state}")
    dropped: dict[str, int] = {}
    for (src, _), k in lost.items():
        dropped[src] = dropped.get(src, 0) + k
    for src, k in sorted(dropped.items()):
        click.echo(f"discarded {k} pushed row(s) of `{src}` (--discard-pushes)")
    rows = sum(tb.used - tb.holes for tb in store.tables)
    click.echo(f"materialized {rows} rows into {state} (snapshot {n}) in {stages.total:.2f} s "
               f"(queries from {format_time(store.horizon)} on, {store.nbytes() / 2**20:.1f} MiB)")


def _into_redis(root, where, until, allowed_lateness, url, allow_unlocked) -> None:
    """`--store redis://...`: load the sources into an empty Redis namespace."""
    from astra.offline.errors import BackfillError
    from astra.online.errors import OnlineError
    from astra.online.redis_store import RedisStore, parse_url

    try:
        parse_url(url)
    except ValueError as exc:
        fail(f"--store: {exc}", 2)
    stages = Stages("materialize")
    stages.output = url
    plan = load(root, allow_unlocked).plan
    stages.done("loaded the project")
    try:
        store = RedisStore(plan, url, allowed_lateness)
        counts = store.materialize(where, until)
        stages.done("loaded the sources:", sum(c.rows for c in counts.values()))
        horizon = store.horizon
        store.close()
    except (BackfillError, OnlineError, OSError, ValueError) as exc:
        fail(str(exc).strip("'\""))
    for c in counts.values():
        click.echo(f"{c.source}: {c.rows} rows read, {c.skipped} skipped ({c.null_time} null time)")
    click.echo(f"materialized {sum(c.rows - c.skipped for c in counts.values())} rows into {url} in "
               f"{stages.total:.2f} s (queries from {format_time(horizon)} on)")


def carry_over(store, records: list[dict]) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Push the logged records into the new store, in log order, as a server replays them:
    (rows carried per source, rows it could not take per (source, reason))."""
    from astra.online.errors import OnlineError

    carried: dict[str, int] = {}
    lost: dict[tuple[str, str], int] = {}
    for rec in records:
        src, rows = rec["source"], rec["rows"]
        try:
            report = store.push(src, rows, on_late="report")
        except (OnlineError, KeyError, ValueError):  # the project dropped the source or changed its columns
            lost[src, "schema"] = lost.get((src, "schema"), 0) + len(rows)
            continue
        late = len(report.rejected)
        if late:
            lost[src, "late"] = lost.get((src, "late"), 0) + late
        if len(rows) > late:
            carried[src] = carried.get(src, 0) + len(rows) - late
    return carried, lost


WHY = {"snapshot": "they exist only in its snapshot{base}, neither in its log nor kept beside it, so a store built "
                   "from the files lacks them",
       "late": "the new store refuses them as too late (its --allowed-lateness)",
       "schema": "the project no longer has their source or columns"}


def refusal(state: Path, base: int | None, lost: dict[tuple[str, str], int]) -> str:
    """The one-line refusal: which acknowledged rows would be lost, why, and the two ways on."""
    parts = [f"{k} acknowledged row(s) pushed to `{src}` ("
             + WHY[why].format(base=f" snap-{base:012d}" if base is not None else "") + ")"
             for (src, why), k in sorted(lost.items())]
    return (f"--state `{state}` holds {'; '.join(parts)}; nothing was changed: serve it with the project "
            f"it was saved for, or pass --discard-pushes to replace them with what the files hold")


def group_rows(plan, store) -> dict[str, int]:
    """Per group version that reads a source, the rows stored in the tables its features read."""
    from astra.plan import ir

    out = {}
    for g in plan.groups:
        keys = {n.key for fid in g.features for n in ir.walk(plan.feature(fid).expr)
                if isinstance(n, ir.Aggregate | ir.AsOf)}
        if keys:
            out[g.id] = sum(store.stored[ti] for ti, spec in enumerate(store.specs) if spec.key in keys)
    return out


def _defaulted(param: str) -> bool:
    """Whether the running command's `param` took its default (the user did not give it)."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source(param) is click.core.ParameterSource.DEFAULT
