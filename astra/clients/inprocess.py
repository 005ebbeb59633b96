"""`astra.Online`: the `FeatureClient` interface over an embedded store, in this process.

Requests go through the server's own validator (`astra.serve.validate`) and answers are built
the way the server builds them (missing and stale per feature), so a notebook gets the frames
and the errors (`astra.ClientError` subclasses with the server's codes) a service gets from
`astra.Client`; only the transport differs.  No HTTP, no state directory, no push log: pushes
live as long as the object.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import attrs

from astra.clients import errors
from astra.clients.codec import (
    PushAck,
    _Layout,
    _layout,
    features_body,
    rows_frame,
    rows_of,
    service_keys,
    warn_deprecated,
)
from astra.online import HorizonError, OnlineError  # here, not per call: a one-entity get costs tens of µs
from astra.online.lookup import Lookup
from astra.serve.validate import ApiError, features_query, push_body, push_rows, service_info

NO_LIMIT = sys.maxsize  # in process there is no --max-batch / --max-push-rows
MEMO_LIMIT = 4096  # memoised shapes and name lists; a long-lived process asking ever new subsets starts over


@attrs.frozen
class _Shape:
    """What every answer of one service and feature selection shares, worked out on its first
    query: a one-entity get costs about as much as the store's own lookup, so rebuilding the
    feature list and the frame layout per call was a fair part of it."""

    keep: tuple[int, ...] | None  # the selected outputs in answer order (None: all of them)
    chosen: frozenset[int]  # the same, as a set
    layout: _Layout  # the frame's key and feature columns
    key_names: list[str]


def _iso(us: int) -> str:
    import datetime as dt

    try:
        return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(us))).isoformat()
    except OverflowError:
        return f"{int(us)} µs"


class Online:
    """Features from an in-process online store, materialized from the project's sources.

        online = astra.Online("features", data_root="build/demo/")
        online.get("fraud_model@v1", [{"user_id": 10}], at="2026-03-02")  # a polars DataFrame

    `project` is an `astra.Project` or its path; `data_root`, `services` and `allowed_lateness`
    are those of `Project.store`.  `store=` wraps an existing `astra.Store` instead."""

    def __init__(self, project, *, data_root: str | Path | None = None, services: list[str] | None = None,
                 allowed_lateness: Any = 0, store=None):
        from astra.project import Project
        from astra.serve.registry import registry

        self.project = project if isinstance(project, Project) else Project.load(project)
        plan = self.project.plan
        self.store = store if store is not None else self.project.store(
            data_root=data_root, services=services, allowed_lateness=allowed_lateness)
        self._infos = {(s.name, s.version): service_info(plan, s) for s in plan.services}
        self._sources = {s.name: s for s in plan.sources}
        self._staleness = {s.name: s.max_staleness for s in plan.sources if s.max_staleness is not None}
        self._registry = registry(plan)
        self._memo: dict[tuple, list[str]] = {}  # missing and stale feature names, per combination
        self._shapes: dict[tuple, _Shape] = {}  # per (service id, selection)

    def __repr__(self) -> str:
        return f"Online({str(self.project.path)!r})"

    def get(self, service: str, entities: Any, at: Any = None, *, request: Any = None, features: Any = None,
            version: int | None = None, status: bool = False):
        """The features of `service` (`name@vN`, or `name` with `version`) for each entity at `at`.

        `entities`: dicts of key columns, or a Polars/pandas DataFrame of them.  `at`: None (now),
        a `datetime`/`date` (naive means UTC), ISO string or int µs, one or one per entity.
        `request`: the service's request fields (one dict, or one per entity); `features`: a
        subset of the outputs.  Returns a Polars DataFrame: the key columns, then the features
        typed as declared; `status=True` adds `_missing` and `_stale` (feature names per entity).
        Raises the `astra.ClientError` subclass the server would answer with."""
        body = features_body(service, entities, at, request=request, features=features, version=version)
        try:
            q = features_query(body, self._infos, NO_LIMIT)
            t = time.time_ns() // 1000 if q.at is None else q.at
            h = self.store.horizon
            if h is not None and (min(t) if isinstance(t, list) else t) < h:
                first = min(t) if isinstance(t, list) else t
                raise ApiError(409, "before_horizon", str(HorizonError(first, h)), "at", horizon=h)
            try:
                res = self.store.lookup(Lookup(q.info.service, q.info.key_names, q.keys, t, q.request))
            except HorizonError as exc:
                raise ApiError(409, "before_horizon", str(exc), "at", horizon=exc.horizon) from None
            except (OnlineError, KeyError, ValueError) as exc:
                raise ApiError(422, "invalid_query", str(exc).strip("'\"")) from None
        except ApiError as exc:
            raise errors.from_answer(exc.status, exc.body()) from None
        shape = self._shapes.get((q.info.id, q.select)) or self._shape(q.info, q.select)
        results = self._results(q, t, res, shape)
        info = q.info
        if info.deprecated:
            warn_deprecated({"service": info.service.name, "version": info.service.version,
                             "deprecated": info.deprecated})
        return rows_frame(shape.layout, shape.key_names, body["entities"], results, status)

    def _shape(self, info, select) -> _Shape:
        keep = range(len(info.names)) if select is None else select
        keys = service_keys(self._registry, info.service.name, info.service.version)
        columns = (*keys, *((info.names[i], info.types[i]) for i in keep))
        if len(self._shapes) >= MEMO_LIMIT:
            self._shapes.clear()
        shape = self._shapes[info.id, select] = _Shape(select, frozenset(keep), _layout(columns),
                                                       [k for k, _ in keys])
        return shape

    def _results(self, q, t, res, shape: _Shape) -> list[tuple]:
        """Per entity, the server's (values, missing, stale) for a store result (see
        `astra.serve.engine`): the selected values, and the names of the selected features that
        are missing for the entity and that read a source stale at its time."""
        info, keep, chosen = q.info, shape.keep, shape.chosen
        names = info.names
        wm = self.store.watermark
        memo, by_time = self._memo, {}
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        results = []
        for j, (values, miss) in enumerate(zip(res.tuples(), res.missing_outputs())):
            tj = t[j] if isinstance(t, list) else t
            stale = by_time.get(tj)
            if stale is None:
                bad = frozenset(s for s, lag in self._staleness.items() if s not in wm or wm[s] < tj - lag)
                stale = memo.get((info.id, "stale", bad, chosen))
                if stale is None:  # service order, as the server
                    stale = memo[info.id, "stale", bad, chosen] = [
                        nm for i, nm in enumerate(names) if i in chosen and bad.intersection(info.sources[i])]
                by_time[tj] = stale
            missing = memo.get((info.id, "missing", miss, chosen))
            if missing is None:
                missing = memo[info.id, "missing", miss, chosen] = [names[i] for i in miss if i in chosen]
            results.append((values if keep is None else [values[i] for i in keep], missing, stale))
        return results

    def push(self, source: str, rows: Any) -> PushAck:
        """Append rows (dicts, or a Polars/pandas DataFrame) to `source`, checked as the server
        checks them: a bad row stores nothing (`RejectedRowsError`, every problem located);
        rows too late for the store's allowed lateness are left out and listed in `rejected`."""

        body = {"source": source, "rows": rows_of(rows, "rows")}
        try:
            src, raw = push_body(body, self._sources, NO_LIMIT)
            norm, problems, n_bad = push_rows(src, raw)
            if n_bad:
                raise ApiError(422, "invalid_rows", f"{n_bad} of {len(raw)} rows do not match source `{src.name}`; "
                               f"nothing was stored", "rows", rejected=n_bad, errors=problems)
        except ApiError as exc:
            raise errors.from_answer(exc.status, exc.body()) from None
        rejected = []
        if norm:
            report = self.store.push(src.name, norm, on_late="report")
            at = src.time
            rejected = [{"index": j, "reason": "late", "location": f"rows[{j}].{at}", "time": tm, "bound": b,
                         "message": f"rows[{j}].{at}: event time {_iso(tm)} is before the watermark minus the allowed "
                                    f"lateness ({_iso(b)})"} for j, tm, b in report.rejected]
        return PushAck(src.name, len(norm) - len(rejected), tuple(rejected), self.store.watermark.get(src.name),
                       False)

    def neighbors(self, index: str, vector: Any = None, *, key: Any = None, k: int = 10, filter: dict | None = None,
                  at: Any = None, version: int | None = None) -> dict:
        """The k nearest keys of a declared vector index to `vector`, or to `key`'s vector (the key
        itself left out), among the versions before `at` (None: the latest) that pass `filter`.
        `index` is `name@vN`, or the name with `version`.  `POST /v1/neighbors`'s answer,
        {"index", "version", "k", "neighbors": [{"key", "distance"}, ...]}."""
        from astra.serve.neighbors import answer, request_body

        try:
            return answer(self.store, self.project.plan, request_body(index, vector, key, k, filter, at, version))
        except ApiError as exc:
            raise errors.from_answer(exc.status, exc.body()) from None

    def registry(self) -> dict:
        """The registry document `GET /v1/registry` serves, for this project."""
        import copy

        return copy.deepcopy(self._registry)

    def close(self) -> None:
        """Nothing to release (the store is garbage once unreferenced); here for the interface."""

    def __enter__(self) -> Online:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
