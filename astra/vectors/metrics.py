"""Distance metrics of the vector index: how vectors are stored, scanned and compared.

Every metric is a *distance*: smaller is nearer.  The index keeps each vector in the metric's stored
form (float32), which makes the scan a plain matrix product for most metrics:

* `euclidean`: the vector as given; distance `sqrt(sum((q - x)^2))`.
* `manhattan`: the vector as given; distance `sum(|q - x|)` (no matrix product: blocked differences).
* `inner_product`: the vector as given; distance `-(q . x)`, so the largest dot product is nearest.
* `cosine`: the vector divided by its norm; distance `1 - q.x / (|q| |x|)`.  A zero vector has cosine
  similarity 0 with every vector, itself included, so its cosine distance is exactly 1 (scipy gives
  NaN there).
* `mahalanobis`: the vector times a whitening matrix `W` with `W^T W = inverse(covariance)`, fitted
  from data once and frozen; distance `sqrt((q - x)^T VI (q - x))` = euclidean between whitened vectors,
  so the exact scan and HNSW both work on whitened vectors.
* a custom function (`custom(fn)`): the vector as given; `fn(query, rows)` gives the distances of one
  query to a block of rows.  The exact index only.

Two evaluations exist.  `approx` is the scan's float32 (float64 for vectors whose magnitudes would
overflow or underflow float32) block evaluation together with a bound of its rounding error;
`exact` evaluates the distance of given pairs in float64 from the stored vectors.  The exact index
uses the bound to keep every row that could be among the k nearest and ranks those by `exact`.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

from astra.vectors.errors import VectorError

_U32 = 2.0**-24  # unit roundoff of float32
_U64 = 2.0**-53
# magnitudes (squared norms, or L1 norms) outside this range are scanned in float64: their float32 products
# would overflow (float32 max 3.4e38) or fall into subnormals, where relative error bounds stop holding
_SAFE_HIGH = 1e36
_SAFE_LOW = 1e-30
MAHALANOBIS_MAX_DIM = 2048  # fitting is an eigendecomposition of a d x d covariance: d^3 work
METRIC_NAMES = ("euclidean", "manhattan", "inner_product", "cosine", "mahalanobis")


class MetricError(VectorError):
    """A metric that cannot be built (unknown name, a covariance that cannot be fitted)."""


def _gamma(dim: int, unit: float) -> float:
    # a deterministic bound of a length-d dot product's relative error is d*u; doubled for the norms and
    # the final subtraction, with slack for the cast of float64 norms to float32
    return 2.0 * (dim + 4) * unit


_TINY = {np.float32: float(np.finfo(np.float32).tiny), np.float64: float(np.finfo(np.float64).tiny)}


def _eta(dim: int, dtype) -> float:
    # absolute error from products that underflow (each at most the smallest normal number)
    return 4.0 * (dim + 4) * _TINY[dtype]


@attrs.frozen(kw_only=True)
class Metric:
    """A named metric.  `kind` selects the formulas: "l2", "l1", "ip" or "cos" (mahalanobis is "l2" on
    whitened vectors; `whitening` holds W, d x d float64)."""

    name: str
    kind: str
    whitening: np.ndarray | None = attrs.field(default=None, eq=False, repr=False)
    function: Callable | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def is_custom(self) -> bool:
        return self.function is not None

    def prepare(self, vectors: np.ndarray, dtype=np.float32) -> np.ndarray:
        """Vectors (n x d, any float) in their stored form, computed in float64 and cast to `dtype`."""
        if self.whitening is None and self.kind != "cos":  # stored as given: no float64 round trip
            return np.ascontiguousarray(vectors, dtype=dtype)
        x = np.asarray(vectors, dtype=np.float64)
        if self.whitening is not None:
            x = x @ self.whitening.T
        if self.kind == "cos":
            norms = np.sqrt((x * x).sum(axis=1))  # per row, whatever the batch (reproducible stored forms)
            # a zero vector stays zero: its dot product with anything is 0, its distance 1
            x = x / np.where(norms > 0, norms, 1.0)[:, None]
        return np.ascontiguousarray(x, dtype=dtype)

    def magnitude(self, stored: np.ndarray) -> np.ndarray:
        """Per row, the size the scan's error bound and its float32/float64 choice read (float64):
        the L1 norm for manhattan, else the squared L2 norm."""
        out = np.empty(len(stored))
        for s in range(0, len(stored), 8192):  # float64 temporaries of a few MB
            x = np.asarray(stored[s:s + 8192], dtype=np.float64)
            out[s:s + 8192] = np.abs(x).sum(axis=1) if self.kind == "l1" else (x * x).sum(axis=1)
        return out

    def needs_wide(self, *magnitudes: np.ndarray) -> bool:
        """Whether magnitudes (of queries, rows) need a float64 scan (float32 cannot carry them)."""
        top, low = 0.0, np.inf
        for mags in magnitudes:
            if len(mags):
                top = max(top, float(mags.max()))
                nonzero = mags[mags > 0]
                if len(nonzero):
                    low = min(low, float(nonzero.min()))
        return wide_range(top, low)

    def approx(self, queries: np.ndarray, rows: np.ndarray, query_mag: np.ndarray, row_mag: np.ndarray,
               wide: bool) -> tuple[np.ndarray, np.ndarray]:
        """A block's distances (q x b) in the scan's ranking space and a bound E of their error, per query
        (q x 1, the block's largest) or per pair (q x b, manhattan): a pair's exact value, moved into the
        ranking space, lies within `D - E .. D + E`.  The ranking space keeps the order of the distance
        but drops what is the same for every row of a query: for l2 it is `|x|^2 - 2 q.x` (the squared
        distance less `|q|^2`), for cosine `-q.x`, so a block costs one matrix product and one pass."""
        dtype = np.float64 if wide else np.float32
        unit = _U64 if wide else _U32
        dim = queries.shape[1]
        q = queries.astype(dtype, copy=False)
        x = rows.astype(dtype, copy=False)
        gamma, eta = _gamma(dim, unit), _eta(dim, dtype)
        if self.kind == "l1":
            d = np.abs(q[:, None, :] - x[None, :, :]).sum(axis=2)
            return d, d * (gamma / (1 - gamma)) + eta
        g = q @ x.T
        g *= -2 if self.kind == "l2" else -1
        top = float(row_mag.max()) if len(row_mag) else 0.0
        if self.kind == "l2":
            g += row_mag.astype(dtype)[None, :]
            return g, (gamma * (query_mag + top) + eta)[:, None]
        if self.kind == "ip":
            return g, (gamma * np.sqrt(query_mag * top) + eta)[:, None]
        return g, np.full((len(q), 1), gamma + eta)  # cos: unit (or zero) vectors, `1 -` dropped

    def exact(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Distances of pairs, row i of `queries` to row i of `rows` (stored forms), in float64.  Each pair's
        value depends on that pair alone (a contiguous row sum, never a layout-dependent kernel such as
        einsum or BLAS), so the same pair gets the same bits in any batch: exact ranks are reproducible."""
        q = np.asarray(queries, dtype=np.float64)
        x = np.asarray(rows, dtype=np.float64)
        if self.kind == "l1":
            return np.ascontiguousarray(np.abs(q - x)).sum(axis=1)
        if self.kind == "l2":
            diff = q - x
            return np.sqrt(np.ascontiguousarray(diff * diff).sum(axis=1))
        dot = np.ascontiguousarray(q * x).sum(axis=1)
        return -dot if self.kind == "ip" else 1 - dot


def wide_range(top: float, low: float) -> bool:
    """Whether magnitudes from `low` (smallest non-zero) to `top` need a float64 scan."""
    return top > _SAFE_HIGH or low < _SAFE_LOW


def metric(name: str) -> Metric:
    """A built-in metric by name (mahalanobis needs `mahalanobis(...)` or `fit_mahalanobis(...)`)."""
    kinds = {"euclidean": "l2", "manhattan": "l1", "inner_product": "ip", "cosine": "cos"}
    if name not in kinds:
        hint = ("; mahalanobis is fitted from data: fit_mahalanobis(vectors)" if name == "mahalanobis"
                else f"; known metrics: {', '.join(METRIC_NAMES)}")
        raise MetricError(f"unknown metric `{name}`{hint}")
    return Metric(name=name, kind=kinds[name])


def mahalanobis(covariance: np.ndarray) -> Metric:
    """The Mahalanobis metric of a covariance matrix (d x d, symmetric).  Eigenvalues below 1e-10 times
    the largest are raised to that floor, so a singular covariance (fewer vectors than dimensions, a
    constant component) still gives a finite metric."""
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise MetricError(f"a covariance must be a square d x d matrix, got shape {cov.shape}")
    if cov.shape[0] > MAHALANOBIS_MAX_DIM:
        raise MetricError(f"mahalanobis is limited to {MAHALANOBIS_MAX_DIM} dimensions (got {cov.shape[0]}): "
                          f"its covariance is decomposed in d^3 time")
    if not np.all(np.isfinite(cov)):
        raise MetricError("the covariance has non-finite entries")
    values, vecs = np.linalg.eigh((cov + cov.T) / 2)
    top = float(values.max())
    if top <= 0:
        raise MetricError("the covariance is zero: every vector is the same, there is nothing to whiten")
    values = np.maximum(values, top * 1e-10)
    whitening = (vecs / np.sqrt(values)).T  # W = diag(1/sqrt(l)) V^T, so W^T W = V diag(1/l) V^T
    return Metric(name="mahalanobis", kind="l2", whitening=np.ascontiguousarray(whitening))


def fit_mahalanobis(vectors: np.ndarray) -> Metric:
    """The Mahalanobis metric of the sample covariance of `vectors` (n x d, n >= 2)."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise MetricError(f"fitting mahalanobis needs at least 2 vectors, got {x.shape[0] if x.ndim == 2 else 0}")
    if x.shape[1] > MAHALANOBIS_MAX_DIM:
        raise MetricError(f"mahalanobis is limited to {MAHALANOBIS_MAX_DIM} dimensions (got {x.shape[1]}): "
                          f"its covariance is decomposed in d^3 time")
    return mahalanobis(np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1]))


def custom(function: Callable[[np.ndarray, np.ndarray], np.ndarray], name: str = "custom") -> Metric:
    """A user-supplied distance: `function(query (d,), rows (b x d))` returns b distances (smaller is
    nearer; NaN is an error).  Vectors are stored as given (float32); exact index only."""
    if not callable(function):
        raise MetricError("a custom metric needs a callable function(query, rows) -> distances")
    return Metric(name=name, kind="custom", function=function)


def resolve(spec: str | Metric) -> Metric:
    """A metric from its name or itself."""
    return spec if isinstance(spec, Metric) else metric(spec)


def pairwise(m: Metric, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All distances between the rows of `a` and of `b` (original vectors) in float64, as cdist gives
    them; the stored form is computed in float64 here, so this is the metric's reference evaluation."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if m.is_custom:
        return np.stack([np.asarray(m.function(row, b), dtype=np.float64) for row in a])
    pa, pb = m.prepare(a, np.float64), m.prepare(b, np.float64)
    out = np.empty((len(pa), len(pb)))
    for i, row in enumerate(pa):
        out[i] = m.exact(np.broadcast_to(row, pb.shape), pb)
    return out
