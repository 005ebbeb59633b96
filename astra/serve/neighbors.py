"""`POST /v1/neighbors`: the k nearest keys of a declared vector index.

    {"index": "similar_products", "version": 1, "key": "p0001", "k": 5, "filter": {"category": "bags"},
     "at": "2026-02-01"}
    {"index": "similar_products", "version": 1, "vector": [0.1, ...], "k": 5}

answers {"index", "version", "k", "neighbors": [{"key", "distance"}, ...]}, nearest first (ties by
key).  `version` is required, as a service's is: a client never moves to another declaration of
the index without asking (versions are locked in astra.lock like group versions).  With
`key` the query is that key's vector visible at `at` and the key itself is left out of the answer.
`at` (µs or ISO 8601; absent: the latest versions) sees versions strictly before it, as features do.
"""

from __future__ import annotations

import math
import re

import numpy as np
import orjson

from astra.online.errors import IndexNotBuilt
from astra.online.redis_store import StoreUnavailable
from astra.plan import indexes as plan_indexes
from astra.serve.validate import ApiError, _integral, _timestamp, parse_json, value
from astra.sparse import SparseError, from_index_map, index_map_schema, is_sparse_value, to_index_map
from astra.vectors import VectorError

FIELDS = ("index", "version", "vector", "key", "k", "filter", "at")
_REF = re.compile(r"([A-Za-z_]\w*)@v(\d+)")
MAX_K = 1000
F32_MAX = 3.4e38  # the largest query component accepted (float32's largest is ~3.4028e38)
JSON = "application/json"


def handler(engine):
    """The route's handler: body -> (status, payload, content type, label, headers)."""

    def neighbors(body: bytes):
        return 200, orjson.dumps(answer(engine.store, engine.plan, parse_json(body))), JSON, "-", []

    return neighbors


def request_body(index: str, vector=None, key=None, k: int = 10, filter: dict | None = None, at=None,
                 version: int | None = None) -> dict:
    """The JSON body of a query from Python values (a numpy vector, a datetime `at`); `index` is
    `name@vN`, or the name with `version`."""
    from astra.times import micros

    ref = _REF.fullmatch(index) if isinstance(index, str) and version is None else None
    body: dict = {"index": ref.group(1), "version": int(ref.group(2))} if ref else {"index": index}
    if version is not None:
        body["version"] = version
    body["k"] = k
    if vector is not None:
        if isinstance(vector, np.ndarray):
            body["vector"] = vector.tolist()
        elif is_sparse_value(vector):  # {"indices", "values"}: sent as the JSON index -> value object
            body["vector"] = to_index_map(vector)
        elif isinstance(vector, dict):
            body["vector"] = {str(k): float(x) for k, x in vector.items()}
        else:
            body["vector"] = list(vector)
    if key is not None:
        body["key"] = key.item() if isinstance(key, np.generic) else key
    if filter is not None:
        body["filter"] = filter
    if at is not None:
        try:
            body["at"] = micros(at, "at")
        except (TypeError, ValueError) as exc:
            raise ApiError(422, "invalid_value", str(exc), "at") from None
    return body


