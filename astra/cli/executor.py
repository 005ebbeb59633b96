"""`--executor` and its options: where `astra backfill` runs (this process, or Dask)."""

from __future__ import annotations

import functools
import re

import click

from astra.cli.common import fail

MIN_WORKER_MEMORY = 256 << 20  # a worker process takes ~150 MiB before it reads anything
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?)b?|b)?\s*$", re.IGNORECASE)

_OPTIONS = [
    click.option("--executor", metavar="dask[://HOST:PORT]",
                 help="Run on Dask: `dask` starts a local cluster of worker processes, `dask://HOST:PORT` "
                      "uses a running scheduler. The result is the same as without it."),
    click.option("--workers", type=click.IntRange(1, 1024), metavar="N",
                 help="With --executor dask: worker processes [default: one per core]."),
    click.option("--worker-memory", metavar="SIZE",
                 help="With --executor dask: each worker's memory limit, e.g. 4GiB [default: the machine's "
                      "memory shared out]."),
    click.option("--partitions", type=click.IntRange(1, 100_000), metavar="N",
                 help="With --executor: pieces each entity's keys are cut into [default: one per worker thread]; "
                      "more pieces, less memory per task."),
]


def parse_size(text: str) -> int:
    """`4GiB`, `512MiB`, `2GB`, `2g`, `1000000` -> bytes (KiB/MiB/... powers of 1024, kB/MB/... of 1000)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"`{text[:40]}` is not a size (e.g. 4GiB, 512MiB, 2GB)")
    number, unit, binary = m.groups()
    power = "kmgt".index(unit.lower()) + 1 if unit else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


def executor_options(command):
    """Add --executor, --workers, --worker-memory and --partitions to a command, handed to it as
    one `executor` argument (None: this process; else an `astra.offline.distributed.DaskExecutor`),
    checked before any work: a malformed value is a usage error, a missing `distributed` exit 1."""
    @functools.wraps(command)
    def run(*args, executor, workers, worker_memory, partitions, **kwargs):
        return command(*args, executor=executor_of(executor, workers, worker_memory, partitions), **kwargs)

    for option in reversed(_OPTIONS):
        run = option(run)
    return run


def executor_of(spec: str | None, workers: int | None, memory: str | None, partitions: int | None):
    if spec is None:
        given = [name for name, v in (("--workers", workers), ("--worker-memory", memory),
                                      ("--partitions", partitions)) if v is not None]
        if given:
            fail(f"{', '.join(given)} need(s) --executor dask", 2)
        return None
    from astra.offline.distributed import DaskExecutor, parse_executor
    from astra.offline.errors import BackfillError

    try:
        executor = parse_executor(spec)
    except BackfillError as err:
        fail(f"--executor: {err}", 2)
    if executor.address is not None and (workers is not None or memory is not None):
        fail("--workers and --worker-memory size a local cluster (--executor dask); a cluster at "
             f"{spec} has its own", 2)
    limit = None
    if memory is not None:
        try:
            limit = parse_size(memory)
        except ValueError as err:
            fail(f"--worker-memory: {err}", 2)
        if limit < MIN_WORKER_MEMORY:
            fail(f"--worker-memory: {memory} is too little for a worker (at least {MIN_WORKER_MEMORY >> 20}MiB)", 2)
    try:
        import distributed  # noqa: F401  (checked now, before any work)
    except ImportError:
        fail("--executor dask needs the `distributed` package: pip install 'astra[dask]'")
    return DaskExecutor(address=executor.address, workers=workers, worker_memory=limit, partitions=partitions)
