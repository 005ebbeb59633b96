"""The distributed backfill: the single-node plan, run partition by partition on Dask workers.

An entity's features depend on its own rows alone (`docs/backfill.md`, sums restart at each
entity), so the work splits by entity key, never by time:

1. The service's leaves (aggregates, as-of lookups) are grouped by the key columns of their
   entity in the spine (entities whose keys have the same names share them: one group).
2. Each group's spine rows are cut into `n` partitions by `partition_expr`: a fixed-seed Polars
   hash of the key cast to one canonical type (every integer as int64, every string as a
   string), modulo `n`.  It does not depend on the process, Python's hash seed or the order
   of the rows; it does on the Polars build, so every task first checks that its worker puts a
   probe of the spine's keys in the partitions this process did.
3. A task (a Dask future) reads each source it needs lazily, keeping only the rows of its
   partition while the file is read (`io.load_source(where=...)`), and runs the single-node
   leaf computation (`evaluate.leaf_values`) over its spine rows: memory per worker follows
   the partition, not the data.
4. This process puts every group's answers back in spine order, then computes the derived
   features once, across groups (`evaluate.derive`), exactly as a single-node backfill does.

The result equals the single-node result exactly: columns, dtypes, row order and values.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from astra.lang.types import Type
from astra.offline.errors import BackfillError
from astra.offline.evaluate import Group, derive, entity_of, leaf_values, leaves
from astra.offline.execution import ExecutionConfig
from astra.ops.dtypes import polars_dtype
from astra.plan import ir

SEED = 0x5EED_A57A  # the partition hash's seed: fixed, so every process cuts keys alike
PROBE_ROWS = 64  # spine keys every task re-partitions to check its worker hashes as we do
CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler, or to see its first worker
STALL_TIMEOUT = 60.0  # seconds with no worker at all (or no scheduler) before giving up
POLL = 1.0  # seconds between checks of the cluster while waiting for tasks


@attrs.frozen
class DaskExecutor:
    """Where a distributed backfill runs.

    `address` names a running scheduler (`host:port`, `tcp://host:port`); without it a local
    cluster is started for the run: `workers` processes (default: one per core), each with
    `threads` threads (default: the cores shared out) and a memory limit of `worker_memory`
    (bytes or a size such as `"4GiB"`; default: the machine's memory shared out).
    `partitions` is how many pieces each entity group's keys are cut into (default: one per
    worker thread); more partitions mean less memory per task."""

    address: str | None = None
    workers: int | None = None
    threads: int | None = None
    worker_memory: int | str | None = None
    partitions: int | None = None
    connect_timeout: float | None = None  # seconds; default CONNECT_TIMEOUT


def parse_executor(spec) -> DaskExecutor | object:
    """`"dask"` (a local cluster), `"dask://host:port"` (a running scheduler), a `DaskExecutor`,
    or a `distributed.Client` (used as is); anything else is a `BackfillError`."""
    if isinstance(spec, DaskExecutor) or _is_client(spec):
        return spec
    if isinstance(spec, str):
        if spec == "dask":
            return DaskExecutor()
        if spec.startswith("dask://"):
            return DaskExecutor(address=scheduler_address(spec))
    raise BackfillError(f"unknown executor {spec!r}: use 'dask' (a local cluster) or 'dask://host:port' "
                        "(a running Dask scheduler)")


def scheduler_address(spec: str) -> str:
    """`dask://host[:port]` as a Dask address (`tcp://host:port`, port 8786 by default)."""
    rest = spec.removeprefix("dask://")
    host, _, port = rest.rpartition(":") if ":" in rest.lstrip("[").split("]")[-1] else (rest, "", "8786")
    if not host or "/" in rest or not port.isdigit() or not 0 < int(port) < 65536:
        raise BackfillError(f"bad scheduler address {spec!r}: expected dask://host:port")
    return f"tcp://{host}:{port}"


def _is_client(x) -> bool:
    return type(x).__name__ == "Client" and type(x).__module__.startswith("distributed")


# --------------------------------------------------------------------------- partitions


def _canonical(e: pl.Expr, t: Type) -> pl.Expr:
    """A key column as the one dtype its values are hashed in, whatever the file stores (int32
    or int64, a string or a categorical, any time unit): equal keys, equal hashes."""
    if t.is_integer:
        return e.cast(pl.Int64)
    if t.name == "string":
        return e.cast(pl.String)
    if t.name == "timestamp":
        return e.dt.epoch("us")
    if t.name == "duration":
        return e.dt.total_microseconds()
    return e.cast(polars_dtype(t.non_null()))


def partition_expr(columns: list[str] | tuple[str, ...], types: list[Type], n: int) -> pl.Expr:
    """Each row's partition (0 .. n-1) by its key `columns` (of `types`): a fixed-seed hash of the
    canonical key modulo `n`.  A row with a null in its key goes to partition 0 (it is read
    there, and validated, but no entity sees it)."""
    keys = [_canonical(pl.col(c), t).alias(f"k{i}") for i, (c, t) in enumerate(zip(columns, types))]
    h = keys[0].hash(SEED) if len(keys) == 1 else pl.struct(keys).hash(SEED)
    null = pl.any_horizontal([k.is_null() for k in keys])
    return pl.when(null).then(pl.lit(0, pl.UInt64)).otherwise(h % n).cast(pl.Int64).alias("__partition")


def partitions_of(frame: pl.DataFrame, columns, types, n: int) -> np.ndarray:
    """`partition_expr` over a frame's rows, as int64."""
    return frame.select(partition_expr(columns, types, n)).to_series().to_numpy()


