#!/usr/bin/env python3
"""Soak: `astra serve` under mixed reads and a steady push stream for N minutes.

Starts a real `astra serve features/` (the demo project) over generated demo data (or --data, e.g.
the shared benchmark data) moved in time to end at the wall clock (a copy; so "now" windows are
full from the first minute, as on a serving store), then, for --minutes:

  * reads: two wrk processes on loopback, one sending single-entity and one 100-entity
    `fraud_model@v1` requests (Zipf over the users ranked by their rows in the data: the users
    with most history get most traffic; no `at`: "now", through the cache), --conns1 and
    --conns100 connections (16 in all by default);
  * pushes: one client thread pushing --push-rate rows/s (default 500) of `transactions`, in
    --push-batch row batches stamped with the wall clock, to Zipf-hot users (so hot keys
    accumulate rows, as in production).

Every --interval seconds (default 30) it records, per read size: requests/s, p50/p99/max latency
and errors (socket errors and non-2xx answers, from wrk); for the pushes: rows/s achieved, p50/p99/
max latency and errors (non-200 or rows not accepted); the worker's RSS (/proc, the pid that
answers) and the store's bytes (`astra_store_bytes`).  At the end: the slope of each figure per
minute (least squares over the intervals) and the goal checks of issue 22:

  * p99 of the last minute <= 1.2x the first (per read size; a minute's p99 is the request-weighted
    mean of the p99 of its intervals);
  * read throughput of the last minute within 10% of the first;
  * RSS growth (first interval -> last) <= 1.5x the store's growth + 32 MiB, i.e. memory grows with
    the retained data only (every pushed row stays within the 30-day window during a soak);
  * 0 errors (reads and pushes), and no worker respawn.

The first interval starts after a --warmup (default 10 s, not measured).  Timings on a shared
machine move with other load: run it alone, and compare ratios (last/first), not absolutes.

Usage: uv run python bench/soak.py [--minutes 30] [--interval 30] [--push-rate 500] [--json out.json]
       uv run python bench/soak.py --minutes 1            # a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WRK_LUA = """
local bodies = {}
init = function(args)
  for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
  math.randomseed(%(seed)d)
