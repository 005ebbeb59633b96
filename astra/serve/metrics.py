"""Prometheus metrics for `astra serve`.

The figures touched on every request (latency histogram, request counts, per-feature
missing/stale counts) are plain Python/numpy counters folded into Prometheus families at
scrape time by a collector, as are the cache statistics and the store's size and watermarks:
a prometheus_client histogram observation costs about as much as a cached lookup.  Rarer
events (pushes, plan evaluations on cache misses, snapshots) use prometheus_client directly.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from astra.serve.server import STOPPED_ENV, respawns

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01,
                   0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
disable_created_metrics()  # no `_created` series beside every counter


class Metrics:
    """Everything `/metrics` exports for one server process."""

    def __init__(self, engine):
        self.engine = engine
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.latency: dict[tuple[str, str], list] = {}  # (endpoint, service) -> [bucket counts, sum]
        self.requests: dict[tuple[str, int], int] = {}  # (endpoint, status) -> count
        self.plan_eval = Histogram("astra_plan_evaluation_seconds", "Store.get time (cache misses only)",
                                   ["service"], buckets=LATENCY_BUCKETS, registry=r)
        self.pushed = Counter("astra_rows_pushed", "Rows accepted by /v1/push (durable)", ["source"], registry=r)
        self.rejected = Counter("astra_rows_rejected", "Rows refused by /v1/push", ["source", "reason"],
                                registry=r)
        self.deprecated = Counter("astra_deprecated_requests", "Requests for a service that pins a deprecated "
                                  "group version", ["service"], registry=r)
        self.wal_sync = Histogram("astra_wal_append_seconds", "Time to append (and fsync) one push record",
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.followed = Counter("astra_log_records_followed", "Log records a read-only server applied from the "
                                "writer", registry=r)
        self.reloads = Counter("astra_follower_reloads", "Times a read-only server fell behind the writer's "
                               "snapshots and reloaded", registry=r)
        self.snapshots = Histogram("astra_snapshot_seconds", "Time to write a store snapshot",
                                   buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r)
        # per service: entities answered, per set of missing outputs (indexes), folded when scraped
        self.missing: dict[str, dict[tuple[int, ...], int]] = {sid: {} for sid in engine.by_id}
        # per service: counts of entities answered with each feature stale
        self.stale = {sid: np.zeros(len(info.names), np.int64) for sid, info in engine.by_id.items()}
        r.register(_StateCollector(self))

    def observe(self, endpoint: str, service: str, status: int, seconds: float) -> None:
        """One request: its latency (per endpoint and service) and status (per endpoint)."""
        h = self.latency.get((endpoint, service))
        if h is None:
            h = self.latency[(endpoint, service)] = [[0] * (len(LATENCY_BUCKETS) + 1), 0.0]
        h[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1  # first bucket with le >= seconds
        h[1] += seconds
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector:
    """Cache, store and per-feature figures, read when scraped."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def describe(self):
        return []

    def collect(self):
        eng = self.m.engine
        lat = HistogramMetricFamily("astra_http_request_duration_seconds", "Request latency by endpoint and service",
                                    labels=["endpoint", "service"])
        for (endpoint, service), (counts, total) in sorted(self.m.latency.items()):
            cum, buckets = 0, []
            for le, k in zip((*map(str, LATENCY_BUCKETS), "+Inf"), counts):
                cum += k
                buckets.append((le, cum))
            lat.add_metric([endpoint, service], buckets, total)
        yield lat
        req = CounterMetricFamily("astra_http_requests", "Requests by endpoint and status",
                                  labels=["endpoint", "status"])
        for (endpoint, status), k in sorted(self.m.requests.items()):
            req.add_metric([endpoint, str(status)], k)
        yield req
        c = eng.cache
        for name, doc, v in (("hits", "Cache hits", c.hits), ("misses", "Cache misses", c.misses),
                             ("evictions", "Entries evicted by the size bound", c.evictions),
                             ("invalidations", "Entries dropped by pushes", c.invalidations),
                             ("expired", "Entries found from an older TTL bucket", c.expired)):
            yield CounterMetricFamily(f"astra_cache_{name}", doc, value=v)
        yield GaugeMetricFamily("astra_cache_entries", "Entries in the cache", value=len(c.entries))
        b = getattr(self.m, "batcher", None)
        if b is not None:
            yield CounterMetricFamily("astra_plan_batches", "Store.get calls made for coalesced cache misses",
                                      value=b.batches)
            yield CounterMetricFamily("astra_plan_batched_requests", "Requests whose misses went through those calls",
                                      value=b.coalesced)
        respawned = CounterMetricFamily("astra_worker_respawns", "Worker processes started again after one "
                                        "crashed (kill -9, a segfault) or was stopped by a signal of its own, "
                                        "counted by the supervising process", labels=["reason"])
        respawned.add_metric(["crash"], respawns())
        respawned.add_metric(["stopped"], respawns(STOPPED_ENV))
        yield respawned
        from astra.online.redis_store import StoreUnavailable

        try:
            nbytes, wms, h = eng.store.nbytes(), sorted(eng.store.watermark.items()), eng.store.horizon
        except StoreUnavailable:  # a shared store that is down (/readyz says so): the rest still renders
            nbytes, wms, h = 0, [], None
        yield GaugeMetricFamily("astra_store_bytes", "Bytes held by the store's tables", value=nbytes)
        wm = GaugeMetricFamily("astra_source_watermark_us", "Latest event time stored per source (µs)",
                               labels=["source"])
        for src, w in wms:
            wm.add_metric([src], w)
        yield wm
        yield GaugeMetricFamily("astra_store_horizon_us", "Earliest query time answered exactly (µs; 0: all)",
                                value=h or 0)
        if eng.log is not None:
            yield GaugeMetricFamily("astra_wal_bytes", "Bytes in the log since the last snapshot",
                                    value=eng.log.bytes)
        missing = {}
        for sid, by_set in self.m.missing.items():
            arr = missing[sid] = np.zeros(len(eng.by_id[sid].names), np.int64)
            for idx, k in list(by_set.items()):
                arr[list(idx)] += k
        for fam, counts, doc in (("astra_feature_missing", missing, "Entities answered with no data "
                                  "for the feature (its default or null)"),
                                 ("astra_feature_stale", self.m.stale, "Entities answered while a source the "
                                  "feature reads was older than its max_staleness")):
            f = CounterMetricFamily(fam, doc, labels=["service", "feature"])
            for sid, arr in counts.items():
                for name, v in zip(eng.by_id[sid].names, arr.tolist()):
                    f.add_metric([sid, name], v)
            yield f
