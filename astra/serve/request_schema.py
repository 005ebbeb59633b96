"""JSON Schemas of the request bodies one plan accepts: what `validate.py` checks, written for clients.

Per service version, the exact key columns and their types, the request fields (by name or
qualified, one of the two), the output names; per source, the columns with their types and which
are required.  A body valid under these schemas passes validation and an invalid one fails it
(tests/serve/test_fuzz.py holds the two to that with schemathesis).
"""

from __future__ import annotations

from astra.lang.types import Type
from astra.plan import ir
from astra.serve.validate import INT_RANGE, ISO_PATTERN, NON_FINITE_INPUTS, ServiceInfo


def time_schema() -> dict:
    """A point in time: µs since the epoch (years 1-9999) or an ISO 8601 string (naive means UTC)."""
    lo, hi = INT_RANGE["timestamp"]
    return {"oneOf": [{"type": "integer", "minimum": lo, "maximum": hi},
                      {"type": "string", "pattern": ISO_PATTERN}],
            "description": "µs since the Unix epoch, or an ISO 8601 string (naive means UTC, or `Z` or an offset)"}


def value_schema(t: Type, non_finite: bool = False) -> dict:
    """The JSON values `validate.value` accepts for a column or field of type `t` (with
    `non_finite`, a float also as "NaN", "Infinity" or "-Infinity", as answers write them)."""
    name = t.name
    if name == "timestamp":
        base = time_schema()
    elif name == "bool":
        base = {"type": "boolean"}
    elif name in ("int32", "int64", "duration"):
        lo, hi = INT_RANGE[name]
        base = {"type": "integer", "minimum": lo, "maximum": hi}
    elif name in ("float32", "float64"):
        base = {"type": "number"}
        if non_finite:
            base = {"anyOf": [base, {"enum": list(NON_FINITE_INPUTS)}],
                    "description": "a number, or \"NaN\", \"Infinity\", \"-Infinity\""}
    elif name == "string":
        base = {"type": "string"}
    else:  # lists and vectors are never inputs: only null, when the type allows it
        return {"type": "null"} if t.optional else {"not": {}}
    return {"anyOf": [base, {"type": "null"}]} if t.optional else base


# a number rounds to a finite float32 exactly when its magnitude is below the midpoint between
# float32's largest value and 2**128 (that midpoint itself rounds to even: infinity)
F32_ROUNDS_FINITE_BELOW = 3.4028235677973366e38


def vector_schema(t: Type) -> dict:
    """A pushed vector: N numbers that are finite in float32, or a sparse index -> value object."""
    from astra.sparse import index_map_schema

    number = {"type": "number", "exclusiveMinimum": -F32_ROUNDS_FINITE_BELOW,
              "exclusiveMaximum": F32_ROUNDS_FINITE_BELOW}
    base = {"oneOf": [{"type": "array", "minItems": t.size, "maxItems": t.size, "items": number},
                      index_map_schema(t.size, number)]}
    return {"anyOf": [base, {"type": "null"}]} if t.optional else base


def features_request(info: ServiceInfo, max_batch: int) -> dict:
    """The `/v1/features` body for one service version.

    The top-level `at` and `request` apply to every entity; an entity may carry its own, which
    replace them for it (its `request` complete on its own).  When the service needs request
    inputs, they come from the top level or from every entity: the one cross-field rule, stated
    with `anyOf`, so the schema accepts exactly what the validator does."""
    svc = info.service
    row = _request_row(info)
    no_inputs = {"type": "object", "maxProperties": 0}
    req = {"oneOf": [row or no_inputs, {"type": "null"}]}
    at = {"oneOf": [time_schema(), {"type": "null"}]}
    ent_props = {k: value_schema(t) for k, t in zip(info.key_names, info.key_types)}
    if "at" not in ent_props:  # a key column named `at` is the key
        ent_props["at"] = {**at, "description": "This entity's query time, instead of the top-level `at`"}
    ent_props["request"] = {**req, "description": "This entity's request inputs, instead of the top-level "
                            "`request`"}
    entity = {"type": "object", "additionalProperties": False, "required": list(info.key_names),
              "properties": ent_props}
    props = {
        "service": {"const": svc.name}, "version": {"const": svc.version},
        "entities": {"type": "array", "minItems": 1, "maxItems": max_batch, "items": entity},
        "at": {**at, "description": "Query time of every entity without its own; absent or null: now"},
        "request": {**req, "description": "Request inputs of every entity without its own"},
        "features": {"oneOf": [{"type": "array", "items": {"enum": list(info.names)}}, {"type": "null"}]},
    }
    body = {"type": "object", "additionalProperties": False, "required": ["service", "version", "entities"],
            "properties": props, "description": f"`{info.id}`: keyed by {', '.join(info.key_names) or 'nothing'}"}
    if any(not t.optional for _, _, t in info.request_fields):
        given = {"required": ["request"], "properties": {"request": {"type": "object"}}}
        body["anyOf"] = [given, {"properties": {"entities": {"items": given}}}]
    return body


def _request_row(info: ServiceInfo) -> dict | None:
    """One entity's request inputs: each field by its name or qualified, never both."""
    if not info.request_fields:
        return None
    by_name: dict[str, str] = {}
    for q, f, _ in info.request_fields:
        by_name[q] = q
        by_name.setdefault(f, q)  # as `validate`: a bare name shared by two requests means the first
    props, required, rules = {}, [], []
    for q, f, t in info.request_fields:
        names = [q, f] if by_name[f] == q else [q]
        for n in names:
            props[n] = value_schema(t, non_finite=True)
        if len(names) == 2 and not t.optional:
            rules.append({"oneOf": [{"required": [q]}, {"required": [f]}]})
        elif len(names) == 2:
            rules.append({"not": {"required": names}})
        elif not t.optional:
            required.append(q)
    row = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        row["required"] = required
    if rules:
        row["allOf"] = rules
    return row


def push_request(src: ir.Source, max_rows: int) -> dict:
    """The `/v1/push` body for one source: the time and the non-key columns declared without `?`
    are required; key columns may be null or left out, as long as one entity's key is whole."""
    keys = {c for k in src.keys for c in k.columns}
    cols = dict(src.columns)
    props = {c: value_schema(t.non_null()) if c == src.time else value_schema(t.nullable()) if c in keys
             else vector_schema(t) if t.name == "vector" else value_schema(t, non_finite=True)
             for c, t in cols.items()}
    row = {"type": "object", "additionalProperties": False,
           "required": [c for c, t in cols.items() if c == src.time or (c not in keys and not t.optional)],
           "properties": props}
    if src.keys:  # visible to at least one entity: some entity's key columns present and not null
        whole = [{"required": list(k.columns), "properties": {c: {"not": {"type": "null"}} for c in k.columns}}
                 for k in src.keys]
        row["anyOf"] = whole
    return {"type": "object", "additionalProperties": False, "required": ["source", "rows"],
            "properties": {"source": {"const": src.name},
                           "rows": {"type": "array", "maxItems": max_rows, "items": row}}}
