#!/usr/bin/env python3
"""HTTP serving benchmark: `astra serve` under wrk, next to Feast's `feast serve` and a floor.

Starts `astra serve features/` over the shared benchmark data (generated with
../shared/bench/gen_data.py when missing), then drives it from wrk (a separate process, one
thread, loopback) for --seconds at 1, 16 and 64 connections with single-entity and
100-entity `fraud_model@v1` requests whose users follow a Zipf distribution (hot keys):

  * astra, cache on (the default server);
  * astra, cache off (every request evaluates the plan): the hot-key comparison;
  * the floor: a constant 22-value JSON payload on the same stack (granian, RSGI like astra's
    default), i.e. what the stack costs with no work at all; and the same over ASGI, for scale;
  * Feast (`../shared/bench/peer_feast.py serve`, from its own environment, e.g.
    /tmp/feast-env with feast==0.67.*): 3 as-of features, 1 entity, its own aiohttp client;
  * the Redis column: `astra serve --store redis://...` with 1 and 4 replicas (separate
    processes on their own loopback ports, one redis-server the bench starts on a free port,
    materialized once by the first replica), single-entity requests at 16 and 64 connections,
    wrk's threads spread over the replicas (one thread per replica: its connections go to it).

Prints requests/s and p50/p95/p99 per configuration and the ratios to Feast and the floor.
Every timed part runs under `flock /tmp/astra-bench.lock` so benchmarks never overlap.

Usage: uv run python bench/serve.py [--events N] [--seconds S] [--conns 1,16,64] [--feast-python P]
                                    [--replicas 1,4] [--redis-conns 16,64] [--skip-redis]
       (the floor apps are `serve:floor` (RSGI) and `serve:floor_asgi`, with bench/ as working directory)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bench"
LOCK = "/tmp/astra-bench.lock"

FLOOR_BODY = (b'{"service":"fraud_model","version":1,"results":[{"values":['
              + b",".join(b"%.4f" % (i * 1.5) for i in range(20)) + b',"cat_01","US"],"missing":[],"stale":[]}]}')


class _Floor:
    """The floor: a constant payload, no parsing, no lookup (RSGI, the interface astra serves on)."""

    async def __rsgi__(self, scope, proto):
        await proto()
        proto.response_bytes(200, [("content-type", "application/json")], FLOOR_BODY)


floor = _Floor()


async def floor_asgi(scope, receive, send):
    """The same over ASGI (what `astra serve --interface asgi` or uvicorn pay)."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(FLOOR_BODY))]})
    await send({"type": "http.response.body", "body": FLOOR_BODY})


WRK_LUA = """
local bodies = {}
local path = "%(path)s"
init = function(args)
  for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
  math.randomseed(%(seed)d)
end
request = function()
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[math.random(#bodies)])
end
%(setup)sdone = function(summary, latency, requests)
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
    + summary.errors.timeout
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50\\": %%d, \\"p95\\": %%d, "
    .. "\\"p99\\": %%d, \\"errors\\": %%d}\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), errs))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> float:
    t0 = time.perf_counter()
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from None
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"server not ready after {timeout} s") from None
            time.sleep(0.25)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def zipf_users(users: list[int], n: int, s: float, seed: int) -> list[int]:
    """n draws from `users` with Zipf(s) ranks over a shuffled order (hot keys scattered)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(users))
    ranks = np.arange(1, len(users) + 1, dtype=float)
    p = ranks ** -s
    p /= p.sum()
    picks = rng.choice(len(users), size=n, p=p)
    return [users[order[i]] for i in picks]


def write_bodies(path: Path, users: list[int], per_request: int, n: int, seed: int) -> None:
    keys = zipf_users(users, n * per_request, 1.1, seed)
    with open(path, "w") as f:
        for i in range(n):
            ents = [{"user_id": u} for u in keys[i * per_request:(i + 1) * per_request]]
            f.write(json.dumps({"service": "fraud_model", "version": 1, "entities": ents}, separators=(",", ":")))
            f.write("\n")


