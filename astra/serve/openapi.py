"""The OpenAPI 3.1 document of the REST API, served at `/openapi.json` and committed as `openapi.json`.

The document is independent of the project (service names, keys and types are data, listed by
`GET /v1/registry`), so one committed file describes every server.  Regenerate it with
`uv run python -m astra.serve.openapi > openapi.json`; a test fails when the two differ.
"""

from __future__ import annotations

import sys

import orjson

VERSION = "1.0.0"

_SCALAR = {"type": ["integer", "number", "string", "boolean", "null"]}
_TIME = {"type": ["integer", "string"], "description": "µs since the Unix epoch, or an ISO 8601 string "
         "(naive means UTC)"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    text = {400: "Malformed JSON", 401: "Missing or wrong bearer token (only with --token)",
            404: "Unknown service, version or source; the body lists what exists",
            413: "Body over --max-body", 422: "The body does not match the schema or the plan; the error is located",
            403: "The server is read-only", 503: "The server stopped answering after a storage failure"}
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "location": {"type": "string", "description": "Where in the body, e.g. `entities[3].user_id`"},
                "available": {"type": "array", "description": "What exists, when something unknown was named"},
                "errors": {"type": "array", "items": _ref("RowError"), "description": "Per-row errors of a push"},
            }}},
    },
    "RowError": {
        "type": "object", "required": ["index", "location", "message"],
        "properties": {"index": {"type": "integer"}, "location": {"type": "string"}, "message": {"type": "string"}},
    },
    "FeaturesRequest": {
        "type": "object", "required": ["service", "version", "entities"], "additionalProperties": False,
        "properties": {
            "service": {"type": "string", "description": "Service name, e.g. `fraud_model`"},
            "version": {"type": "integer", "description": "Service version, e.g. 1"},
            "entities": {"type": "array", "minItems": 1, "description": "Key columns of the service's entities",
                         "items": {"type": "object", "additionalProperties": {"type": ["integer", "string"]}}},
            "at": {"oneOf": [_TIME, {"type": "array", "items": _TIME}, {"type": "null"}],
                   "description": "Query time (one, or one per entity); absent: now"},
            "request": {"oneOf": [{"type": "object", "additionalProperties": _SCALAR},
                                  {"type": "array", "items": {"type": "object", "additionalProperties": _SCALAR}},
                                  {"type": "null"}],
                        "description": "Request inputs: one object for all entities, or one per entity"},
            "features": {"oneOf": [_STR_LIST, {"type": "null"}], "description": "A subset of the outputs"},
        },
        "example": {"service": "fraud_model", "version": 1, "entities": [{"user_id": 1}, {"user_id": 2}]},
    },
    "FeaturesResponse": {
        "type": "object", "additionalProperties": False,
        "required": ["service", "version", "fingerprint", "at", "watermark", "features", "results"],
        "properties": {
            "service": {"type": "string"}, "version": {"type": "integer"}, "fingerprint": {"type": "string"},
            "at": {"oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}],
                   "description": "The query time used (µs); for `now` queries, quantised to the cache TTL"},
            "watermark": {"type": "object", "additionalProperties": {"type": "integer"},
                          "description": "Latest event time stored per source (µs)"},
            "features": {"type": "array", "items": {
                "type": "object", "required": ["name", "type"],
                "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}},
            "results": {"type": "array", "items": {
                "type": "object", "required": ["values", "missing", "stale"], "additionalProperties": False,
                "properties": {
                    "values": {"type": "array", "description": "One value per feature, in `features` order"},
                    "missing": {**_STR_LIST, "description": "Features with no data for this entity (default/null)"},
                    "stale": {**_STR_LIST, "description": "Features reading a source older than its max_staleness"},
                }}},
            "deprecated": {"type": "string", "description": "Set when the service pins a deprecated group"},
        },
    },
    "PushRequest": {
        "type": "object", "required": ["source", "rows"], "additionalProperties": False,
        "properties": {
            "source": {"type": "string"},
            "rows": {"type": "array", "items": {"type": "object", "additionalProperties": _SCALAR}},
        },
        "example": {"source": "transactions", "rows": [{"user_id": 1, "merchant_id": 7, "amount": 12.5,
                                                        "category": "cat_01", "ts": "2026-03-01T12:00:00"}]},
    },
    "PushResponse": {
        "type": "object", "required": ["source", "accepted", "rejected", "watermark", "durable"],
        "additionalProperties": False,
        "properties": {
            "source": {"type": "string"}, "accepted": {"type": "integer"},
            "rejected": {"type": "array", "items": {
                "type": "object", "required": ["index", "reason", "message"],
                "properties": {"index": {"type": "integer"}, "reason": {"type": "string"},
                               "time": {"type": "integer"}, "bound": {"type": "integer"},
                               "message": {"type": "string"}}}},
            "watermark": {"type": ["integer", "null"]},
            "durable": {"type": "boolean", "description": "true when the rows were fsynced before this answer"},
        },
    },
    "Registry": {
        "type": "object", "required": ["entities", "sources", "requests", "groups", "services", "versions"],
        "properties": {k: {"type": "array", "items": {"type": "object"}}
                       for k in ("entities", "sources", "requests", "groups", "services")}
                      | {"versions": {"type": "object"}},
    },
    "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}


def document() -> dict:
    """The OpenAPI document."""
    post = {"requestBody": None, "security": [{}, {"bearer": []}]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "astra serve", "version": VERSION,
                 "description": "Versioned feature serving from the astra online store. See docs/serving.md."},
        "servers": [{"url": "http://127.0.0.1:8000"}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/features": {"post": {
                **post, "operationId": "getFeatures", "summary": "Feature values for a batch of entities",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FeaturesRequest")}}},
                "responses": {"200": {**_json(_ref("FeaturesResponse"), "Values in service order"),
                                      "headers": {"Deprecation": {"schema": {"type": "string"}},
                                                  "Warning": {"schema": {"type": "string"}}}},
                              **_errors(400, 401, 404, 413, 422, 503)}}},
            "/v1/push": {"post": {
                **post, "operationId": "push", "summary": "Push rows of a source; answered once they are durable",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PushRequest")}}},
                "responses": {"200": _json(_ref("PushResponse"), "Rows stored (late rows listed as rejected)"),
                              **_errors(400, 401, 403, 404, 413, 422, 503)}}},
            "/v1/registry": {"get": {
                "operationId": "registry", "summary": "Entities, sources, groups and services with their versions",
                "security": [{}, {"bearer": []}],
                "responses": {"200": _json(_ref("Registry"), "The registry"), **_errors(401)}}},
            "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness",
                                 "responses": {"200": _json(_ref("Status"), "Alive")}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Readiness: store restored and healthy",
                                "responses": {"200": _json(_ref("Status"), "Ready"), **_errors(503)}}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics",
                                 "security": [{}, {"bearer": []}],
                                 "responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}},
                                               **_errors(401)}}},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
        },
    }


def dumps() -> bytes:
    """The document exactly as served (and committed, plus a final newline)."""
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


if __name__ == "__main__":
    sys.stdout.buffer.write(dumps() + b"\n")
