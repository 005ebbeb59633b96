#!/usr/bin/env python3
"""Reading a sparse vector column against reading the same vectors written densely.

Writes one snapshot source twice (--rows rows of `vector<float32, --dim>` with --nnz non-zero
elements each, at random indices in random order): as index/value structs and as fixed-size
arrays.  Times `astra.io.load_source` on each (the read every engine's ingest goes through, with
its checks), and, as a peer, a plain NumPy scatter of the sparse file's flat Arrow buffers with no
checks at all: median of --repeat runs each, in one process, one after another.  The dense frames
must be equal.

Usage: uv run python bench/sparse_vectors.py [--rows N] [--dim D] [--nnz K] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astra import io
from astra.lang.types import Type
from astra.plan import ir


def source(path: str, dim: int) -> ir.Source:
    return ir.Source(name="items", kind="snapshot", path=path, time="ts", entities=("item",),
                     keys=(ir.SourceKey(source="items", columns=("item_id",)),),
                     columns=(("item_id", Type("int64")), ("emb", Type.vector(dim, optional=True))))


def peer(path: Path, dim: int) -> np.ndarray:
    """The scatter alone: Arrow's flat index and value buffers into a zeroed matrix."""
    col = pq.read_table(path, columns=["emb"]).column("emb").combine_chunks()
    idx, vals = col.field("indices"), col.field("values")
    rows = np.repeat(np.arange(len(col)), np.diff(idx.offsets.to_numpy()))
    out = np.zeros((len(col), dim), np.float32)
    out[rows, idx.values.to_numpy()] = vals.values.to_numpy()
    return out


def median_time(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=1_000)
    ap.add_argument("--nnz", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    idx = np.argsort(rng.random((a.rows, a.dim)), axis=1)[:, :a.nnz].astype(np.int32)  # distinct, any order
    vals = rng.normal(size=(a.rows, a.nnz)).astype(np.float32)
    dense = np.zeros((a.rows, a.dim), np.float32)
    np.put_along_axis(dense, idx.astype(np.int64), vals, axis=1)
    ts = pl.Series(np.full(a.rows, 1_767_225_600_000_000)).cast(pl.Datetime("us"))
    with tempfile.TemporaryDirectory() as tmp:
        sparse_col = pl.Series("emb", [{"indices": i, "values": v} for i, v in zip(idx.tolist(), vals.tolist())],
                               dtype=pl.Struct({"indices": pl.List(pl.Int32), "values": pl.List(pl.Float32)}))
        pl.DataFrame({"item_id": np.arange(a.rows), "ts": ts, "emb": sparse_col}).write_parquet(f"{tmp}/sparse.parquet")
        pl.DataFrame({"item_id": np.arange(a.rows), "ts": ts,
                      "emb": pl.Series(dense, dtype=pl.Array(pl.Float32, a.dim))}).write_parquet(f"{tmp}/dense.parquet")
        sizes = {k: os.path.getsize(f"{tmp}/{k}.parquet") for k in ("sparse", "dense")}

        def read(kind: str) -> pl.DataFrame:
            return io.load_source(source(f"{kind}.parquet", a.dim), tmp, {"emb"}, {"item_id"})

        assert read("sparse")["emb"].equals(read("dense")["emb"]), "the two forms must read the same vectors"
        assert np.array_equal(peer(Path(tmp) / "sparse.parquet", a.dim), dense)
        t_sparse = median_time(lambda: read("sparse"), a.repeat)
        t_dense = median_time(lambda: read("dense"), a.repeat)
        t_peer = median_time(lambda: peer(Path(tmp) / "sparse.parquet", a.dim), a.repeat)
    print(f"{a.rows:,} rows x {a.dim:,} dims, {a.nnz} non-zero each; {os.cpu_count()} cores; median of {a.repeat}")
    print(f"  file size: sparse {sizes['sparse'] / 2**20:.1f} MiB, dense {sizes['dense'] / 2**20:.1f} MiB")
    print(f"  astra load_source, sparse file: {t_sparse:.3f} s")
    print(f"  astra load_source, dense file:  {t_dense:.3f} s  (sparse/dense {t_sparse / t_dense:.2f}x)")
    print(f"  peer: numpy scatter of the sparse file, no checks: {t_peer:.3f} s  (astra/peer {t_sparse / t_peer:.2f}x)")


if __name__ == "__main__":
    main()