# wrk's threads each send to one replica (thread i to port i mod n): its connections stay there
SPREAD_LUA = """
local ports, next_port = {%(ports)s}, 0
setup = function(thread)
  next_port = next_port + 1
  thread.addr = wrk.lookup("127.0.0.1", tostring(ports[(next_port - 1) %% #ports + 1]))[1]
end
"""


def wrk(url: str, path: str, bodies: Path, conns: int, seconds: float, tmp: Path,
        ports: list[int] | None = None) -> dict:
    """One wrk run; with `ports`, one thread per port (conns split evenly over them)."""
    lua = tmp / f"wrk_{bodies.stem}{'_spread' if ports else ''}.lua"
    setup = SPREAD_LUA % {"ports": ", ".join(map(str, ports))} if ports else ""
    lua.write_text(WRK_LUA % {"path": path, "bodies": bodies, "seed": 7, "setup": setup})
    threads = len(ports) if ports else 1
    cmd = ["flock", LOCK, "wrk", f"-t{threads}", f"-c{max(conns, threads)}", f"-d{int(seconds)}s", "--timeout",
           "10s", "-s", str(lua), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 600).stdout
    m = re.search(r"RESULT (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / r["seconds"]
    return r


def fmt(name: str, r: dict) -> str:
    return (f"  {name:<38} {r['rps']:>9.0f} req/s   p50 {r['p50'] / 1e3:7.2f} ms   p95 {r['p95'] / 1e3:7.2f} ms   "
            f"p99 {r['p99'] / 1e3:7.2f} ms   errors {r['errors']}")


def run_astra(data: Path, tmp: Path, args, users: list[int], label: str, extra: list[str]) -> dict:
    port = free_port()
    state = tmp / f"state_{label}"
    log = open(tmp / f"astra_{label}.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "astra.cli.main", "serve", str(ROOT / "features"), "--data-root", str(data),
           "--state", str(state), "--port", str(port), "--access-log", "off", *extra]
    if args.state.exists() and any(args.state.glob("snap-*")):  # reuse the materialized snapshot
        clone_state(args.state, state)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp)
    results = {}
    try:
        took = wait_ready(f"http://127.0.0.1:{port}/readyz", proc, 3600)
        print(f"astra serve ({label}) ready after {took:.1f} s")
        url = f"http://127.0.0.1:{port}/v1/features"
        for per in args.sizes:
            bodies = tmp / f"bodies_{per}.txt"
            if not bodies.exists():
                write_bodies(bodies, users, per, 20_000 if per == 1 else 2_000, seed=per)
            wrk(url, "/v1/features", bodies, 4, 2, tmp)  # warm-up
            for c in args.conns:
                r = wrk(url, "/v1/features", bodies, c, args.seconds, tmp)
                results[(per, c)] = r
                print(fmt(f"astra {label}, {per} entit{'y' if per == 1 else 'ies'}, {c} conns", r), flush=True)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        found = re.finditer(r"^astra_cache_(hits|misses)_total (\S+)$", text, re.M)
        stats = {m.group(1): float(m.group(2)) for m in found}
        if stats.get("hits", 0) + stats.get("misses", 0):
            print(f"  cache hit ratio over the run: {stats['hits'] / (stats['hits'] + stats['misses']):.1%} of "
                  f"{stats['hits'] + stats['misses']:.0f} entity lookups")
    finally:
        stop(proc)
    if not any(args.state.glob("snap-*")):  # keep the materialized state for later runs
        clone_state(state, args.state)
    return results