end
request = function()
  return wrk.format("POST", "/v1/features", {["Content-Type"] = "application/json"}, bodies[math.random(#bodies)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50\\": %%d, \\"p99\\": %%d, "
    .. "\\"max\\": %%d, \\"errors\\": %%d, \\"status_errors\\": %%d}\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout + e.status, e.status))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zipf(values: list[int], n: int, s: float, seed: int) -> list[int]:
    """n draws from `values`, Zipf(s) over their order (the first is the hottest); one order for
    reads and pushes, so the keys read most are those accumulating rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    p = np.arange(1, len(values) + 1, dtype=float) ** -s
    p /= p.sum()
    return [values[i] for i in rng.choice(len(values), size=n, p=p)]


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q / 100 * len(xs)))]


def slope(ts: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over ts (per unit of ts); 0 for fewer than two points."""
    pts = [(t, y) for t, y in zip(ts, ys) if y == y]  # drop NaN
    if len(pts) < 2:
        return 0.0
    mt = sum(t for t, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return sum((t - mt) * (y - my) for t, y in pts) / den if den else 0.0


# --------------------------------------------------------------------------- the server


class Server:
    """`astra serve` in its own process group, on a free loopback port."""

    def __init__(self, data: Path, state: Path, log: Path, extra: list[str], timeout: float):
        self.port = free_port()
        cmd = [sys.executable, "-m", "astra.cli.main", "serve", str(ROOT / "features"), "--data-root", str(data),
               "--state", str(state), "--port", str(self.port), "--access-log", "off", *extra]
        self.log = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=state.parent)
        t0 = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(self.url("/readyz"), timeout=2).read()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"astra serve exited with {self.proc.returncode}:\n"
                                     f"{log.read_text()[-3000:]}") from None
                if time.monotonic() - t0 > timeout:
                    self.stop()
                    raise SystemExit(f"astra serve not ready after {timeout:.0f} s:\n"
                                     f"{log.read_text()[-3000:]}") from None
                time.sleep(0.25)
        self.ready_after = time.monotonic() - t0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def worker(self) -> int:
        """The pid of the process answering (request ids start with it, in hex)."""
        with urllib.request.urlopen(self.url("/healthz"), timeout=10) as r:
            return int(r.headers["x-request-id"].split("-")[0], 16)

    def metrics(self) -> dict[str, float]:
        text = urllib.request.urlopen(self.url("/metrics"), timeout=30).read().decode()
        out: dict[str, float] = {}
        for m in re.finditer(r"^(astra_store_bytes|astra_worker_respawns_total|astra_wal_bytes) (\S+)$", text, re.M):
            out[m.group(1)] = float(m.group(2))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def rss_bytes(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("nan")


# --------------------------------------------------------------------------- load


class Pusher(threading.Thread):
    """Pushes `rate` rows/s in `batch`-row pushes at the wall clock's time, paced (never bursting to
    catch up: the achieved rate is what it is); records each push's latency and failures."""

    def __init__(self, port: int, users: list[int], merchants: list[int], rate: float, batch: int):
        super().__init__(daemon=True)
        self.port, self.rate, self.batch = port, rate, batch
        self.users = zipf(users, 200_000, 1.1, seed=3)
        self.merchants = merchants
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float, int]] = []  # (latency s, rows accepted, failed 0/1)
        self.first_error: str | None = None

    def take(self) -> list[tuple[float, float, int]]:
        with self.lock:
            out, self.samples = self.samples, []
        return out

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        period = self.batch / self.rate
        nxt = time.monotonic()
        i = 0
        while not self.stop_flag.is_set():
            now_us = time.time_ns() // 1000
            rows = []
            for j in range(self.batch):
                k = i * self.batch + j
                rows.append({"user_id": self.users[k % len(self.users)],
                             "merchant_id": self.merchants[k % len(self.merchants)],
                             "amount": float(k % 997) / 10.0, "category": f"cat_{k % 12:02d}", "ts": now_us})
            body = json.dumps({"source": "transactions", "rows": rows}).encode()
            t0 = time.perf_counter()
            failed, accepted = 0, 0
            try:
                conn.request("POST", "/v1/push", body, {"content-type": "application/json"})
                r = conn.getresponse()
                ack = json.loads(r.read() or b"{}")
                accepted = ack.get("accepted", 0) if r.status == 200 else 0
                if r.status != 200 or accepted != len(rows):
                    failed = 1
                    self.first_error = self.first_error or f"HTTP {r.status}: {json.dumps(ack)[:300]}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                failed = 1
                self.first_error = self.first_error or repr(exc)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            dt = time.perf_counter() - t0
            with self.lock:
                self.samples.append((dt, accepted, failed))
            i += 1
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stop_flag.wait(delay)
            else:
                nxt = time.monotonic()  # behind: go on at the rate from here, no burst
        conn.close()


def write_bodies(path: Path, users: list[int], per: int, n: int, seed: int) -> None:
    keys = zipf(users, n * per, 1.1, seed)
    with open(path, "w") as f:
        for i in range(n):
            ents = [{"user_id": u} for u in keys[i * per:(i + 1) * per]]
            f.write(json.dumps({"service": "fraud_model", "version": 1, "entities": ents}, separators=(",", ":")))
            f.write("\n")


def start_wrk(port: int, bodies: Path, conns: int, seconds: int, tmp: Path) -> subprocess.Popen:
    lua = tmp / f"wrk_{bodies.stem}.lua"
    if not lua.exists():
        lua.write_text(WRK_LUA % {"bodies": bodies, "seed": 7})
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua),
           f"http://127.0.0.1:{port}/v1/features"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(proc: subprocess.Popen, seconds: int) -> dict:
    out, _ = proc.communicate(timeout=seconds + 120)
    m = re.search(r"RESULT (\{.*\})", out)
    if not m:
        return {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "max": float("nan"),
                "errors": 1, "requests": 0, "note": out[-500:]}
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / r["seconds"] if r["seconds"] else 0.0
    for k in ("p50", "p99", "max"):
        r[k] = r[k] / 1e3  # µs -> ms
    return r


