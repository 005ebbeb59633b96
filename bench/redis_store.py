#!/usr/bin/env python3
"""In-process latency of `RedisStore.get` next to the embedded `Store.get`, in the same run.

Generates the demo data, materializes it into both stores (a redis-server started here on a free
loopback port, or --url), then times `get("fraud_model@v1", ...)` for 1 and 100 random users at
the watermark: p50/p99 per call over --calls calls each.  Loopback Redis, no HTTP: the cost of the
shared store itself (one pipelined round trip, decoding and loading the entities' rows).

With --hot N: instead, one hot user with N transactions over --hot-days days (pushed in
batches of 50, so the cutoff moves in many steps), then `get` of that user alone at the
watermark: bytes fetched from Redis per get (the user's lifetime state plus the rows since its
cutoff, against all its rows held) and p50/p99, beside the embedded store.

Usage: uv run python bench/redis_store.py [--events N] [--users N] [--calls N] [--url redis://...]
                                          [--hot N --hot-days D]
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


def hot(args, url: str) -> None:
    """One hot user: bytes fetched and latency per single-entity get (see the module doc)."""
    from astra.online.redis_store import RedisStore
    from astra.online.store import Store
    from astra.project import Project

    plan = Project.load(ROOT / "features").plan
    svc = "fraud_model@v1"
    src = plan.source("transactions")
    rng = random.Random(3)
    t0, span = 1_700_000_000_000_000, args.hot_days * 86_400_000_000
    times = sorted(t0 + rng.randrange(span) for _ in range(args.hot))
    rows = [{c: None for c, _ in src.columns} | {"user_id": 1, "merchant_id": rng.randrange(50), "ts": t,
                                                 "amount": round(rng.expovariate(1 / 40), 2),
                                                 "category": rng.choice(["food", "travel", "fuel"])} for t in times]
    rows = [{c: r[c] for c, _ in src.columns} for r in rows]
    local = Store(plan, services=[svc])
    red = RedisStore(plan, url, services=[svc], prefix="benchhot")
    red.clear()
    t = time.perf_counter()
    for i in range(0, len(rows), 50):
        local.push("transactions", rows[i:i + 50])
        red.push("transactions", rows[i:i + 50])
    print(f"pushed {len(rows)} rows of one user over {args.hot_days} days in {time.perf_counter() - t:.1f} s")
    at = times[-1] + 1
    (key,) = [k for k in red.redis.scan_iter(match="benchhot:r:transactions:user_id:*") if b":s:" not in k]
    held = sum(len(m) for m in red.redis.zrange(key, 0, -1))
    print(f"Redis holds {held} bytes of the user's rows ({red.redis.zcard(key)} chunks)")
    one = [{"user_id": 1}]
    red.get(svc, one, at=at)
    first = getattr(red, "last_fetch_bytes", held)
    red.get(svc, one, at=at)
    then = getattr(red, "last_fetch_bytes", held)
    print(f"bytes fetched per get: first {first}, then {then}")
    print(f"{'store':<10} {'p50 ms':>8} {'p99 ms':>8}")
    for name, store in (("embedded", local), ("redis", red)):
        p50, p99 = _times(lambda s=store: s.get(svc, one, at=at), args.calls)
        print(f"{name:<10} {p50:>8.3f} {p99:>8.3f}")
    red.clear()
    red.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--users", type=int, default=1_000)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--url", default=None, help="an existing Redis (its `benchredis` namespace is cleared)")
    ap.add_argument("--hot", type=int, default=0, help="rows of one hot user (0: the demo data run)")
    ap.add_argument("--hot-days", type=int, default=365)
    args = ap.parse_args()
    if args.hot:
        with tempfile.TemporaryDirectory() as tmp:
            proc, url = (None, args.url) if args.url else _start_redis(tmp)
            try:
                hot(args, url)
            finally:
                if proc is not None:
                    proc.kill()
                    proc.wait()
        return

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
