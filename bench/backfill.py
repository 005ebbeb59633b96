#!/usr/bin/env python3
"""Benchmark `astra backfill` against the shared DuckDB reference and the hand-written Polars peer.

Generates the data with ../shared/bench/gen_data.py if absent, then runs, in one session and
alternating (astra, duckdb, polars peer per repetition), each as a whole process, timing
wall clock and peak RSS (`os.wait4` rusage of that child).  Prints medians and ratios, and
checks astra's output against DuckDB's with compare.py.

astra runs through its public CLI (`astra backfill features --service fraud_model@v1 ...`).

A second comparison times the as-of-only service `profile_lookup@v1` (country, tier,
credit_limit: the latest profile row before each label, every label row kept) against
DuckDB's ASOF LEFT JOIN and Polars' join_asof (../shared/bench/peer_feast.py), and Feast's
get_historical_features when a Python with Feast is found (--feast-python, default
/tmp/feast-env/bin/python; skipped with a message otherwise, run once since it takes ~25 s).

Usage: bench/backfill.py [--events 10000000 --labels 1000000 --users 500000] [--reps 5] [--data DIR]
                         [--suite all|fraud|asof] [--feast-python PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT.parent / "shared" / "bench"


# Steady state, as on a user's machine: every engine's children may write and reuse bytecode
# caches (an environment with PYTHONDONTWRITEBYTECODE would recompile astra's modules every run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, output) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=ENV)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out}")
    return wall, usage.ru_maxrss / 1024, out


def astra_command(data: Path, out: Path) -> list:
    """The public CLI on the example project, as a user runs it."""
    cli = Path(sys.executable).parent / "astra"
    return [cli, "backfill", ROOT / "features", "--service", "fraud_model@v1", "--spine",
            data / "labels.parquet", "--out", out, "--data-root", data]


def same_asof(ref: Path, got: Path) -> str:
    """How many label rows differ in the 3 profile columns (null-aware), as a message."""
    import polars as pl

    cols = ["user_id", "ts", "country", "tier", "credit_limit"]
    a, b = pl.read_parquet(ref, columns=cols), pl.read_parquet(got, columns=cols)
    if a.height != b.height:
        return f"MISMATCH: {b.height:,} rows vs {a.height:,}"
    a = a.with_columns(pl.col("ts").dt.cast_time_unit("us"))
    b = b.with_columns(pl.col("ts").dt.cast_time_unit("us"), pl.col("tier").cast(a.schema["tier"]))
    diff = a.select(pl.any_horizontal(pl.col(c).ne_missing(b[c]) for c in cols).sum()).item()
    return "0 mismatching rows" if diff == 0 else f"MISMATCH: {diff:,} rows differ"


def timed(engines: dict[str, list], reps: int) -> dict[str, list[tuple[float, float]]]:
    """Run the engines alternately `reps` times after one untimed warm-up run each (bytecode
    caches, the page cache); (wall, peak RSS) of every repetition, per engine."""
    for cmd in engines.values():
        run(cmd)
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in engines}
    for rep in range(reps):
        for name, cmd in engines.items():
            wall, rss, _ = run(cmd)
            results[name].append((wall, rss))
            print(f"rep {rep + 1}: {name:13s} {wall:6.2f} s {rss:7.0f} MiB", flush=True)
    return {k: v for k, v in results.items() if v}


def report(runs: dict[str, list[tuple[float, float]]], ours: str) -> None:
    """Median wall and max peak RSS per engine, and ours against each other engine: the ratio of
    the medians, then the median (and range) of the ratios within each repetition, which run
    back to back and so cancel the machine's slow drifts in speed."""
    med = {k: (statistics.median(w for w, _ in v), max(r for _, r in v)) for k, v in runs.items()}
    for name, (wall, rss) in med.items():
        ratios = "  ".join(f"{wall / w:.2f}x time, {rss / r:.2f}x RSS vs {other}"
                           for other, (w, r) in med.items() if other != name and name == ours)
        print(f"  {name:13s} {wall:6.2f} s  {rss:7.0f} MiB  {ratios}")
    for other, theirs in runs.items():
        if ours in runs and other != ours and len(theirs) == len(runs[ours]) > 1:
            paired = [a / b for (a, _), (b, _) in zip(runs[ours], theirs)]
            print(f"  per repetition, {ours} / {other}: median {statistics.median(paired):.2f}x "
                  f"(from {min(paired):.2f}x to {max(paired):.2f}x)")