# --------------------------------------------------------------------------- the run


def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="astra_soak_"))
    data = args.data
    if data is None:
        from astra import demo_data

        data = tmp / "data"
        print(f"generating demo data ({args.events} events, {args.users} users) into {data} ...", flush=True)
        demo_data.generate(data, events=args.events, users=args.users, labels=1000, seed=5)
    else:
        from astra import demo_data

        demo_data.add_products(data)  # a kit data directory: the example project's catalogue too
    data = dated_to_now(data, tmp / "now")
    import polars as pl

    tx = pl.read_parquet(data / "transactions.parquet", columns=["user_id", "merchant_id"])
    # the users with the most history get the most traffic, as in production
    users = tx.group_by("user_id").len().sort(["len", "user_id"], descending=[True, False])["user_id"].to_list()
    merchants = tx["merchant_id"].unique().sort().to_list()
    for per in (1, 100):
        write_bodies(tmp / f"bodies_{per}.txt", users, per, 20_000 if per == 1 else 2_000, seed=per)
    state = tmp / "state"
    print(f"starting astra serve over {data} ...", flush=True)
    server = Server(data, state, tmp / "serve.log", args.serve_arg, args.start_timeout)
    print(f"ready after {server.ready_after:.1f} s on port {server.port}; cores: {os.cpu_count()}", flush=True)
    intervals: list[dict] = []
    pusher = Pusher(server.port, users, merchants, args.push_rate, args.push_batch)
    try:
        pusher.start()
        warm = [start_wrk(server.port, tmp / f"bodies_{per}.txt", c, max(1, int(args.warmup)), tmp)
                for per, c in ((1, args.conns1), (100, args.conns100)) if c]
        for w in warm:
            wrk_result(w, int(args.warmup))
        pusher.take()
        start = time.monotonic()
        n = max(1, round(args.minutes * 60 / args.interval))
        print(f"soak: {n} intervals of {args.interval} s; reads 1 entity x {args.conns1} conns + 100 entities x "
              f"{args.conns100} conns; pushes {args.push_rate:g} rows/s in {args.push_batch}-row batches\n",
              flush=True)
        print(header(), flush=True)
        for _ in range(n):
            t0 = time.monotonic()
            procs = {per: start_wrk(server.port, tmp / f"bodies_{per}.txt", c, int(args.interval), tmp)
                     for per, c in ((1, args.conns1), (100, args.conns100)) if c}
            reads = {per: wrk_result(p, int(args.interval)) for per, p in procs.items()}
            span = time.monotonic() - t0
            pushes = pusher.take()
            lat = [p[0] * 1e3 for p in pushes]
            try:
                pid = server.worker()
                m = server.metrics()
            except OSError as exc:
                pid, m = -1, {}
                print(f"  (server did not answer a probe: {exc})", flush=True)
            iv = {"t": round(time.monotonic() - start, 1), "reads": reads,
                  "push": {"rows_per_s": sum(p[1] for p in pushes) / span if span else 0.0,
                           "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                           "max": max(lat) if lat else float("nan"), "errors": sum(p[2] for p in pushes),
                           "pushes": len(pushes)},
                  "rss": rss_bytes(pid) if pid > 0 else float("nan"), "worker": pid,
                  "store_bytes": m.get("astra_store_bytes", float("nan")),
                  "respawns": m.get("astra_worker_respawns_total", 0.0)}
            intervals.append(iv)
            print(line(iv), flush=True)
            if server.proc.poll() is not None:
                print(f"astra serve exited with {server.proc.returncode}", flush=True)
                break
    finally:
        pusher.stop_flag.set()
        pusher.join(timeout=60)
        server.stop()
    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "data": str(data), "intervals": intervals, "push_error": pusher.first_error}
    result.update(summarize(intervals, args.interval))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp} (server log: {tmp / 'serve.log'})")
    return result