@attrs.frozen
class KeyGroup:
    """Leaf groups whose entities have the same key names: one set of spine columns, cut once."""

    names: tuple[str, ...]
    types: tuple[Type, ...]
    groups: dict  # Group -> its leaves, in plan order


def key_groups(plan: ir.Plan, groups: dict[Group, list]) -> list[KeyGroup]:
    by_names: dict[tuple[str, ...], dict] = defaultdict(dict)
    types: dict[tuple[str, ...], tuple[Type, ...]] = {}
    for g, nodes in groups.items():
        entity = entity_of(plan, g.key)
        names = tuple(k for k, _ in entity.keys)
        types.setdefault(names, tuple(t for _, t in entity.keys))
        by_names[names][g] = nodes
    return [KeyGroup(names, types[names], gs) for names, gs in by_names.items()]


def source_filters(plan: ir.Plan, kg: KeyGroup, n: int, p: int) -> dict[str, pl.Expr]:
    """Per source of the group, the rows of partition `p`: those whose key (any of the keys the
    group reads the source by) falls in it.  A row of another partition would be harmless
    (entities never see each other's rows), only wasted."""
    keys: dict[str, set] = defaultdict(set)
    for g in kg.groups:
        entity = entity_of(plan, g.key)
        keys[g.source].add((g.key.columns, tuple(t for _, t in entity.keys)))
    return {s: pl.any_horizontal([partition_expr(list(cols), list(types), n) == p for cols, types in sorted(ks)])
            for s, ks in keys.items()}


# --------------------------------------------------------------------------- tasks


@attrs.frozen
class Task:
    """One partition of one key group: what a worker needs and nothing more."""

    plan: ir.Plan
    kg: KeyGroup
    n: int
    p: int
    spine: pl.DataFrame  # the partition's spine rows: the group's key columns only
    q_times: np.ndarray
    data_root: str
    probe: pl.DataFrame  # spine keys, and the partitions this process put them in
    polars_version: str
    execution: ExecutionConfig  # chunk sizes; the threads are replaced by the worker's


def run_task(task: Task) -> pl.DataFrame:
    """On a worker: the partition's leaves, one column per leaf (plan order) in its spine order."""
    from astra.offline.memory import reuse_freed_memory

    kg = task.kg
    got = partitions_of(task.probe, kg.names, list(kg.types), task.n)
    if not np.array_equal(got, task.probe["__partition"].to_numpy()):
        raise BackfillError(f"a Dask worker (Polars {pl.__version__}) cuts keys into partitions unlike this "
                            f"process (Polars {task.polars_version}): run the same Polars everywhere")
    config = attrs.evolve(task.execution, threads=_worker_threads())
    with reuse_freed_memory():
        values = leaf_values(task.plan, kg.groups, task.spine, task.q_times, task.data_root,
                             where=source_filters(task.plan, kg, task.n, task.p), config=config)
    nodes = [n for g in kg.groups for n in kg.groups[g]]
    return pl.DataFrame([values[n].alias(f"c{i}") for i, n in enumerate(nodes)])


def _worker_threads() -> int:
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except Exception:  # not on a worker (run inline) or an older distributed
        return 1


# --------------------------------------------------------------------------- the run


