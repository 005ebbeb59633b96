#!/usr/bin/env python3
"""Vector index benchmark: N x DIM float32 vectors (default 1,000,000 x 128), k = 10.

For astra's exact and HNSW index it reports build time, single-query latency in process (p50/p99),
a batch of 1,000 queries (and 10 and 100, to show the cost per query stays flat), recall@10 against
brute force, and memory against the raw vectors (`memory_bytes` / `raw_bytes`).  Peers in the same
run: numpy brute force (a blocked matrix product and argpartition, written here in a few lines; it is
also the ground truth), faiss `IndexFlatL2` (exact), and faiss `IndexHNSWFlat` searched directly on the
very graph astra built (so the difference is astra's own overhead: visibility, re-ranking, keys);
with `--faiss-build` faiss builds its own graph (same M, efConstruction, vectors) and its build time
is printed beside astra's.

Data (`--data`): `clustered` (default; 1,000 Gaussian clusters, like embeddings of related items) or
`gaussian` (no structure at all, the hardest case for graph search); queries are fresh draws.

Run it under `flock /tmp/astra-bench.lock` (the machine is shared), at a reduced size while others
use the cores:  uv run python bench/vectors.py --n 100000

`--http` measures `POST /v1/neighbors` instead: a project declaring an exact and an hnsw index over
an N x DIM snapshot (`--n`, e.g. 20000) is served by a real `astra serve` on loopback, and single
queries over one keep-alive connection (p50/p99, JSON encoding and the server's parsing included)
are printed beside the same searches in process.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from astra.vectors import HnswParams, VectorIndex


def make_data(kind: str, n: int, dim: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return (rng.standard_normal((n, dim), dtype=np.float32),
                rng.standard_normal((queries, dim), dtype=np.float32))
    centres = rng.standard_normal((1000, dim), dtype=np.float32) * 3
    def draw(count):
        out = centres[rng.integers(0, len(centres), count)]
        out += rng.standard_normal((count, dim), dtype=np.float32)
        return out
    return draw(n), draw(queries)


def brute_force(x: np.ndarray, norms: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """numpy peer: squared euclidean by |x|^2 - 2 q.x (|q|^2 does not change the order), blocks of rows."""
    best_d = np.full((len(q), k), np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), k), dtype=np.int64)
    step = max(1024, (64 << 20) // (4 * max(1, len(q))))
    for s in range(0, len(x), step):
        d = norms[s:s + step][None, :] - 2 * (q @ x[s:s + step].T)
        pick = np.argpartition(d, min(k, d.shape[1]) - 1, axis=1)[:, :k]
        both_d = np.concatenate([best_d, np.take_along_axis(d, pick, 1)], axis=1)
        both_i = np.concatenate([best_i, pick + s], axis=1)
        pick = np.argpartition(both_d, k - 1, axis=1)[:, :k]
        best_d, best_i = np.take_along_axis(both_d, pick, 1), np.take_along_axis(both_i, pick, 1)
    order = np.argsort(best_d, axis=1)
    return np.take_along_axis(best_i, order, 1)


def latencies(fn, queries: np.ndarray) -> np.ndarray:
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        fn(q)
        out[i] = time.perf_counter() - t0
    return out * 1e3


def recall(found, truth: np.ndarray) -> float:
    return float(np.mean([len(set(map(int, f)) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def line(name: str, **fields) -> None:
    shown = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
    print(f"{name:<22} {shown}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--queries", type=int, default=1000, help="single queries timed (HNSW and faiss HNSW)")
    ap.add_argument("--exact-queries", type=int, default=50, help="single queries timed on the exact paths")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--data", choices=("clustered", "gaussian"), default="clustered")
    ap.add_argument("--m", type=int, default=HnswParams().m)
    ap.add_argument("--ef-construction", type=int, default=HnswParams().ef_construction)
    ap.add_argument("--ef-search", type=int, default=HnswParams().ef_search)
    ap.add_argument("--threads", type=int, default=1, help="faiss OpenMP and BLAS threads (1: a fair single core)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-hnsw", action="store_true", help="skip the HNSW builds (they dominate the run time)")
    ap.add_argument("--faiss-build", action="store_true",
                    help="also build the faiss peer's graph itself (same M, efConstruction, vectors; doubles the HNSW "
                    "build time) to compare build times; without it the peer searches astra's graph")
    ap.add_argument("--http", action="store_true", help="time POST /v1/neighbors on a real `astra serve` instead")
    args = ap.parse_args()
    if args.http:
        http_bench(args)
        return

    import faiss

    # one thread per engine by default, numpy's BLAS included: peers compared on equal footing, and a shared
    # machine's other work does not stall a multi-threaded BLAS
    faiss.omp_set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:  # without it numpy's BLAS keeps its own thread count (set OPENBLAS_NUM_THREADS)
        pass
    k, n, dim = args.k, args.n, args.dim
    x, queries = make_data(args.data, n, dim, max(args.queries, args.batch), args.seed)
    keys, times = np.arange(n), np.zeros(n, dtype=np.int64)
    raw = x.nbytes
    print(f"# {n:,} x {dim} float32 ({args.data}), k={k}, raw {raw / 2**20:,.1f} MiB, faiss threads {args.threads}")

    norms = np.einsum("ij,ij->i", x, x)
    batch = queries[: args.batch]
    t0 = time.perf_counter()
    truth = brute_force(x, norms, batch, k)
    t_np_batch = time.perf_counter() - t0
    single = latencies(lambda q: brute_force(x, norms, q[None, :], k), queries[: args.exact_queries])
    line("numpy brute force", p50_ms=np.percentile(single, 50), p99_ms=np.percentile(single, 99),
         batch_s=t_np_batch, per_query_ms=t_np_batch / len(batch) * 1e3)

    flat = faiss.IndexFlatL2(dim)
    t0 = time.perf_counter()
    flat.add(x)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, flat_ids = flat.search(batch, k)
    t_batch = time.perf_counter() - t0
    single = latencies(lambda q: flat.search(q[None, :], k), queries[: args.exact_queries])
    line("faiss IndexFlatL2", build_s=t_build, p50_ms=np.percentile(single, 50), p99_ms=np.percentile(single, 99),
         batch_s=t_batch, recall=recall(flat_ids, truth))
    flat = None  # free its copy of the vectors

    exact = VectorIndex(dim, "euclidean", "exact")
    t0 = time.perf_counter()
    exact.insert(keys, x, times)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = exact.search(batch, k=k)
    t_batch = time.perf_counter() - t0
    single = latencies(lambda q: exact.search(q, k=k), queries[: args.exact_queries])
    line("astra exact", build_s=t_build, p50_ms=np.percentile(single, 50), p99_ms=np.percentile(single, 99),
         batch_s=t_batch, recall=recall(got.keys, truth), memory_x_raw=exact.memory_bytes() / raw)
    for size in (10, 100, len(batch)):
        t0 = time.perf_counter()
        exact.search(batch[:size], k=k)
        line(f"  exact batch {size}", per_query_ms=(time.perf_counter() - t0) / size * 1e3)
    exact = None

    if args.no_hnsw:
        return
    params = HnswParams(m=args.m, ef_construction=args.ef_construction, ef_search=args.ef_search)
    graph = VectorIndex(dim, "euclidean", "hnsw", hnsw_params=params)
    t0 = time.perf_counter()
    graph.insert(keys, x, times)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = graph.search(batch, k=k)
    t_batch = time.perf_counter() - t0
    single = latencies(lambda q: graph.search(q, k=k), queries[: args.queries])
    line("astra hnsw", build_s=t_build, p50_ms=np.percentile(single, 50), p99_ms=np.percentile(single, 99),
         batch_s=t_batch, recall=recall(got.keys, truth), memory_x_raw=graph.memory_bytes() / raw,
         M=params.m, efC=params.ef_construction, efS=params.ef_search)
    for size in (10, 100, len(batch)):
        t0 = time.perf_counter()
        graph.search(batch[:size], k=k)
        line(f"  hnsw batch {size}", per_query_ms=(time.perf_counter() - t0) / size * 1e3)

    raw_graph, t_build = graph.graph, None  # faiss used directly, same graph, same efSearch
    if args.faiss_build:  # its own graph, built as faiss builds it: astra's build time against faiss's
        raw_graph = faiss.IndexHNSWFlat(dim, params.m, faiss.METRIC_L2)
        raw_graph.hnsw.efConstruction = params.ef_construction
        t0 = time.perf_counter()
        raw_graph.add(x)
        t_build = time.perf_counter() - t0
    raw_graph.hnsw.efSearch = params.ef_search
    t0 = time.perf_counter()
    _, ids = raw_graph.search(batch, k)
    t_batch = time.perf_counter() - t0
    single = latencies(lambda q: raw_graph.search(q[None, :], k), queries[: args.queries])
    built = {} if t_build is None else {"build_s": t_build}
    line("faiss IndexHNSWFlat", **built, p50_ms=np.percentile(single, 50), p99_ms=np.percentile(single, 99),
         batch_s=t_batch, recall=recall(ids, truth))


def http_bench(args) -> None:
    """p50/p99 of `POST /v1/neighbors` (one keep-alive loopback connection) beside the in-process search."""
    import http.client

    import polars as pl

    k, n, dim = args.k, args.n, args.dim
    x, queries = make_data(args.data, n, dim, args.queries, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "p").mkdir()
        (root / "p" / "p.feat").write_text(
            "entity item { key item_id: int64 }\n"
            "snapshot items for item {\n  path \"items.parquet\"\n  time ts\n"
            f"  columns {{ item_id: int64  emb: vector<float32, {dim}>? }}\n}}\n"
            "index exact_l2 v1 on items.emb { metric euclidean; kind exact }\n"
            "index hnsw_l2 v1 on items.emb { metric euclidean; kind hnsw; "
            f"m {args.m}; ef_construction {args.ef_construction}; ef_search {args.ef_search} }}\n")
        pl.DataFrame({"item_id": np.arange(n, dtype=np.int64), "ts": pl.Series(np.zeros(n, np.int64))
                      .cast(pl.Datetime("us")), "emb": pl.Series(x, dtype=pl.Array(pl.Float32, dim))}) \
            .write_parquet(root / "items.parquet")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with (root / "serve.log").open("wb") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "astra.cli.main", "serve", str(root / "p"), "--data-root",
                                     str(root), "--state", str(root / "state"), "--port", str(port), "--access-log",
                                     "off"], stdout=log, stderr=subprocess.STDOUT)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                while True:
                    if proc.poll() is not None:
                        raise SystemExit(f"astra serve exited:\n{(root / 'serve.log').read_text()[-2000:]}")
                    try:
                        conn.request("GET", "/readyz")
                        r = conn.getresponse()
                        r.read()
                        if r.status == 200:
                            break
                        time.sleep(0.2)
                    except OSError:
                        conn.close()
                        time.sleep(0.2)
                print(f"# --http: {n:,} x {dim} float32 ({args.data}), k={k}; server ready (materialized, both "
                      f"indexes built) in {time.perf_counter() - t0:.1f} s; loopback, one keep-alive connection")
                for name in ("exact_l2", "hnsw_l2"):
                    def ask(q, name=name):
                        body = json.dumps({"index": name, "version": 1, "vector": q.tolist(), "k": k})
                        conn.request("POST", "/v1/neighbors", body=body, headers={"content-type": "application/json"})
                        r = conn.getresponse()
                        payload = r.read()
                        if r.status != 200:
                            raise SystemExit(f"{name}: HTTP {r.status}: {payload[:300]!r}")
                    ask(queries[0])  # warm up
                    took = latencies(ask, queries[: args.queries])
                    line(f"http {name}", p50_ms=np.percentile(took, 50), p99_ms=np.percentile(took, 99),
                         queries=len(took))
                conn.close()
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    for kind in ("exact", "hnsw"):
        index = VectorIndex(dim, "euclidean", kind, hnsw_params=HnswParams(
            m=args.m, ef_construction=args.ef_construction, ef_search=args.ef_search))
        index.insert(np.arange(n), x, np.zeros(n, dtype=np.int64))
        took = latencies(lambda q, index=index: index.search(q, k=k), queries[: args.queries])
        line(f"in-process {kind}", p50_ms=np.percentile(took, 50), p99_ms=np.percentile(took, 99), queries=len(took))


if __name__ == "__main__":
    main()
