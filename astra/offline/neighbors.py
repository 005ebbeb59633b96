""""k nearest at t" for a spine: per row, the keys nearest to the row's key in a declared vector
index, as the index was at the row's time.

    nearest(plan, "similar_products@v1", spine, data_root, k=5)

The index is built from its source file exactly as `astra serve` builds it when it materializes
(`astra.online.indexes`: every row a version of its key, valid from its time), and each spine row
asks what `POST /v1/neighbors` with that `key` and `at` answers: the key's vector visible at `t`
(written strictly before `t`), its k nearest other keys among the versions visible at `t`, nearest
first, ties by key.  So no row sees a vector written at or after its time, and the training set
agrees with what the server answers at the same times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from astra import io
from astra.offline.errors import BackfillError
from astra.online import ingest
from astra.online.indexes import Indexes
from astra.plan import ir
from astra.vectors import VectorError
from astra.vectors.index import MAX_K

CHUNK = 1 << 14  # spine rows searched at once: bounds the query matrix and the distance blocks


def column_names(index: ir.VectorIndex) -> tuple[str, str]:
    """The two columns a spine gains: the neighbours' keys and their distances."""
    return f"{index.name}_neighbors", f"{index.name}_distances"


def nearest(plan: ir.Plan, index: str, spine: pl.DataFrame, data_root: str | Path | None, *, k: int = 10,
            time_column: str = "ts", filter: dict | None = None) -> pl.DataFrame:
    """The spine with two columns more: per row, the k keys nearest to the row's key in `index`
    (`name@vN`) at the row's time (a list, nearest first; the key itself left out) and their
    distances (a list of float64).  Both are null where the key has no vector at that time; the
    lists are shorter than k where fewer other keys are visible.  `filter` ({column: value or
    [values]}) keeps neighbours whose declared filter columns match.  Raises `BackfillError` for
    any bad input."""
    try:
        decl = plan.find_index(index)
    except ir.IndexNotFound as err:
        raise BackfillError(str(err)) from None
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or not 1 <= k < MAX_K:
        raise BackfillError(f"k must be an integer from 1 to {MAX_K - 1:,}, got {k!r}")
    names = column_names(decl)
    clash = [c for c in names if c in spine.columns]
    if clash:
        raise BackfillError(f"spine column(s) {', '.join(clash)} have the same name as the neighbour columns of "
                            f"{decl.id}; rename them in the spine")
    src = plan.source(decl.source)
    entity = plan.entity(src.entities[0])
    q_times = io.spine_times(spine, time_column)
    q_keys = io.spine_keys(spine, entity).to_series()

    built = Indexes(plan, only=(decl.id,))
    if decl.id in built.unbuilt:  # a mahalanobis index without its fit
        raise BackfillError(built.unbuilt[decl.id])
    times, cols, _ = ingest.read_source(src, data_root, built.columns(src.name), built.key_columns(src.name))
    built.ingest(src.name, times, cols)
    if decl.id in built.unbuilt:  # past its memory limit
        raise BackfillError(built.unbuilt[decl.id])
    vi = built.built[decl.id]
    try:
        vi.search_rows(np.zeros((1, decl.dim), np.float32), 1, filter=filter)  # a bad filter fails up front
    except VectorError as exc:
        raise BackfillError(f"filter of {decl.id}: {exc}") from None

    rows = vi.rows
    known = pl.DataFrame({"key": pl.Series(rows.keys, dtype=q_keys.dtype, strict=False),
                          "kid": np.arange(len(rows.keys), dtype=np.int64)})
    kid = (q_keys.rename("key").to_frame().join(known, on="key", how="left", maintain_order="left")
           ["kid"].fill_null(-1).to_numpy())
    own = rows.version_at(kid, q_times)  # the row of each query key's vector at its time, or -1

    found = np.full((len(spine), k), -1, dtype=np.int64)
    dist = np.full((len(spine), k), np.nan)
    asked = np.flatnonzero(own >= 0)
    for start in range(0, len(asked), CHUNK):
        part = asked[start:start + CHUNK]
        r, d = vi.search_rows(rows.vectors[own[part]], k + 1, at=q_times[part], filter=filter, stored=True)
        ids = np.where(r >= 0, rows.key_id[np.maximum(r, 0)], -1)
        # as POST /v1/neighbors by key: the key itself is left out, the first k others kept
        keep = (ids >= 0) & (ids != kid[part][:, None])
        first = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        taken = np.take_along_axis(keep, first, axis=1)
        found[part] = np.where(taken, np.take_along_axis(ids, first, axis=1), -1)
        dist[part] = np.where(taken, np.take_along_axis(d, first, axis=1), np.nan)
    return spine.hstack(_lists(found, dist, own >= 0, known["key"], names))


def _lists(found: np.ndarray, dist: np.ndarray, has: np.ndarray, keys: pl.Series,
           names: tuple[str, str]) -> list[pl.Series]:
    """q x k key ids and distances (-1 / NaN pad) as list columns; null where `has` is False."""
    q, k = found.shape
    flat = found.ravel()
    slot = flat >= 0
    frame = pl.DataFrame({
        "row": np.repeat(np.arange(q, dtype=np.int64), k)[slot],
        "key": keys.gather(flat[slot]),
        "distance": dist.ravel()[slot],
    })
    lists = frame.group_by("row").agg("key", "distance")
    out = (pl.DataFrame({"row": np.arange(q, dtype=np.int64), "has": has})
           .join(lists, on="row", how="left", maintain_order="left")
           .select(pl.when("has").then(pl.col("key").fill_null([])).alias(names[0]),
                   pl.when("has").then(pl.col("distance").fill_null([])).alias(names[1])))
    return out.get_columns()
