#!/usr/bin/env python3
"""Time `astra compile` on a generated project of 1,000 features in 50 groups.

The whole CLI run is timed (interpreter start, imports, parse, check, plan, lock, plan.json),
median of N runs, as a user would see it in CI.

Usage: bench/compile.py [--groups 50] [--features 20] [--reps 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = """
entity user { key user_id: int64 }
entity user_merchant { key user_id: int64  key merchant_id: int64 }

events transactions for user, user_merchant {
    path "transactions.parquet"
    time ts
    columns { user_id: int64  merchant_id: int64  amount: float64?  category: string }
}

snapshot profiles for user {
    path "profiles.parquet"
    time updated_at
    columns { user_id: int64  country: string  tier: int32  credit_limit: float64 }
}
"""

WINDOWS = ["1h", "6h", "1d", "3d", "7d", "14d", "30d", "90d"]


def feature(g: int, i: int) -> str:
    w = WINDOWS[(g + i) % len(WINDOWS)]
    kind = i % 10
    if kind == 0:
        return f"    g{g}_f{i}: int64 = count(transactions, {w})"
    if kind == 1:
        return f"    g{g}_f{i}: float64 = sum(transactions.amount, {w})"
    if kind == 2:
        return f"    g{g}_f{i}: float64? = mean(transactions.amount where amount > {g}.5, {w})"
    if kind == 3:
        return f"    g{g}_f{i}: float64? = max(transactions.amount, {w})"
    if kind == 4:
        return f"    g{g}_f{i}: int64 = count_distinct(transactions.merchant_id, {w})"
    if kind == 5:
        return f"    g{g}_f{i}: string? = last(transactions.category)"
    if kind == 6:
        return f"    g{g}_f{i}: float64? = g{g}_f{i - 5} / (g{g}_f{i - 6} as float64)"
    if kind == 7:
        return f'    g{g}_f{i}: string = if g{g}_f{i - 7} > 10 then "hot" else profiles.country ?? "none"'
    if kind == 8:
        return f"    g{g}_f{i}: float64 = clip(log(g{g}_f{i - 7} + 1.0) ?? 0.0, 0.0, 10.0)"
    return f"    g{g}_f{i}: float64? = hours(now() - last(transactions.ts, {w}))"


def generate(root: Path, groups: int, per_group: int) -> None:
    (root / "sources.feat").write_text(HEADER)
    for g in range(groups):
        body = "\n".join(feature(g, i) for i in range(per_group))
        (root / f"group_{g:02d}.feat").write_text(
            f'import "sources.feat"\n\nfeatures g{g} v1 for user {{\n    owner "team{g % 5}@example.com"\n'
            f"{body}\n}}\n")
    selections = "\n".join(f"    g{g}@v1.*" for g in range(groups))
    (root / "services.feat").write_text(f"service everything v1 {{\n{selections}\n}}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--features", type=int, default=20, help="features per group")
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, a.groups, a.features)
        # Steady state, as on a user's machine: bytecode caches written by the warm-up run are reused.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cmd = [sys.executable, "-m", "astra.cli.main", "compile", str(root), "--lock"]
        first = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if first.returncode != 0:
            sys.exit(f"compile failed:\n{first.stderr}")
        cmd = cmd[:-1]  # later runs check against the lock, as CI does
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - t0)
        lines = sum(len(p.read_text().splitlines()) for p in root.glob("*.feat"))
        print(f"astra compile: {a.groups * a.features} features, {a.groups} groups, {lines} lines")
        print(f"  whole CLI run, median of {a.reps}: {statistics.median(times) * 1000:.0f} ms "
              f"(min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
