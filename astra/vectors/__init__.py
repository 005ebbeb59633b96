"""Nearest-neighbour search over vectors: metrics, the exact and HNSW index, persistence (docs/vectors.md)."""

from astra.vectors.errors import VectorError, VectorMemoryError
from astra.vectors.hnsw import HnswParams
from astra.vectors.index import EXACT_BELOW, Neighbors, VectorIndex
from astra.vectors.metrics import METRIC_NAMES, Metric, custom, fit_mahalanobis, mahalanobis, metric, pairwise
from astra.vectors.persist import load, save

__all__ = ["EXACT_BELOW", "METRIC_NAMES", "HnswParams", "Metric", "Neighbors", "VectorError", "VectorIndex",
           "VectorMemoryError", "custom", "fit_mahalanobis", "load", "mahalanobis", "metric",
           "pairwise", "save"]
