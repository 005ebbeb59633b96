#!/usr/bin/env python3
"""Push benchmark: the cost of a push to hot entities as their history grows, and the bytes a
pushed row costs against a materialized one.

Materialises the first part of the shared benchmark data for fraud_model@v1, then pushes
batches of `--batch` rows (one a millisecond apart) to the `--hot` busiest users, reporting per
round of `--round` pushes the median and p99 push time and the store's bytes per retained row;
then the same rows pushed to random users.  A push's cost should not grow with the round.

Run it under `flock /tmp/astra-bench.lock` (the machine is shared; timings are noisy):
  uv run python bench/push.py [--data DIR] [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
SHARED = ROOT.parent / "shared" / "bench"
SERVICE = "fraud_model@v1"


def retained(store) -> int:
    return sum(int(tb.slot["len"][:tb.n_slots].sum()) for tb in store.tables)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--hot", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--round", type=int, default=200, help="pushes per reported round")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    data = a.data or Path(f"/tmp/astra_bench_{a.events}")
    if not (data / "transactions.parquet").exists():
        subprocess.run([sys.executable, str(SHARED / "gen_data.py"), str(data), "--events", str(a.events),
                        "--labels", str(max(a.events // 10, 1000)), "--users", str(max(a.events // 20, 500))],
                       check=True)

    from online import raw_bytes

    from astra.online import Store
    from astra.project import Project

    plan = Project.load(ROOT / "features").plan
    store = Store(plan, services=[SERVICE])
    t0 = time.perf_counter()
    store.materialize(data)
    print(f"materialized {retained(store):,} retained rows in {time.perf_counter() - t0:.1f} s: "
          f"{store.nbytes() / retained(store):.1f} B/row, {store.nbytes() / raw_bytes(store):.2f}x raw")
    tx = pl.read_parquet(data / "transactions.parquet", columns=["user_id"])
    counts = tx["user_id"].value_counts().sort("count", descending=True)
    users = counts["user_id"].to_numpy()
    hot = users[:a.hot]
    print(f"hot users: {a.hot}, {int(counts['count'][:a.hot].sum()):,} events among them")
    rng = np.random.default_rng(0)
    t = max(store.watermark.values()) + 1

    def run(who: np.ndarray, label: str) -> None:
        nonlocal t
        print(f"\n{label}: pushes of {a.batch} rows")
        print(f"{'round':>5}  {'rows pushed':>11}  {'p50 ms':>7}  {'p99 ms':>7}  {'B/retained row':>14}  {'x raw':>6}")
        bytes0, rows0 = store.nbytes(), retained(store)
        for r in range(a.rounds):
            times = []
            for _ in range(a.round):
                rows = [{"user_id": int(u), "merchant_id": int(rng.integers(0, 5000)), "amount": 12.5,
                         "category": "cat_01", "ts": t + j * 1000} for j, u in enumerate(rng.choice(who, a.batch))]
                t += a.batch * 1000
                c0 = time.perf_counter()
                store.push("transactions", rows)
                times.append(time.perf_counter() - c0)
            ms = np.asarray(times) * 1e3
            print(f"{r + 1:>5}  {(r + 1) * a.round * a.batch:>11,}  {np.percentile(ms, 50):>7.2f}  "
                  f"{np.percentile(ms, 99):>7.2f}  {store.nbytes() / retained(store):>14.1f}  "
                  f"{store.nbytes() / raw_bytes(store):>6.2f}")
        grew = retained(store) - rows0
        print(f"store bytes per pushed row (all growth / retained rows added): "
              f"{(store.nbytes() - bytes0) / max(grew, 1):.1f}")

    run(hot, f"hot users ({a.hot})")
    run(users, "random users")


if __name__ == "__main__":
    main()