def answer(store, plan, doc: object) -> dict:
    """The neighbours a request asks for; `ApiError` (4xx) with the field at fault otherwise."""
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object "
                       "{index, version, vector | key, k, filter?, at?}")
    unknown = [f for f in doc if f not in FIELDS]
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field `{str(unknown[0])[:64]}`; fields: {', '.join(FIELDS)}",
                       str(unknown[0])[:64])
    decl = _declared(plan, doc)
    name = decl.id
    indexes = getattr(store, "indexes", None)
    if indexes is None or name not in indexes.decls:
        raise ApiError(422, "not_supported", "this store keeps no vector indexes (a store built for some services "
                       "keeps none)", "index")
    k = _integral(doc.get("k", 10))
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ApiError(422, "invalid_value", f"k: must be an integer from 1 to {MAX_K}, got {str(k)[:32]}", "k")
    at = _timestamp(doc["at"], "at") if "at" in doc else None
    src = plan.source(decl.source)
    filt = _filter(doc["filter"], src, decl.filters) if "filter" in doc else None
    has_vector, has_key = "vector" in doc, "key" in doc
    if has_vector == has_key:
        raise ApiError(422, "invalid_request", "give exactly one of `vector` (the query) and `key` (query with "
                       "that key's vector)", "vector")
    key = None
    if has_vector:
        query = _vector(doc["vector"], decl.dim)
    else:
        key = value(doc["key"], plan.entity(src.entities[0]).keys[0][1], "key")
        try:
            query = indexes.vector_of(name, key, at)
        except StoreUnavailable as exc:
            raise ApiError(503, "store_unavailable", str(exc)[:300]) from None
        except IndexNotBuilt as exc:
            raise ApiError(409, "index_not_built", str(exc)[:400], "index") from None
        if query is None:
            when = "at that time" if at is not None else "now"
            raise ApiError(404, "unknown_key", f"key {str(key)[:64]!r} has no vector in `{name}` {when}", "key")
    try:
        found = indexes.search(name, query, k + (key is not None), at, filt, stored=key is not None)
    except VectorError as exc:
        raise ApiError(422, "invalid_value", str(exc)[:300]) from None
    except StoreUnavailable as exc:  # the Redis store's log could not be read: the client may retry
        raise ApiError(503, "store_unavailable", str(exc)[:300]) from None
    except IndexNotBuilt as exc:  # retrying will not help: the index must be built again
        raise ApiError(409, "index_not_built", str(exc)[:400], "index") from None
    pairs = [(kk, float(d)) for kk, d in zip(found.keys[0], found.distances[0].tolist()) if kk != key][:k]
    return {"index": decl.name, "version": decl.version, "k": k,
            "neighbors": [{"key": kk, "distance": d} for kk, d in pairs]}


def _declared(plan, doc: dict):
    """The index version the request names; 404 for one not declared, 422 without a version."""
    name = doc.get("index")
    if not isinstance(name, str):
        raise ApiError(422, "invalid_value", "`index` must be the name of a declared index", "index")
    names = sorted({x.name for x in plan.indexes or ()})
    versions = [x.version for x in plan.indexes or () if x.name == name]
    ref = _REF.fullmatch(name)
    if not versions and ref and ref.group(1) in names:
        raise ApiError(404, "unknown_index", f"unknown index `{name[:64]}`: `index` is the name alone and `version` "
                       f'the number; send "index": "{ref.group(1)}", "version": {int(ref.group(2))}', "index",
                       indexes=names)
    if not versions:
        raise ApiError(404, "unknown_index", f"unknown index `{name[:64]}`; indexes: {', '.join(names) or 'none'}",
                       "index", indexes=names)
    available = ", ".join(f"v{v}" for v in versions)
    if "version" not in doc:
        raise ApiError(422, "missing_field", f"version: required, the version of index `{name}` to search "
                       f"(available: {available})", "version", available=versions)
    version = _integral(doc["version"])
    if not isinstance(version, int) or isinstance(version, bool):
        raise ApiError(422, "invalid_type", f"version: expected integer, got {str(doc['version'])[:32]}", "version")
    if version not in versions:
        raise ApiError(404, "unknown_version", f"index `{name}` has no version {version}; available: {available}",
                       "version", available=versions)
    return plan_indexes.find(plan, name, version)


