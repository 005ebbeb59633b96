"""`POST /v1/neighbors`: the k nearest keys of a declared vector index.

    {"index": "similar_products", "key": "p0001", "k": 5, "filter": {"category": "bags"}, "at": "2026-02-01"}
    {"index": "similar_products", "vector": [0.1, ...], "k": 5}

answers {"index", "k", "neighbors": [{"key", "distance"}, ...]}, nearest first (ties by key).  With
`key` the query is that key's vector visible at `at` and the key itself is left out of the answer.
`at` (µs or ISO 8601; absent: the latest versions) sees versions strictly before it, as features do.
"""

from __future__ import annotations

import math

import numpy as np
import orjson

from astra.plan import indexes as plan_indexes
from astra.serve.validate import ApiError, _timestamp, parse_json
from astra.vectors import VectorError

FIELDS = ("index", "vector", "key", "k", "filter", "at")
MAX_K = 1000
JSON = "application/json"


def handler(engine):
    """The route's handler: body -> (status, payload, content type, label, headers)."""

    def neighbors(body: bytes):
        return 200, orjson.dumps(answer(engine.store, engine.plan, parse_json(body))), JSON, "-", []

    return neighbors


def answer(store, plan, doc: object) -> dict:
    """The neighbours a request asks for; `ApiError` (4xx) with the field at fault otherwise."""
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object {index, vector | key, k, filter?, at?}")
    unknown = [f for f in doc if f not in FIELDS]
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field `{str(unknown[0])[:64]}`; fields: {', '.join(FIELDS)}",
                       str(unknown[0])[:64])
    name = doc.get("index")
    if not isinstance(name, str):
        raise ApiError(422, "invalid_value", "`index` must be the name of a declared index", "index")
    try:
        decl = plan_indexes.find(plan, name)
    except KeyError as exc:
        raise ApiError(404, "unknown_index", str(exc.args[0])[:300], "index",
                       indexes=[x.name for x in plan.indexes or ()]) from None
    indexes = getattr(store, "indexes", None)
    if indexes is None:
        raise ApiError(501, "not_supported", "vector indexes are kept by the embedded online store only")
    k = doc.get("k", 10)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ApiError(422, "invalid_value", f"k: must be an integer from 1 to {MAX_K}, got {str(k)[:32]}", "k")
    at = None if doc.get("at") is None else _timestamp(doc["at"], "at")
    filt = _filter(doc.get("filter"), decl.filters)
    has_vector, has_key = doc.get("vector") is not None, doc.get("key") is not None
    if has_vector == has_key:
        raise ApiError(422, "invalid_request", "give exactly one of `vector` (the query) and `key` (query with "
                       "that key's vector)", "vector")
    key = None
    if has_vector:
        query = _vector(doc["vector"], decl.dim)
    else:
        key = doc["key"]
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise ApiError(422, "invalid_value", "key: must be a string or an integer", "key")
        query = indexes.vector_of(name, key, at)
        if query is None:
            when = "at that time" if at is not None else "now"
            raise ApiError(404, "unknown_key", f"key {str(key)[:64]!r} has no vector in `{name}` {when}", "key")
    try:
        found = indexes.search(name, query, k + (key is not None), at, filt)
    except VectorError as exc:
        raise ApiError(422, "invalid_value", str(exc)[:300]) from None
    pairs = [(kk, float(d)) for kk, d in zip(found.keys[0], found.distances[0].tolist()) if kk != key][:k]
    return {"index": name, "k": k, "neighbors": [{"key": kk, "distance": d} for kk, d in pairs]}


def _vector(v: object, dim: int) -> np.ndarray:
    if not isinstance(v, list) or len(v) != dim:
        got = f"{len(v)} numbers" if isinstance(v, list) else type(v).__name__
        raise ApiError(422, "invalid_value", f"vector: must be a list of {dim} numbers, got {got}", "vector")
    for j, x in enumerate(v):
        if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x) or abs(x) > 3.4e38:
            raise ApiError(422, "invalid_value", f"vector[{j}]: must be a finite float32 number, got {str(x)[:32]}",
                           f"vector[{j}]")
    return np.asarray(v, dtype=np.float32)


def _filter(f: object, columns: tuple[str, ...]) -> dict | None:
    if f is None:
        return None
    if not isinstance(f, dict):
        raise ApiError(422, "invalid_value", "filter: must be an object {column: value or [values]}", "filter")
    for col, want in f.items():
        if col not in columns:
            raise ApiError(422, "unknown_filter", f"filter: `{col[:64]}` is not a filter column of this index; "
                           f"filter columns: {', '.join(columns) or 'none'}", f"filter.{col[:64]}")
        values = want if isinstance(want, list) else [want]
        if not all(isinstance(x, str | int) or x is None for x in values):
            raise ApiError(422, "invalid_value", f"filter.{col[:64]}: values must be strings, integers, booleans "
                           f"or null", f"filter.{col[:64]}")
    return f or None