def start_redis(tmp: Path) -> tuple[subprocess.Popen, str]:
    """A redis-server on a free loopback port, without persistence, for the Redis column."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("redis-server did not start")


def run_redis(data: Path, tmp: Path, args, users: list[int], url: str) -> dict:
    """`astra serve --store URL`: 1, then n replicas (separate processes, one port each) sharing
    the one Redis; the first replica ever started materializes the empty namespace."""
    results = {}
    procs: list[subprocess.Popen] = []
    ports: list[int] = []
    bodies = tmp / "bodies_1.txt"
    if not bodies.exists():
        write_bodies(bodies, users, 1, 20_000, seed=1)
    try:
        for n in args.replicas:
            while len(procs) < n:  # replicas already running stay: the namespace is shared
                port = free_port()
                label = f"redis_{len(procs)}"
                log = open(tmp / f"astra_{label}.log", "wb")  # noqa: SIM115
                cmd = [sys.executable, "-m", "astra.cli.main", "serve", str(ROOT / "features"), "--store", url,
                       "--data-root", str(data), "--port", str(port), "--access-log", "off"]
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp)
                procs.append(proc)
                took = wait_ready(f"http://127.0.0.1:{port}/readyz", proc, 7200)
                print(f"astra serve --store redis (replica {len(procs)}) ready after {took:.1f} s", flush=True)
                ports.append(port)
            live = ports[:n]
            url0 = f"http://127.0.0.1:{live[0]}/v1/features"
            wrk(url0, "/v1/features", bodies, 4 * n, 2, tmp, live)  # warm-up
            for c in args.redis_conns:
                r = wrk(url0, "/v1/features", bodies, c, args.seconds, tmp, live)
                results[(n, c)] = r
                print(fmt(f"astra redis, {n} replica{'s' if n > 1 else ''}, 1 entity, {c} conns", r), flush=True)
    finally:
        for proc in procs:
            stop(proc)
    return results


def clone_state(src: Path, dst: Path) -> None:
    """A copy of a state directory: snapshots hard-linked (never written in place), logs copied."""
    def link(a, b):
        return shutil.copy2(a, b) if "/wal/" in a else os.link(a, b)

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("LOCK"), copy_function=link)


def run_floor(tmp: Path, args, interface: str = "rsgi") -> dict:
    port = free_port()
    app = "serve:floor" if interface == "rsgi" else "serve:floor_asgi"
    cmd = [sys.executable, "-m", "granian", "--interface", interface, "--loop", "uvloop", "--host", "127.0.0.1",
           "--port", str(port), "--working-dir", str(ROOT / "bench"), "--no-ws", app]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = {}
    try:
        wait_ready(f"http://127.0.0.1:{port}/", proc, 60)
        bodies = tmp / "bodies_1.txt"
        for c in args.conns:
            results[c] = r = wrk(f"http://127.0.0.1:{port}/", "/", bodies, c, args.seconds, tmp)
            print(fmt(f"floor ({interface}, constant payload), {c} conns", r), flush=True)
    finally:
        stop(proc)
    return results


def run_feast(data: Path, args) -> dict:
    py = Path(args.feast_python)
    if args.skip_feast or not py.exists():
        print(f"Feast: skipped ({'--skip-feast' if args.skip_feast else f'no {py}'}; create it with "
              f"`python3 -m venv /tmp/feast-env && /tmp/feast-env/bin/pip install 'feast==0.67.*' aiohttp psutil "
              f"polars pyarrow`)")
        return {}
    cmd = ["flock", LOCK, str(py), str(SHARED / "peer_feast.py"), "serve", str(data), "--seconds", str(args.seconds)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        print("Feast: skipped (timed out)")
        return {}
    found = {}
    for line in out.stdout.splitlines():
        m = re.search(r"concurrency (\d+): n=\d+ p50=(\d+) us p99=(\d+) us .* throughput=(\d+) req/s", line)
        if m:
            c = int(m.group(1))
            found[c] = {"rps": float(m.group(4)), "p50": int(m.group(2)), "p99": int(m.group(3))}
            print(f"  feast serve, 1 entity, {c} conns (aiohttp client)  {found[c]['rps']:>9.0f} req/s   "
                  f"p50 {found[c]['p50'] / 1e3:7.2f} ms   p99 {found[c]['p99'] / 1e3:7.2f} ms", flush=True)
    if not found:
        print(f"Feast: no figures (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--data", type=Path, default=None, help="data dir (default /tmp/astra_serve_bench_<events>)")
    ap.add_argument("--state", type=Path, default=None, help="materialized server state, reused between runs "
                    "(default /tmp/astra_serve_bench_state_<events>; delete it when the store's format changes)")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--conns", default="1,16,64")
    ap.add_argument("--feast-python", default="/tmp/feast-env/bin/python")
    ap.add_argument("--skip-feast", action="store_true")
    ap.add_argument("--sizes", default="1,100", help="entities per request")
    ap.add_argument("--no-cache-off", action="store_true", help="skip the cache-off run")
    ap.add_argument("--replicas", default="1,4", help="Redis column: replicas (`astra serve --store`) per run")
    ap.add_argument("--redis-conns", default="16,64", help="Redis column: connections")
    ap.add_argument("--skip-redis", action="store_true", help="skip the Redis column")
    args = ap.parse_args()
    args.conns = [int(c) for c in args.conns.split(",")]
    args.sizes = [int(c) for c in args.sizes.split(",")]
    args.replicas = sorted(int(c) for c in args.replicas.split(","))
    args.redis_conns = [int(c) for c in args.redis_conns.split(",")]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get update && apt-get install -y wrk")
    data = args.data or Path(f"/tmp/astra_serve_bench_{args.events}")
    args.state = args.state or Path(f"/tmp/astra_serve_bench_state_{args.events}")
    if not (data / "transactions.parquet").exists():
        data.mkdir(parents=True, exist_ok=True)
        print(f"generating {args.events} events into {data} ...", flush=True)
        subprocess.run(["flock", LOCK, sys.executable, str(SHARED / "gen_data.py"), str(data),
                        "--events", str(args.events)], check=True)
    from astra import demo_data

    demo_data.add_products(data)  # the example project also serves a product catalogue
    import polars as pl

    users = pl.read_parquet(data / "labels.parquet", columns=["user_id"])["user_id"].unique().sort().to_list()
    random.seed(1)
    print(f"cores: {os.cpu_count()}; data: {data}; {len(users)} label users, Zipf(1.1) keys; "
          f"{args.seconds:.0f} s per point; wrk -t1 on loopback")
    with tempfile.TemporaryDirectory(prefix="astra_serve_bench_") as t:
        tmp = Path(t)
        on = run_astra(data, tmp, args, users, "cache_on", [])
        off = {} if args.no_cache_off else run_astra(data, tmp, args, users, "cache_off", ["--cache-size", "0"])
        fl = run_floor(tmp, args)
        fl_asgi = run_floor(tmp, args, "asgi")
        red = {}
        if args.skip_redis:
            print("Redis column: skipped (--skip-redis)")
        elif not (shutil.which("redis-server") or os.path.exists("/usr/bin/redis-server")):
            print("Redis column: skipped (no redis-server; apt-get install redis-server)")
        else:
            rproc, rurl = start_redis(tmp)
            try:
                red = run_redis(data, tmp, args, users, rurl)
            finally:
                stop(rproc)
    feast = run_feast(data, args)
    print("\nsummary (single entity):")
    for c in args.conns:
        r = on[(1, c)]
        parts = [f"{c:>3} conns: astra {r['rps']:.0f} req/s p99 {r['p99'] / 1e3:.2f} ms"]
        if (1, c) in off:
            parts.append(f"cache off {off[(1, c)]['rps']:.0f} req/s p99 {off[(1, c)]['p99'] / 1e3:.2f} ms")
        if c in fl:
            parts.append(f"{r['rps'] / fl[c]['rps']:.0%} of the floor ({fl[c]['rps']:.0f}; ASGI floor "
                         f"{fl_asgi[c]['rps']:.0f})")
        if c in feast:
            parts.append(f"{r['rps'] / feast[c]['rps']:.1f}x Feast ({feast[c]['rps']:.0f})")
        print("  " + "; ".join(parts))
    if red:
        print("\nsummary (single entity, Redis store beside the embedded one; no answer cache with Redis):")
        for c in args.redis_conns:
            parts = [f"{c:>3} conns:"]
            if (1, c) in off:
                e = off[(1, c)]
                parts.append(f"embedded cache off {e['rps']:.0f} req/s p99 {e['p99'] / 1e3:.2f} ms;")
            for n in args.replicas:
                r = red[(n, c)]
                parts.append(f"redis x{n} {r['rps']:.0f} req/s p50 {r['p50'] / 1e3:.2f} ms "
                             f"p99 {r['p99'] / 1e3:.2f} ms;")
            print("  " + " ".join(parts).rstrip(";"))


if __name__ == "__main__":
    main()