def compute(plan: ir.Plan, service: ir.Service, spine: pl.DataFrame, q_times: np.ndarray,
            data_root: str | Path | None, executor, execution: ExecutionConfig | None = None) -> pl.DataFrame:
    """`evaluate.compute` on a Dask cluster: the service's outputs for each spine row, in spine
    order, equal to the single-node result.  The spine is already validated.  Each task runs
    with `execution` (default `ExecutionConfig()`), its threads those of its worker."""
    executor = parse_executor(executor)
    features = plan.closure(tuple(o.feature for o in service.outputs))
    groups = leaves(features)
    kgs = key_groups(plan, groups)
    root = str(Path(data_root if data_root is not None else ".").resolve())  # workers' working directories differ
    values: dict[object, pl.Series] = {}
    with session(executor) as (client, threads):
        n = executor.partitions if isinstance(executor, DaskExecutor) and executor.partitions else threads
        futures, rows = {}, {}
        for i, kg in enumerate(kgs):
            keys = spine.select(kg.names)
            part = partitions_of(keys, kg.names, list(kg.types), n)
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(n + 1))
            probe = keys.head(PROBE_ROWS).with_columns(pl.Series("__partition", part[:PROBE_ROWS]))
            nonempty = [p for p in range(n) if bounds[p + 1] > bounds[p]] or [0]  # an empty spine still reads
            rows[i] = [order[bounds[p]:bounds[p + 1]] for p in nonempty]
            tasks = [Task(plan, kg, n, p, keys[r], q_times[r], root, probe, pl.__version__,
                          execution or ExecutionConfig())
                     for p, r in zip(nonempty, rows[i])]
            with warnings.catch_warnings():  # "large graph": a task carries its spine rows, by design
                warnings.simplefilter("ignore", UserWarning)
                futures[i] = [client.submit(run_task, t, pure=False, key=_task_key(kg, p, n))
                              for p, t in zip(nonempty, tasks)]
        parts = wait_all(client, futures)
    for i, kg in enumerate(kgs):
        nodes = [node for g in kg.groups for node in kg.groups[g]]
        frame = pl.concat(parts[i])
        perm = np.concatenate(rows[i])
        inv = np.empty_like(perm)
        inv[perm] = np.arange(perm.size)
        frame = frame[inv]
        values.update((node, frame[f"c{j}"]) for j, node in enumerate(nodes))
    values = {node: values[node] for g in groups for node in groups[g]}  # plan order, as single-node
    return derive(service, features, values, spine, q_times)


def wait_all(client, futures: dict[int, list]) -> dict[int, list[pl.DataFrame]]:
    """Every task's result, as they finish (each released from its worker once fetched).

    Waits in short steps (dropping each future once its result is here, so that workers free
    it), checking the cluster between them: no scheduler or no worker for
    `STALL_TIMEOUT` seconds ends the run with a `BackfillError` instead of a hang.  A task's
    own error is raised as is; a worker that died is one line."""
    import distributed

    where = {f.key: (i, j) for i, fs in futures.items() for j, f in enumerate(fs)}
    out = {i: [None] * len(fs) for i, fs in futures.items()}
    pending = [f for fs in futures.values() for f in fs]
    stalled = None
    try:
        while pending:
            try:
                done, not_done = distributed.wait(pending, timeout=POLL, return_when="FIRST_COMPLETED")
            except (TimeoutError, distributed.TimeoutError):
                done, not_done = set(), pending
            except Exception as exc:
                if "cancel" not in type(exc).__name__.lower():
                    raise
                raise BackfillError("lost the connection to the Dask scheduler while the backfill ran (did the "
                                    "scheduler stop?)") from None
            for f in done:
                i, j = where[f.key]
                out[i][j] = _result(f)
                futures[i][j] = None  # the last reference: the worker frees the result
            pending = list(not_done)
            if done:
                stalled = None
                continue
            healthy = client.status == "running" and _workers(client)
            if healthy:
                stalled = None
            elif stalled is None:
                stalled = time.monotonic()
            elif time.monotonic() - stalled > STALL_TIMEOUT:
                lost = "workers" if client.status == "running" else "scheduler"
                raise BackfillError(f"the Dask cluster has had no {lost} for {STALL_TIMEOUT:.0f} s; stopped")
    finally:
        for f in pending:
            f.cancel()
    return out


def _workers(client) -> int:
    try:
        return len(client.nthreads())
    except Exception:
        return 0