def dated_to_now(src: Path, dst: Path) -> Path:
    """A copy of the data directory with every time column moved by one offset, so its newest
    transaction lands a second before the wall clock.  The soak reads "now": over data that ended
    months ago every window would start empty and fill during the run, and the first minute would
    measure an empty store rather than a serving one."""
    import polars as pl

    newest = pl.scan_parquet(src / "transactions.parquet").select(pl.col("ts").max()).collect().item()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)  # the data's times are UTC
    shift = now - dt.timedelta(seconds=1) - newest
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.parquet")):
        df = pl.read_parquet(f)
        times = [c for c, t in df.schema.items() if isinstance(t, pl.Datetime)]
        df.with_columns(pl.col(c) + shift for c in times).write_parquet(dst / f.name)
    return dst


def header() -> str:
    return (f"{'t s':>6} | {'1 entity: req/s':>15} {'p50':>6} {'p99':>6} {'max':>7} {'err':>4} | "
            f"{'100 entities: req/s':>19} {'p50':>6} {'p99':>6} {'max':>7} {'err':>4} | "
            f"{'push rows/s':>11} {'p50':>6} {'p99':>6} {'max':>7} {'err':>4} | {'RSS MiB':>8} {'store MiB':>9}\n"
            + "-" * 160)


def _r(r: dict | None) -> str:
    if r is None:
        return f"{'-':>15} {'-':>6} {'-':>6} {'-':>7} {'-':>4}"
    return f"{r['rps']:>15.0f} {r['p50']:>6.2f} {r['p99']:>6.2f} {r['max']:>7.1f} {r['errors']:>4d}"


def line(iv: dict) -> str:
    p = iv["push"]
    return (f"{iv['t']:>6.0f} | {_r(iv['reads'].get(1))} | {_r(iv['reads'].get(100)):>35} | "
            f"{p['rows_per_s']:>11.0f} {p['p50']:>6.2f} {p['p99']:>6.2f} {p['max']:>7.1f} {p['errors']:>4d} | "
            f"{iv['rss'] / 2**20:>8.1f} {iv['store_bytes'] / 2**20:>9.1f}")


def _minute(intervals: list[dict], last: bool, interval: float) -> list[dict]:
    k = max(1, round(60 / interval))
    return intervals[-k:] if last else intervals[:k]


def _weighted(ivs: list[dict], per: int, key: str) -> float:
    rs = [iv["reads"][per] for iv in ivs if per in iv["reads"]]
    total = sum(r["requests"] for r in rs)
    return sum(r[key] * r["requests"] for r in rs) / total if total else float("nan")