def schemas(plan) -> dict:
    """The OpenAPI schemas of the endpoint's request and answer: with a plan, one request form per
    index (its name, vector length, key type and filter columns) and per query (`vector` or `key`)."""
    from astra.serve.request_schema import time_schema, value_schema

    common = {"k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10},
              "at": {**time_schema(), "description": "versions strictly before it (default: the latest)"}}
    forms = []
    for x in (plan.indexes or ()) if plan is not None else ():
        src = plan.source(x.source)
        key_type = plan.entity(src.entities[0]).keys[0][1]
        filters = {}
        for c in x.filters:
            one = value_schema(src.column_type(c))
            each = {"anyOf": [one, {"type": "null"}]}
            filters[c] = {"anyOf": [one, {"type": "null"}, {"type": "array", "items": each}]}
        props = {"index": {"const": x.name}, "version": {"const": x.version}, **common,
                 "filter": {"type": "object", "properties": filters, "additionalProperties": False}}
        number = {"type": "number", "minimum": -F32_MAX, "maximum": F32_MAX}
        vec = {"oneOf": [{"type": "array", "minItems": x.dim, "maxItems": x.dim, "items": number},
                         index_map_schema(x.dim, number)]}
        for field, schema in (("vector", vec), ("key", value_schema(key_type))):
            forms.append({"type": "object", "required": ["index", "version", field], "additionalProperties": False,
                          "properties": {**props, field: schema}})
    request = {"oneOf": forms, "description": "A query by `vector` or by `key` (that key's vector; the key is "
               "left out of the answer)"} if forms else {"type": "object", "required": ["index", "version"]}
    return {
        "NeighborsRequest": request,
        "NeighborsResponse": {
            "type": "object", "required": ["index", "version", "k", "neighbors"],
            "properties": {
                "index": {"type": "string"}, "version": {"type": "integer"}, "k": {"type": "integer"},
                "neighbors": {"type": "array", "items": {
                    "type": "object", "required": ["key", "distance"],
                    "properties": {"key": {"type": ["string", "integer"]}, "distance": {"type": "number"}}}},
            }},
    }


def path(ref, json_response, errors) -> dict:
    """The OpenAPI path item of `POST /v1/neighbors`."""
    return {"post": {
        "operationId": "neighbors", "summary": "The k nearest keys of a declared vector index",
        "security": [{}, {"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("NeighborsRequest")}}},
        "responses": {"200": json_response(ref("NeighborsResponse"), "Nearest first, ties by key"),
                      **errors(400, 401, 404, 413, 422),
                      "409": json_response(ref("Error"), "The Redis store holds rows of the index's source but "
                                           "no index log for them: materialize it into an empty database"),
                      "503": json_response(ref("Error"), "The Redis store could not be reached")}}}


def _vector(v: object, dim: int) -> np.ndarray:
    if isinstance(v, dict):  # sparse: {"3": 0.5, ...}
        try:
            out = from_index_map(v, dim)
        except SparseError as exc:
            raise ApiError(422, "invalid_value", f"vector: sparse vector: {exc}", "vector") from None
        big = [k for k, x in v.items() if abs(x) > F32_MAX]
        if big:
            raise ApiError(422, "invalid_value", f"vector[{big[0]}]: must be a finite float32 number", "vector")
        return out
    if not isinstance(v, list) or len(v) != dim:
        got = f"{len(v)} numbers" if isinstance(v, list) else type(v).__name__
        raise ApiError(422, "invalid_value", f"vector: must be a list of {dim} numbers, got {got}", "vector")
    for j, x in enumerate(v):
        if not isinstance(x, int | float) or isinstance(x, bool) or abs(x) > F32_MAX or not math.isfinite(x):
            raise ApiError(422, "invalid_value", f"vector[{j}]: must be a finite float32 number, got {str(x)[:32]}",
                           f"vector[{j}]")
    return np.asarray(v, dtype=np.float32)


def _filter(f: object, src, columns: tuple[str, ...]) -> dict | None:
    if not isinstance(f, dict):
        raise ApiError(422, "invalid_value", "filter: must be an object {column: value or [values]}", "filter")
    for col, want in f.items():
        if col not in columns:
            raise ApiError(422, "unknown_filter", f"filter: `{col[:64]}` is not a filter column of this index; "
                           f"filter columns: {', '.join(columns) or 'none'}", f"filter.{col[:64]}")
        t = src.column_type(col).nullable()
        if isinstance(want, list):
            f[col] = [value(x, t, f"filter.{col}[{j}]") for j, x in enumerate(want)]
        else:
            f[col] = value(want, t, f"filter.{col}")
    return f or None