def _result(future) -> pl.DataFrame:
    import distributed

    try:
        return future.result()
    except BackfillError:
        raise
    except distributed.KilledWorker:
        raise BackfillError(f"a Dask worker died computing {_task_name(future.key)}; if it ran out of memory, "
                            "give workers more (--worker-memory) or cut the keys finer (--partitions)") from None
    except distributed.CancelledError:
        raise BackfillError(f"the Dask scheduler dropped {_task_name(future.key)} (did the cluster stop?)") from None
    except Exception as exc:
        raise BackfillError(f"{_task_name(future.key)} failed on a Dask worker: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None


def _task_key(kg: KeyGroup, p: int, n: int) -> str:
    """A key naming the task (for Dask's dashboard and our errors), unique to this run."""
    return f"astra-backfill-{'-'.join(kg.names)}-{p}-of-{n}-{os.getpid()}-{time.monotonic_ns()}"


def _task_name(key: str) -> str:
    """`astra-backfill-user_id-3-of-8-...` as `partition 4 of 8 of the user_id keys`."""
    parts = str(key).removeprefix("astra-backfill-").split("-")
    try:
        at = parts.index("of")
        return f"partition {int(parts[at - 1]) + 1} of {parts[at + 1]} of the {', '.join(parts[:at - 1])} keys"
    except (ValueError, IndexError):
        return str(key)


# --------------------------------------------------------------------------- the cluster


@contextmanager
def session(executor):
    """(a connected `distributed.Client`, the cluster's worker threads) for the run: a given
    client as is, a scheduler connected to, or a local cluster started and stopped.  A missing
    `distributed`, an address that does not answer or a cluster that does not start is a
    `BackfillError`."""
    try:
        import distributed
    except ImportError:
        raise BackfillError("the Dask executor needs the `distributed` package: pip install 'astra[dask]'") \
            from None
    if _is_client(executor):
        with executor.as_current(), _dask_errors():
            yield executor, _threads(executor, CONNECT_TIMEOUT)
        return
    with _quiet(), _dask_errors():
        cluster = None
        if executor.address is None:
            cluster = _local_cluster(executor)
            address = cluster.scheduler_address
        else:
            address = executor.address
        timeout = executor.connect_timeout or CONNECT_TIMEOUT
        try:
            try:
                client = distributed.Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                why = " ".join(str(exc).split())
                why = f"no answer within {timeout:g} s" if "timed out" in why.lower() or not why else why
                raise BackfillError(f"cannot reach the Dask scheduler at {address}: {why}") from None
            try:
                with client.as_current():
                    yield client, _threads(client, timeout)
            finally:
                client.close(timeout=CONNECT_TIMEOUT)
        finally:
            if cluster is not None:
                cluster.close(timeout=CONNECT_TIMEOUT)


def _threads(client, timeout: float) -> int:
    """The cluster's worker threads, waiting up to `timeout` for a first worker."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:
        raise BackfillError(f"the Dask cluster at {client.scheduler.address} has no workers "
                            f"(waited {timeout:g} s)") from None
    return max(1, sum(client.nthreads().values()))


def _local_cluster(executor: DaskExecutor):
    """A cluster of worker processes on this machine, Polars in each limited to its threads."""
    import dask
    from distributed import LocalCluster

    cores = os.cpu_count() or 1
    workers = executor.workers or cores
    threads = executor.threads or max(1, cores // workers)
    memory = executor.worker_memory if executor.worker_memory is not None else "auto"
    try:
        # set before each worker process starts (and restarts): Polars sizes its pool on import
        with dask.config.set({"distributed.nanny.pre-spawn-environ.POLARS_MAX_THREADS": str(threads)}):
            # on loopback only; the scheduler's HTTP endpoint on any free port (not 8787: no clash, no warning)
            return LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, memory_limit=memory,
                                host="127.0.0.1", dashboard_address=None, silence_logs=logging.CRITICAL,
                                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    except Exception as exc:
        raise BackfillError(f"cannot start a local Dask cluster: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None


@contextmanager
def _dask_errors():
    """A failure of Dask itself (a connection lost, a scheduler gone) as one `BackfillError`."""
    try:
        yield
    except BackfillError:
        raise
    except Exception as exc:
        package = type(exc).__module__.split(".")[0]
        if package not in ("distributed", "dask", "tornado", "asyncio") and not isinstance(exc, OSError | TimeoutError):
            raise
        why = " ".join(str(exc).split())
        raise BackfillError(f"the Dask cluster failed: {type(exc).__name__}: "
                            f"{why if len(why) <= 300 else why[:300] + '...'}") from None


@contextmanager
def _quiet():
    """Dask's own log lines (restarts, lost connections) off stderr for the run: what went
    wrong comes back as one `BackfillError`."""
    logs = [logging.getLogger(name) for name in ["distributed", *logging.root.manager.loggerDict]
            if name == "distributed" or name.startswith("distributed.")]  # Dask sets some levels itself
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)