def summarize(intervals: list[dict], interval: float) -> dict:
    """Slopes per minute and the goal checks."""
    if not intervals:
        return {"slopes": {}, "checks": {}, "passed": False}
    ts = [iv["t"] / 60 for iv in intervals]
    series = {}
    for per in (1, 100):
        if per in intervals[0]["reads"]:
            for key in ("rps", "p50", "p99", "max"):
                series[f"reads {per}: {key}"] = [iv["reads"][per][key] for iv in intervals]
    for key in ("rows_per_s", "p50", "p99", "max"):
        series[f"push: {key}"] = [iv["push"][key] for iv in intervals]
    series["RSS MiB"] = [iv["rss"] / 2**20 for iv in intervals]
    series["store MiB"] = [iv["store_bytes"] / 2**20 for iv in intervals]
    slopes = {name: slope(ts, ys) for name, ys in series.items()}
    first, last = _minute(intervals, False, interval), _minute(intervals, True, interval)
    checks = {}
    for per in (1, 100):
        if per not in intervals[0]["reads"]:
            continue
        p_first, p_last = _weighted(first, per, "p99"), _weighted(last, per, "p99")
        checks[f"p99 {per} entit{'y' if per == 1 else 'ies'}: last minute <= 1.2x first"] = (
            p_last <= 1.2 * p_first, f"{p_first:.2f} -> {p_last:.2f} ms ({p_last / p_first:.2f}x)")
        t_first = sum(iv["reads"][per]["rps"] for iv in first) / len(first)
        t_last = sum(iv["reads"][per]["rps"] for iv in last) / len(last)
        checks[f"throughput {per} entit{'y' if per == 1 else 'ies'}: last minute within 10% of first"] = (
            abs(t_last / t_first - 1) <= 0.10, f"{t_first:.0f} -> {t_last:.0f} req/s ({t_last / t_first - 1:+.1%})")
    rss = (intervals[-1]["rss"] - intervals[0]["rss"]) / 2**20
    store = (intervals[-1]["store_bytes"] - intervals[0]["store_bytes"]) / 2**20
    checks["RSS growth <= 1.5x store growth + 32 MiB (retained data only)"] = (
        rss <= 1.5 * max(store, 0.0) + 32, f"RSS {rss:+.1f} MiB, store {store:+.1f} MiB")
    errors = sum(r["errors"] for iv in intervals for r in iv["reads"].values())
    push_errors = sum(iv["push"]["errors"] for iv in intervals)
    checks["0 errors (reads and pushes)"] = (errors == 0 and push_errors == 0,
                                             f"{errors} read errors, {push_errors} failed pushes")
    respawns = intervals[-1]["respawns"]
    workers = {iv["worker"] for iv in intervals}
    checks["no worker respawn"] = (respawns == 0 and len(workers) == 1, f"{respawns:.0f} respawns")
    return {"slopes": slopes, "checks": {k: {"ok": ok, "detail": d} for k, (ok, d) in checks.items()},
            "passed": all(ok for ok, _ in checks.values())}


def report(result: dict) -> None:
    ivs = result["intervals"]
    if not ivs:
        print("no interval completed")
        return
    print(f"\nslopes per minute (least squares over {len(ivs)} intervals; first -> last interval):")
    for name, s in result["slopes"].items():
        key = name.split(": ")[-1]
        unit = "ms" if key in ("p50", "p99", "max") else ("req/s" if key == "rps" else
                                                         "rows/s" if key == "rows_per_s" else "")
        print(f"  {name:<20} {s:>+10.3f} {unit}/min")
    print("\ngoal checks (issue 22):")
    if len(ivs) * result["config"]["interval"] < 120:
        print("  (a run under 2 minutes compares a minute with itself: the p99 and throughput checks say "
              "nothing; run --minutes 30 for the measurement)")
    for name, c in result["checks"].items():
        print(f"  [{'PASS' if c['ok'] else 'FAIL'}] {name}: {c['detail']}")
    if result.get("push_error"):
        print(f"  first push error: {result['push_error']}")
    print(f"\n{'all goals met' if result['passed'] else 'some goals not met'} "
          f"(times in ms; on a shared machine compare ratios, not absolutes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=30.0, help="seconds per measured interval")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds of load before the first interval")
    ap.add_argument("--push-rate", type=float, default=500.0, help="pushed rows per second")
    ap.add_argument("--push-batch", type=int, default=50, help="rows per push")
    ap.add_argument("--conns1", type=int, default=12, help="connections sending single-entity requests")
    ap.add_argument("--conns100", type=int, default=4, help="connections sending 100-entity requests")
    ap.add_argument("--data", type=Path, default=None,
                    help="source files of the demo project (default: demo data generated in a temp dir)")
    ap.add_argument("--events", type=int, default=200_000, help="events of the generated demo data")
    ap.add_argument("--users", type=int, default=5_000, help="users of the generated demo data")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="an extra `astra serve` argument (repeat; e.g. --serve-arg=--cache-size=0)")
    ap.add_argument("--start-timeout", type=float, default=1800.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the intervals, slopes and checks here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, state, server log)")
    args = ap.parse_args()
    if args.interval < 2 or args.minutes <= 0 or args.push_rate <= 0 or args.push_batch < 1:
        ap.error("--interval must be >= 2 s, --minutes, --push-rate and --push-batch positive")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get update && apt-get install -y wrk")
    result = run(args)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
        print(f"wrote {args.json}")
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
