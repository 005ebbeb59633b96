#!/usr/bin/env python3
"""Benchmark the distributed backfill (`astra backfill --executor dask`) against single-node astra
on the same data, in the same run.

The data is the shared kit's (../shared/bench/gen_data.py; bench/data/eE_lL_uU is reused when
present). Each repetition runs, back to back, as whole `astra backfill` processes on
`fraud_model@v1`:

- `single`: the single-node engine;
- `dask`: `--executor dask://...` on a cluster this script starts once (`--workers` processes,
  `--worker-memory` each): the time of the backfill itself, without the cluster's start;
- `dask-fresh` (with `--fresh`): `--executor dask --workers N`, a local cluster started and
  stopped by the command, as a user runs it once.

Every process's resident memory is sampled every 20 ms (psutil): the peak of the command's own
process (the coordinator, for the dask runs) and of the busiest worker. Prints medians of the
repetitions, the ratios of the medians, and checks that every output equals single-node's.

Usage: bench/distributed.py [--events 10000000 --labels 1000000 --users 500000] [--reps 5]
                            [--workers 2] [--worker-memory 4GiB] [--partitions N] [--fresh]
                            [--skip-single]   (a size single-node cannot hold: dask only)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# this file is named like the `distributed` package: its directory must not shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT.parent / "shared" / "bench"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
MIB = 1 << 20


class Peaks:
    """The largest RSS seen of each watched process (and the command's descendants), sampled on a
    thread until `stop`."""

    def __init__(self, root_pid: int, workers: list[int]):
        import psutil

        self.psutil, self.root, self.workers = psutil, root_pid, workers
        self.peak: dict[int, int] = {}
        self.children: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self, pid: int) -> None:
        try:
            rss = self.psutil.Process(pid).memory_info().rss
        except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
            return
        self.peak[pid] = max(self.peak.get(pid, 0), rss)

    def _run(self) -> None:
        while not self._done.is_set():
            self._sample(self.root)
            try:
                kids = [p.pid for p in self.psutil.Process(self.root).children(recursive=True)]
            except self.psutil.NoSuchProcess:
                kids = []
            self.children.update(kids)
            for pid in (*self.workers, *kids):
                self._sample(pid)
            time.sleep(0.02)

    def stop(self) -> tuple[float, float]:
        """(the command's own peak, the busiest worker's peak), MiB."""
        self._done.set()
        self._thread.join()
        others = [self.peak.get(p, 0) for p in (*self.workers, *self.children)]
        return self.peak.get(self.root, 0) / MIB, max(others, default=0) / MIB


def run(cmd: list, workers: list[int]) -> tuple[float, float, float]:
    """(wall s, the command's peak RSS MiB, the busiest worker's peak RSS MiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    peaks = Peaks(p.pid, workers)
    out = p.stdout.read()
    code = p.wait()
    wall = time.perf_counter() - t0
    own, worker = peaks.stop()
    if code != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out}")
    return wall, own, worker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--labels", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=500_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--worker-memory", default=None, help="each worker's limit, e.g. 4GiB (default: shared out)")
    ap.add_argument("--partitions", type=int)
    ap.add_argument("--fresh", action="store_true", help="also time --executor dask starting its own cluster")
    ap.add_argument("--skip-single", action="store_true", help="dask only (data too large for one process)")
    a = ap.parse_args()

    data = a.data or ROOT / "bench" / "data" / f"e{a.events}_l{a.labels}_u{a.users}"
    if not (data / "labels.parquet").exists():
        print(f"generating {data} ...", flush=True)
        subprocess.run([sys.executable, KIT / "gen_data.py", data, "--events", str(a.events),
                        "--labels", str(a.labels), "--users", str(a.users)], check=True)
    work = data / "out"
    work.mkdir(exist_ok=True)

    from distributed import Client, LocalCluster

    from astra.cli.executor import parse_size

    threads = max(1, (os.cpu_count() or 1) // a.workers)
    memory = parse_size(a.worker_memory) if a.worker_memory else "auto"
    cli = Path(sys.executable).parent / "astra"
    base = [cli, "backfill", ROOT / "features", "--service", "fraud_model@v1", "--spine", data / "labels.parquet",
            "--data-root", data]
    extra = ["--partitions", str(a.partitions)] if a.partitions else []
    import dask

    # set before each worker process starts, as `--executor dask` does: Polars sizes its pool on import
    with dask.config.set({"distributed.nanny.pre-spawn-environ.POLARS_MAX_THREADS": str(threads)}), \
            LocalCluster(n_workers=a.workers, threads_per_worker=threads, processes=True, memory_limit=memory,
                         host="127.0.0.1", dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        engines = {"dask": ([*base, "--out", work / "dask.parquet", "--executor", address, *extra], pids)}
        if not a.skip_single:
            engines = {"single": ([*base, "--out", work / "single.parquet"], []), **engines}
        if a.fresh:
            fresh = ["--executor", "dask", "--workers", str(a.workers), *extra]
            if a.worker_memory:
                fresh += ["--worker-memory", a.worker_memory]
            engines["dask-fresh"] = ([*base, "--out", work / "dask_fresh.parquet", *fresh], [])
        for cmd, w in engines.values():  # untimed warm-up: bytecode and page caches, imports on the workers
            run(cmd, w)
        runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in engines}
        for rep in range(a.reps):
            for name, (cmd, w) in engines.items():
                wall, own, worker = run(cmd, w)
                runs[name].append((wall, own, worker))
                print(f"rep {rep + 1}: {name:10s} {wall:6.2f} s  command {own:6.0f} MiB  busiest worker "
                      f"{worker:6.0f} MiB", flush=True)

    print(f"\n{os.cpu_count()} cores, {a.events:,} events / {a.labels:,} labels / {a.users:,} users, fraud_model@v1, "
          f"{a.workers} workers x {threads} threads, worker memory {a.worker_memory or 'auto'}, "
          f"partitions {a.partitions or 'default'}; median of {a.reps} (whole process), peak RSS = max over reps")
    med = {k: (statistics.median(r[0] for r in v), max(r[1] for r in v), max(r[2] for r in v)) for k, v in runs.items()}
    for name, (wall, own, worker) in med.items():
        vs = ""
        if "single" in med and name != "single":
            s = med["single"]
            vs = f"  {wall / s[0]:.2f}x single's time, coordinator {own / s[1]:.2f}x and busiest worker " \
                 f"{worker / s[1]:.2f}x single's memory"
        print(f"  {name:10s} {wall:6.2f} s  command {own:6.0f} MiB  busiest worker {worker:6.0f} MiB{vs}")
    if "single" in med:
        import polars as pl

        want = pl.read_parquet(work / "single.parquet")
        for name in med:
            if name != "single":
                got = pl.read_parquet(work / f"{name.replace('-', '_')}.parquet")
                same = got.schema == want.schema and got.equals(want, null_equal=True)
                print(f"{name} output equals single-node's: {same}")
                if not same:
                    sys.exit(1)


if __name__ == "__main__":
    main()
