"""Fits of `metric mahalanobis` indexes: the covariance of the indexed vectors, frozen into the plan.

`astra fit PROJECT --index NAME@vN` reads the index's source file as the store reads it to build the
index, takes the sample covariance (float64, `n - 1` in the denominator) of every non-null vector in
it (every row, superseded versions included) and writes it as a content-addressed artifact
`fits/<id>.json`, pinned in astra.lock under `fits` as `index:NAME@vN`.  Loading the project binds it
(`bind_indexes`): the index's `covariance` holds the d x d matrix (row-major) and its fingerprint
covers the fit id, so a refit rebuilds the index of a restored store.  An index declared
`mahalanobis` without a current fit is built by nothing: searches answer that it is not built,
naming the command (`unfitted_reason`).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from astra.plan import ir
from astra.plan.fingerprint import digest
from astra.plan.fit import FitError, read_artifact, recorded_fits

LOCK_PREFIX = "index:"  # index fits share the lock's `fits` object with services, apart by this prefix
FORMAT = 1


def lock_key(x: ir.VectorIndex) -> str:
    return LOCK_PREFIX + x.id


def needs_fit(x: ir.VectorIndex) -> bool:
    return x.metric == "mahalanobis"


def unfitted_reason(x: ir.VectorIndex) -> str:
    return (f"index {x.id} uses metric mahalanobis but no current fit of it is recorded in astra.lock; run "
            f"`astra fit PROJECT --index {x.id} --data-root DIR`")


def fit_index(plan: ir.Plan, x: ir.VectorIndex, data_root: str | Path) -> dict:
    """The artifact of a mahalanobis index's fit over its source file; `FitError` when there is
    nothing to fit or the file cannot be read (a `DataError` from the reader passes through)."""
    import numpy as np

    from astra.online import ingest
    from astra.online.indexes import key_columns
    from astra.ops.vectors import unpack
    from astra.vectors import VectorError, mahalanobis
    from astra.vectors.metrics import MAHALANOBIS_MAX_DIM

    if not needs_fit(x):
        raise FitError(f"index {x.id} uses metric {x.metric}, which has nothing to fit (only a mahalanobis "
                       "index is fitted)")
    if x.dim > MAHALANOBIS_MAX_DIM:
        raise FitError(f"index {x.id} has {x.dim:,} dimensions; a mahalanobis fit takes at most "
                       f"{MAHALANOBIS_MAX_DIM:,}")
    src = plan.source(x.source)
    _, cols, _ = ingest.read_source(src, data_root, {x.column}, set(key_columns(plan, x)))
    vec = cols[x.column]
    rows = unpack(vec.values)[vec.valid].astype(np.float64)
    if len(rows) < 2:
        raise FitError(f"index {x.id}: `{src.name}.{x.column}` holds {len(rows)} non-null vector(s); a covariance "
                       "needs at least 2")
    cov = np.atleast_2d(np.cov(rows, rowvar=False))
    if not np.isfinite(cov).all():
        raise FitError(f"index {x.id}: the covariance of `{src.name}.{x.column}` overflows float64")
    try:
        mahalanobis(cov)  # the metric the index will build from it (a zero covariance has none)
    except VectorError as exc:
        raise FitError(f"index {x.id}: cannot fit the vectors of `{src.name}.{x.column}`: {exc}") from None
    from astra.plan.indexes import index_fingerprint

    return {"format": FORMAT, "index": x.id, "index_fingerprint": index_fingerprint(plan, x), "dim": x.dim,
            "covariance": cov.ravel().tolist(), "training": {"source": src.name, "vectors": len(rows)}}


def check_artifact(plan: ir.Plan, x: ir.VectorIndex, artifact: dict) -> tuple[float, ...]:
    """The covariance a recorded fit gives `x`, or `FitError` saying why it does not fit (the fit
    is of the declaration: its memory limit may change)."""
    from astra.plan.indexes import index_fingerprint

    if artifact.get("index") != x.id:
        raise FitError(f"the fit recorded for index {x.id} is of `{artifact.get('index')}`")
    if artifact.get("index_fingerprint") != index_fingerprint(plan, x):
        raise FitError(f"the fit of index {x.id} is stale: it was made for another declaration; run "
                       f"`astra fit PROJECT --index {x.id}` again")
    cov = artifact.get("covariance")
    if artifact.get("dim") != x.dim or not isinstance(cov, list) or len(cov) != x.dim * x.dim \
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in cov):
        raise FitError(f"the fit of index {x.id} does not hold a {x.dim} x {x.dim} covariance; run `astra fit` again")
    return tuple(float(v) for v in cov)


def bind_indexes(plan: ir.Plan, root: Path) -> tuple[ir.Plan, tuple[str, ...]]:
    """The plan with every mahalanobis index's recorded fit bound, and notes on fits that could not
    be (missing, stale): those indexes stay unfitted, and nothing builds them."""
    if not plan.indexes or not any(needs_fit(x) for x in plan.indexes):
        return plan, ()
    fits, notes, out = recorded_fits(root), [], []
    for x in plan.indexes:
        entry = fits.get(lock_key(x)) if needs_fit(x) and x.covariance is None else None
        if entry is not None:
            try:
                cov = check_artifact(plan, x, read_artifact(root, entry["id"]))
                x = attrs.evolve(x, covariance=cov, fingerprint=digest([x.fingerprint, entry["id"]]))
            except FitError as err:
                notes.append(str(err))
        out.append(x)
    return attrs.evolve(plan, indexes=tuple(out)), tuple(notes)
