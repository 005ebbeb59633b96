#!/usr/bin/env python3
""""k nearest at t" backfill benchmark: `astra backfill --neighbors` against a numpy peer.

A snapshot of N keys x DIM float32 vectors (clustered; default 100,000 x 64) written at random
times over ten days, then UPDATES new versions (a new vector, 1 in 100 a delete) over the next
thirty days; a spine of Q rows (default 5,000): random keys at random times over the forty days,
k = 10, euclidean.  astra: `astra.offline.neighbors.nearest` (reading the file, building the index,
searching), timed whole.  Peer in the same run: the plain numpy reading of the rules, written
here, that searches each distinct spine time apart (the visible versions by a mask, float64
distances to every row by one matrix product, the k smallest other keys).  Both answers are compared: the
same keys, distances within 1e-9 relative.

Run alone (the machine is shared):  flock /tmp/astra-bench.lock uv run python bench/nearest_at_t.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

DAY = 86_400_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01
PROJECT = """
entity item {{ key item_id: int64 }}
snapshot items for item {{
    path "items.parquet"
    time ts
    columns {{ item_id: int64  emb: vector<float32, {dim}>? }}
}}
index near v1 on items.emb {{ metric euclidean }}
"""


def make(n: int, dim: int, updates: int, queries: int, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(n // 100, 1), dim), dtype=np.float32) * 3
    rows = n + updates
    vecs = centres[rng.integers(0, len(centres), rows)] + rng.standard_normal((rows, dim), dtype=np.float32)
    keys = np.concatenate([np.arange(n), rng.integers(0, n, updates)])
    times = np.concatenate([T0 + rng.integers(0, 10 * DAY, n), T0 + 10 * DAY + rng.integers(0, 30 * DAY, updates)])
    alive = np.ones(rows, bool)
    alive[n:] = rng.random(updates) >= 0.01
    q_keys = rng.integers(0, n, queries)
    q_times = T0 + rng.integers(0, 40 * DAY, queries)
    return keys, times, vecs, alive, q_keys, q_times


def peer(keys, times, vecs, alive, q_keys, q_times, k: int):
    """numpy: per distinct spine time, the versions visible then (each key's latest row strictly
    before it, if not a delete), the query key's own among them, distances, the k+1 smallest."""
    order = np.argsort(times, kind="stable")
    keys, times, vecs, alive = keys[order], times[order], vecs[order].astype(np.float64), alive[order]
    # a row's version ends at the key's next row (the later of equal times wins)
    nxt = np.full(len(keys), np.iinfo(np.int64).max)
    by_key = np.lexsort((np.arange(len(keys)), keys))
    same = keys[by_key][1:] == keys[by_key][:-1]
    nxt[by_key[:-1][same]] = times[by_key[1:][same]]
    out_keys = np.full((len(q_keys), k), -1, np.int64)
    out_d = np.full((len(q_keys), k), np.nan)
    has = np.zeros(len(q_keys), bool)
    norms = (vecs * vecs).sum(axis=1)
    uniq, inverse = np.unique(q_times, return_inverse=True)
    groups = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    for t, members in zip(uniq.tolist(), groups):
        visible = (times < t) & (t <= nxt) & alive
        own = {int(key): int(r) for key, r in zip(keys[visible].tolist(), np.flatnonzero(visible).tolist())}
        rows = [own.get(int(q_keys[j]), -1) for j in members.tolist()]
        asked = [(j, r) for j, r in zip(members.tolist(), rows) if r >= 0]
        if not asked:
            continue
        qv = vecs[[r for _, r in asked]]
        # |x - q|^2 = |x|^2 - 2 x.q + |q|^2 over every row, the invisible ones and the key itself masked out
        d2 = norms[None, :] - 2 * (qv @ vecs.T) + norms[[r for _, r in asked]][:, None]
        d2[:, ~visible] = np.inf
        for i, (j, r) in enumerate(asked):
            d2[i, keys == keys[r]] = np.inf
            take = min(k, int(visible.sum()) - 1)
            best = np.argpartition(d2[i], take)[:take] if take < d2.shape[1] else np.arange(take)
            best = best[np.lexsort((keys[best], d2[i][best]))]
            has[j] = True
            out_keys[j, :take] = keys[best]
            # the exact distances of the chosen rows, as astra reports them (float64, rounded once)
            out_d[j, :take] = np.sqrt(((vecs[best] - vecs[r]) ** 2).sum(axis=1))
    return out_keys, out_d, has


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--updates", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=5_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from astra.offline.neighbors import nearest
    from astra.project import load_project

    keys, times, vecs, alive, q_keys, q_times = make(args.n, args.dim, args.updates, args.queries, args.seed)
    work = Path(tempfile.mkdtemp(prefix="astra-nn-"))
    (work / "p.feat").write_text(PROJECT.format(dim=args.dim))
    emb = pl.Series(vecs.tolist(), dtype=pl.Array(pl.Float32, args.dim))
    emb = pl.select(pl.when(pl.Series(alive)).then(emb)).to_series().alias("emb")
    pl.DataFrame({"item_id": keys, "ts": pl.Series(times).cast(pl.Datetime("us")), "emb": emb}
                 ).write_parquet(work / "items.parquet")
    spine = pl.DataFrame({"item_id": q_keys, "ts": pl.Series(q_times).cast(pl.Datetime("us"))})
    plan = load_project(work, allow_unlocked=True).plan

    ours, theirs = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        got = nearest(plan, "near@v1", spine, work, k=args.k)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        p_keys, p_d, has = peer(keys, times, vecs, alive, q_keys, q_times, args.k)
        theirs.append(time.perf_counter() - t)

    a_keys, a_d = got["near_neighbors"], got["near_distances"]
    same = (a_keys.is_null().to_numpy() == ~has).all()
    for j in np.flatnonzero(has)[:5000].tolist():
        want = p_keys[j][p_keys[j] >= 0].tolist()
        same &= a_keys[j].to_list() == want
        same &= np.allclose(a_d[j].to_list(), p_d[j][: len(want)], rtol=1e-9, atol=0)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"cores {len(__import__('os').sched_getaffinity(0))}; {args.n:,} keys x {args.dim} + {args.updates:,} "
          f"updates; spine {args.queries:,} rows ({np.unique(q_times).size:,} distinct times), k={args.k}; "
          f"median of {args.repeat}")
    print(f"astra nearest (read + build + search): {a:.2f} s")
    print(f"numpy peer (search only):              {b:.2f} s")
    print(f"ratio astra / peer: {a / b:.2f}x   answers equal (first 5,000 rows with a vector): {bool(same)}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
