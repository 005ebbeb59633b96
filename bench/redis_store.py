#!/usr/bin/env python3
"""In-process latency of `RedisStore.get` next to the embedded `Store.get`, in the same run.

Generates the demo data, materializes it into both stores (a redis-server started here on a free
loopback port, or --url), then times `get("fraud_model@v1", ...)` for 1 and 100 random users at
the watermark: p50/p99 per call over --calls calls each.  Loopback Redis, no HTTP: the cost of the
shared store itself (one pipelined round trip, decoding and loading the entities' rows).

Usage: uv run python bench/redis_store.py [--events N] [--users N] [--calls N] [--url redis://...]
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(workdir: str) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("error: redis-server is not installed (apt-get install redis-server), or pass --url")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("error: redis-server did not start")


def _times(f, calls: int) -> tuple[float, float]:
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    out.sort()
    return out[len(out) // 2] * 1e3, out[min(len(out) - 1, int(len(out) * 0.99))] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--users", type=int, default=1_000)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--url", default=None, help="an existing Redis (its `benchredis` namespace is cleared)")
    args = ap.parse_args()

    from astra.demo_data import generate
    from astra.online.redis_store import RedisStore
    from astra.online.store import Store
    from astra.project import Project

    plan = Project.load(ROOT / "features").plan
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "data", events=args.events, users=args.users, labels=10)
        proc = None
        url = args.url
        if url is None:
            proc, url = _start_redis(tmp)
        try:
            svc = "fraud_model@v1"
            local = Store(plan, services=[svc])
            local.materialize(Path(tmp) / "data")
            red = RedisStore(plan, url, services=[svc], prefix="benchredis")
            red.clear()
            t = time.perf_counter()
            red.materialize(Path(tmp) / "data")
            print(f"materialize into Redis: {args.events} events in {time.perf_counter() - t:.2f} s")
            at = max(local.watermark.values()) + 1
            rng = random.Random(0)
            users = sorted(local.tables[0].keys) if local.tables[0].keys else list(range(args.users))
            print(f"{'store':<10} {'entities':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for n in (1, 100):
                for name, store in (("embedded", local), ("redis", red)):
                    p50, p99 = _times(lambda s=store, n=n: s.get(svc, [{"user_id": u} for u in rng.sample(users, n)],
                                                                    at=at), args.calls)
                    print(f"{name:<10} {n:>8} {p50:>8.3f} {p99:>8.3f}")
            red.clear()
            red.close()
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
