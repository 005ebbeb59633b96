"""A brute-force reference for the vector index tests: a plain model of versions and a full sort.

The model keeps each key's changes as a list in arrival order and answers "which vector does key K have
at time t" by the documented rule (the latest change with time < t; at equal times the later change
wins; None means the latest change overall).  The nearest neighbours are every visible vector's
distance by the metric's float64 pair formula (checked against scipy separately), sorted by
(distance, key).
"""

from __future__ import annotations

import numpy as np

from astra.vectors import Metric


class Model:
    """Changes per key: (time, vector or None for a delete, metadata dict)."""

    def __init__(self):
        self.changes: dict = {}

    def insert(self, keys, vectors, times, metadata=None):
        order = sorted(range(len(keys)), key=lambda i: times[i])  # the index applies a batch in time order
        for i in order:
            meta = {name: values[i] for name, values in (metadata or {}).items()}
            self.changes.setdefault(keys[i], []).append((int(times[i]), np.asarray(vectors[i], np.float32), meta))

    def delete(self, keys, times):
        order = sorted(range(len(keys)), key=lambda i: times[i])
        for i in order:
            if keys[i] in self.changes:
                self.changes[keys[i]].append((int(times[i]), None, {}))

    def visible(self, at=None) -> dict:
        """key -> (vector, metadata) at time `at`."""
        out = {}
        for key, changes in self.changes.items():
            seen = [c for c in changes if at is None or c[0] < at]
            if seen and seen[-1][1] is not None:
                out[key] = (seen[-1][1], seen[-1][2])
        return out


def brute_force(metric: Metric, rows: dict, query: np.ndarray, k: int, where=None) -> tuple[list, list]:
    """The k nearest keys of `rows` (key -> (vector, metadata)) to `query`, ties by key."""
    keys = [key for key, (_, meta) in rows.items() if where is None or where(meta)]
    if not keys:
        return [], []
    stored = metric.prepare(np.stack([rows[key][0] for key in keys]))
    q = metric.prepare(np.asarray(query, np.float32)[None, :])
    if metric.is_custom:
        dist = np.asarray(metric.function(q[0], stored), dtype=np.float64)
    else:
        dist = metric.exact(np.broadcast_to(q, stored.shape), stored)
    order = sorted(range(len(keys)), key=lambda i: (dist[i], keys[i]))[:k]
    return [keys[i] for i in order], [float(dist[i]) for i in order]
