"""The OpenAPI 3.1 document of the REST API, served at `/openapi.json`.

A server describes its own project: per service version the exact request body (key columns and
their types, request fields, output names) and per source the push rows (`request_schema.py`),
with its limits; a body valid under the document passes validation, and an invalid one fails it.
`openapi.json`
in the repository is the document of the example project `features/` with the default limits;
regenerate it with `uv run python -m astra.serve.openapi > openapi.json` (a test fails when they
differ).  `document()` without a plan is the project-independent form.
"""

from __future__ import annotations

import sys

import attrs
import orjson

from astra.plan import ir
from astra.serve import neighbors, request_schema
from astra.serve.config import ServeConfig
from astra.serve.validate import service_info

_DEFAULTS = attrs.fields(ServeConfig)
MAX_BATCH, MAX_PUSH_ROWS = _DEFAULTS.max_batch.default, _DEFAULTS.max_push_rows.default

VERSION = "1.0.0"

_SCALAR = {"type": ["integer", "number", "string", "boolean", "null"]}
_TIME = {"type": ["integer", "string"], "description": "µs since the Unix epoch, or an ISO 8601 string "
         "(naive means UTC)"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}
_INPUTS = {"type": "object", "additionalProperties": _SCALAR}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    text = {400: "Malformed JSON, a key repeated in an object, or one request field given twice",
            409: "The query time is before the store's horizon (its rows were evicted)",
            401: "Missing or wrong bearer token (only with --token)",
            404: "Unknown service, version or source; the body lists what exists (and the closest name)",
            413: "Body over --max-body", 422: "The body does not match the schema or the plan; the error is located",
            403: "The server is read-only",
            503: "The server stopped answering after a storage failure, or (a push) its log could not be "
                 "written and nothing was stored"}
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
            "entities": {"type": "array", "minItems": 1, "description": "Key columns of the service's entities, "
                         "each optionally with its own `at` and `request`",
                         "items": {"type": "object", "additionalProperties": {"type": ["integer", "string"]},
                                   "properties": {"at": {"oneOf": [_TIME, {"type": "null"}]},
                                                  "request": {"oneOf": [_INPUTS, {"type": "null"}]}}}},
            "at": {"oneOf": [_TIME, {"type": "null"}],
                   "description": "Query time of every entity without its own; absent: now"},
            "request": {"oneOf": [_INPUTS, {"type": "null"}],
                        "description": "Request inputs of every entity without its own"},
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
                    "values": {"type": "array", "description": "One value per feature, in `features` order, as its "
                               "`type` says; a float (`float32`, `float64`, optional or not, and the items of lists "
                               "and vectors of them) is a `FloatValue`: a number, or \"Infinity\", \"-Infinity\" "
                               "or \"NaN\"; null only for an optional type"},
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
    "FloatValue": {
        "description": "A float feature's value: a JSON number, or the IEEE infinities and NaN, which JSON numbers "
                       "cannot hold, as the strings \"Infinity\", \"-Infinity\" and \"NaN\" (the protobuf JSON "
                       "mapping); never null for a type declared without `?`",
        "oneOf": [{"type": "number"}, {"type": "string", "enum": ["Infinity", "-Infinity", "NaN"]}],
    },
    "PushResponse": {
        "type": "object", "required": ["source", "accepted", "rejected", "watermark", "durable"],
        "additionalProperties": False,
        "properties": {
            "source": {"type": "string"}, "accepted": {"type": "integer"},
            "rejected": {"type": "array", "items": {
                "type": "object", "required": ["index", "reason", "message"],
                "properties": {"index": {"type": "integer"},
                               "reason": {"type": "string", "enum": ["late", "future"],
                                          "description": "late: before the watermark minus the allowed lateness; "
                                                         "future: after the server's clock plus --max-future"},
                               "location": {"type": "string", "description": "The row's time, e.g. `rows[3].ts`"},
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
    "Experiments": {
        "type": "object", "required": ["experiments"],
        "properties": {"experiments": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "unit", "layer", "slice", "salt", "holdout", "coverage", "arms", "within", "hash"],
            "properties": {
                "name": {"type": "string"},
                "unit": {"type": "object", "required": ["entity", "key", "type"],
                         "properties": {k: {"type": "string"} for k in ("entity", "key", "type")}},
                "layer": {"type": "string"},
                "slice": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                          "description": "the percent range of the layer the experiment owns"},
                "salt": {"type": "string"},
                "holdout": {"type": "number", "description": "percent of units held out"},
                "coverage": {"type": "number", "description": "percent of each arm's range assigned so far"},
                "arms": {"type": "array", "items": {"type": "object", "required": ["name", "percent"],
                                                    "properties": {"name": {"type": "string"},
                                                                   "percent": {"type": "number"}}}},
                "within": {"type": ["object", "null"], "description": "the parent experiment's arm, when nested",
                           "properties": {"experiment": {"type": "string"}, "arm": {"type": "string"}}},
                "hash": {"type": "string", "description": "the assignment hash version (docs/language.md)"},
            }}}},
    },
    "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}


def _plan_schemas(plan: ir.Plan, max_batch: int, max_push_rows: int) -> dict:
    """SCHEMAS with the request bodies of `plan`: one alternative per service version and per source."""
    schemas = {k: v for k, v in SCHEMAS.items() if k not in ("FeaturesRequest", "PushRequest")}
    services, sources = [], []
    for svc in plan.services:
        name = f"Features_{svc.name}_v{svc.version}"
        schemas[name] = request_schema.features_request(service_info(plan, svc), max_batch)
        services.append(_ref(name))
    for src in plan.sources:
        name = f"Push_{src.name}"
        schemas[name] = request_schema.push_request(src, max_push_rows)
        sources.append(_ref(name))
    schemas["FeaturesRequest"] = {"oneOf": services, "description": "One service version's request"}
    schemas["PushRequest"] = {"oneOf": sources, "description": "Rows of one source"}
    return dict(sorted(schemas.items()))


def document(plan: ir.Plan | None = None, max_batch: int = MAX_BATCH,
             max_push_rows: int = MAX_PUSH_ROWS) -> dict:
    """The OpenAPI document of a server of `plan` with these limits (None: for any project)."""
    post = {"requestBody": None, "security": [{}, {"bearer": []}]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "astra serve", "version": VERSION,
                 "description": "Versioned feature serving from the astra online store. See docs/serving.md."},
        "servers": [{"url": "http://127.0.0.1:8000"}],
        "components": {
            "schemas": {**(SCHEMAS if plan is None else _plan_schemas(plan, max_batch, max_push_rows)),
                        **neighbors.schemas(plan)},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/features": {"post": {
                **post, "operationId": "getFeatures", "summary": "Feature values for a batch of entities",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FeaturesRequest")}}},
                "responses": {"200": {**_json(_ref("FeaturesResponse"), "Values in service order"),
                                      "headers": {"Deprecation": {"schema": {"type": "string"}},
                                                  "Warning": {"schema": {"type": "string"}}}},
                              **_errors(400, 401, 404, 409, 413, 422, 503)}}},
            "/v1/push": {"post": {
                **post, "operationId": "push", "summary": "Push rows of a source; answered once they are durable",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PushRequest")}}},
                "responses": {"200": _json(_ref("PushResponse"), "Rows stored (late rows listed as rejected)"),
                              **_errors(400, 401, 403, 404, 413, 422, 503)}}},
            "/v1/registry": {"get": {
                "operationId": "registry", "summary": "Entities, sources, groups and services with their versions",
                "security": [{}, {"bearer": []}],
                "responses": {"200": _json(_ref("Registry"), "The registry"), **_errors(401)}}},
            "/v1/experiments": {"get": {
                "operationId": "experiments", "summary": "The plan's A/B experiments as declared",
                "security": [{}, {"bearer": []}],
                "responses": {"200": _json(_ref("Experiments"), "Every experiment"), **_errors(401)}}},
            "/v1/neighbors": neighbors.path(_ref, _json, _errors),
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


def dumps(plan: ir.Plan | None = None, max_batch: int = MAX_BATCH,
          max_push_rows: int = MAX_PUSH_ROWS) -> bytes:
    """The document exactly as served (and committed, plus a final newline)."""
    return orjson.dumps(document(plan, max_batch, max_push_rows), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


if __name__ == "__main__":
    from astra.project import Project

    project = sys.argv[1] if len(sys.argv) > 1 else "features"
    sys.stdout.buffer.write(dumps(Project.load(project).plan) + b"\n")