def asof_suite(data: Path, work: Path, reps: int, feast_python: Path) -> None:
    """profile_lookup@v1 vs DuckDB ASOF JOIN, Polars join_asof and (once) Feast."""
    cli = Path(sys.executable).parent / "astra"
    engines = {
        "astra-asof": [cli, "backfill", ROOT / "features", "--service", "profile_lookup@v1", "--spine",
                       data / "labels.parquet", "--out", work / "astra_asof.parquet", "--data-root", data],
        "duckdb-asof": [sys.executable, KIT / "peer_feast.py", "asof-duckdb", data, work / "duckdb_asof.parquet"],
        "polars-asof": [sys.executable, KIT / "peer_feast.py", "asof-polars", data, work / "polars_asof.parquet"],
    }
    runs = timed(engines, reps)
    if feast_python.exists() and subprocess.run([feast_python, "-c", "import feast"],
                                                capture_output=True).returncode == 0:
        wall, rss, _ = run([feast_python, KIT / "peer_feast.py", "historical", data, work / "feast_asof.parquet"])
        print(f"rep 1: {'feast':13s} {wall:6.2f} s {rss:7.0f} MiB (run once)")
        runs["feast"] = [(wall, rss)]
    else:
        print(f"!!! Feast SKIPPED: no Python with feast at {feast_python} (create one: python3 -m venv "
              f"/tmp/feast-env && /tmp/feast-env/bin/pip install feast polars duckdb; or pass --feast-python)")
    print(f"\nprofile_lookup@v1 (3 as-of features), median of {reps} (whole process); peak RSS = max over reps")
    report(runs, "astra-asof")
    print("astra vs duckdb ASOF JOIN:", same_asof(work / "duckdb_asof.parquet", work / "astra_asof.parquet"))
    if "feast" in runs:  # Feast joins on updated_at <= t and drops rows: shown, not enforced
        import polars as pl

        n, m = (pl.scan_parquet(work / f).select(pl.len()).collect().item()
                for f in ("feast_asof.parquet", "duckdb_asof.parquet"))
        print(f"feast returned {n:,} of {m:,} label rows (it takes updated_at <= t and drops rows)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--labels", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=500_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--only", choices=["astra", "duckdb", "polars"], action="append",
                    help="run only these (repeatable); default: all three")
    ap.add_argument("--suite", choices=["all", "fraud", "asof"], default="all",
                    help="fraud: the 22-feature service; asof: profile_lookup@v1 vs as-of joins")
    ap.add_argument("--feast-python", type=Path, default=Path("/tmp/feast-env/bin/python"),
                    help="a Python with Feast installed, for the as-of comparison")
    a = ap.parse_args()

    data = a.data or ROOT / "bench" / "data" / f"e{a.events}_l{a.labels}_u{a.users}"
    if not (data / "labels.parquet").exists():
        print(f"generating {data} ...")
        subprocess.run([sys.executable, KIT / "gen_data.py", data, "--events", str(a.events),
                        "--labels", str(a.labels), "--users", str(a.users)], check=True)
    work = data / "out"
    work.mkdir(exist_ok=True)
    if a.suite in ("all", "fraud"):
        fraud_suite(a, data, work)
    if a.suite in ("all", "asof"):
        print()
        asof_suite(data, work, a.reps, a.feast_python)


def fraud_suite(a: argparse.Namespace, data: Path, work: Path) -> None:
    """fraud_model@v1 (22 features) vs the DuckDB reference and the Polars peer."""
    engines = {
        "astra": astra_command(data, work / "astra.parquet"),
        "duckdb": [sys.executable, KIT / "reference_duckdb.py", data, work / "duckdb.parquet"],
        "polars": [sys.executable, KIT / "peer_polars.py", data, work / "polars.parquet"],
    }
    engines = {k: v for k, v in engines.items() if not a.only or k in a.only}
    runs = timed(engines, a.reps)
    print(f"\n{os.cpu_count()} cores, {a.events:,} events / {a.labels:,} labels / {a.users:,} users, "
          f"median of {a.reps} (whole process); peak RSS = max over reps")
    report(runs, "astra")
    if "astra" in engines and "duckdb" in engines:
        cmp = subprocess.run([sys.executable, KIT / "compare.py", work / "duckdb.parquet", work / "astra.parquet"],
                             capture_output=True, text=True)
        print("compare.py astra vs duckdb:", cmp.stdout.strip().splitlines()[-1])
        if cmp.returncode:
            print(cmp.stdout)
            sys.exit(1)

if __name__ == "__main__":
    main()
