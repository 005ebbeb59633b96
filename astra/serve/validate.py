"""Request bodies -> checked, normalised queries, or an `ApiError` that says where the body is wrong.

Every message is located the way a client would write the path (`entities[3].user_id: expected
int64, got string`), and errors that name something unknown list what exists.  Nothing here
touches the store: validation is done against the plan, so a bad request never reaches it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import time
from collections import deque
from typing import Any

import attrs
import orjson

from astra.lang.types import Type
from astra.plan import ir

# timestamps: years 1 to 9999, as ISO 8601 can write them (and far from int64 overflow in `t - window`)
INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1),
              "timestamp": (-62_135_596_800_000_000, 253_402_300_799_999_999), "duration": (-(2**62), 2**62)}
_TS_LO, _TS_HI = INT_RANGE["timestamp"]
# The ISO 8601 strings a timestamp may be, defined once for the validator and the JSON Schema
# (`request_schema`), so both accept exactly the same ones: a date (years 1-9999, 29 February of
# leap years only), optionally a time (hh:mm, :ss, up to 6 fraction digits) and then `Z` or an
# offset.  `datetime.fromisoformat` alone reads more (`2026-03-01+02:00` as 02:00, `T12`, `,5`).
_YEAR = "([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
_LEAP_YEAR = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = ("((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
              "|02-(0[1-9]|1[0-9]|2[0-8]))")
_CLOCK = "(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?"
ISO_PATTERN = f"^({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29){_CLOCK}$"
_ISO = re.compile(ISO_PATTERN)
_EPOCH = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)
MAX_ERRORS = 100  # per-row error reports stop here; the count says how many there were
# The strings answers write for non-finite floats (`json_floats`), read back as those floats in a
# pushed row's float column and in a float request field, so a client can send what it received;
# exactly these spellings, and nowhere else (not in keys, not for ints)
NON_FINITE_INPUTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class ApiError(Exception):
    """A 4xx (or 503) answer: HTTP status, a stable code, a message, where, and what exists."""

    def __init__(self, status: int, code: str, message: str, location: str | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.location, self.extra = status, code, message, location, extra

    def body(self) -> dict:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.location is not None:
            err["location"] = self.location
        err.update(self.extra)
        return {"error": err}


def type_name(v: object) -> str:
    """The JSON name of a parsed value, for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


_HIDDEN_COLON = re.compile(rb"\\u003[aA]")  # the one escape that writes a `:` (other escapes do not)
MAX_DEPTH = 254  # the deepest document orjson re-encodes; a request needs a handful of levels


def parse_json(body: bytes) -> Any:
    """orjson, with a 400 that says where the document stops being JSON, or which key of an object
    appears twice (orjson keeps the last value silently; which one counts is undefined in JSON)."""
    if not body:
        raise ApiError(400, "malformed_json", "the request body is empty; send a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the request body is not valid JSON: {exc}") from None
    # orjson keeps the last of repeated keys silently.  Each key is followed by exactly one `:`, and
    # its re-encoding keeps every string's colons and drops only repeated keys (and their values), so
    # the text has as many `:` as the re-encoding exactly when no key repeats (unless `\u003a`
    # hides a colon): two byte counts in the common case, the exact (slower) parse otherwise.
    if type(doc) is dict:
        try:
            again = orjson.dumps(doc)
        except orjson.JSONEncodeError:  # orjson writes 254 levels at most, json.loads stops near 1000
            raise ApiError(400, "malformed_json", f"the request body is nested too deeply: more than "
                           f"{MAX_DEPTH} levels of arrays and objects") from None
        if _HIDDEN_COLON.search(body) or body.count(b":") != again.count(b":"):
            _reject_duplicates(body)
    return doc


class _Pairs(dict):
    """A parsed object that remembers the first key written twice in it."""

    repeated: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        obj.repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
    return obj


def _reject_duplicates(body: bytes) -> None:
    """Raise a located 400 for the outermost object with a repeated key, if there is one."""
    doc = json.loads(body, object_pairs_hook=_pairs)
    todo: deque[tuple[object, str]] = deque([(doc, "")])  # breadth first: the outermost repeat
    while todo:
        v, where = todo.popleft()  # (list.pop(0) made a 4 MB body minutes of work)
        if isinstance(v, _Pairs):
            if v.repeated is not None:
                at = f"{where}{'.' if where else ''}{v.repeated}"
                raise ApiError(400, "duplicate_key", f"{at}: the key appears more than once in one object; "
                               f"which value counts is undefined, so send it once", at)
            todo.extend((x, f"{where}{'.' if where else ''}{k}") for k, x in v.items())
        elif isinstance(v, list):
            todo.extend((x, f"{where}[{j}]") for j, x in enumerate(v))


def did_you_mean(name: str, choices) -> str:
    """` (did you mean `x`?)` when one of `choices` is close to `name`, else an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.75)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _integral(v: object) -> object:
    """`1.0` as `1`: JSON (and JSON Schema) do not tell 1.0 from 1, only the parser does.  Only up to
    2**53, where every integer is a float: past it the parser may already have rounded the number."""
    return int(v) if type(v) is float and v.is_integer() and abs(v) <= 2**53 else v


def _timestamp(v: object, where: str) -> int:
    """A timestamp: µs since the epoch (integer) or an ISO 8601 string (naive means UTC)."""
    v = _integral(v)
    if isinstance(v, int) and not isinstance(v, bool):
        lo, hi = INT_RANGE["timestamp"]
        if not lo <= v <= hi:
            raise ApiError(422, "invalid_value", f"{where}: {v} is out of range for timestamp", where)
        return v
    if isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v) if _ISO.fullmatch(v) else None
        except ValueError:  # the pattern admits only what it reads; kept as a guard, never a 500
            t = None
        if t is None:
            raise ApiError(422, "invalid_value", f"{where}: {v[:64]!r} is not an ISO 8601 timestamp in years "
                           f"1-9999 (e.g. 2026-03-01, 2026-03-01T12:30:00, 2026-03-01T12:30:00+02:00)", where)
        us = (t.replace(tzinfo=None) - _EPOCH) // _US
        # the offset applied in µs: 0001-01-01T00:00+01:00 is a valid time a datetime cannot hold in UTC
        return us if t.tzinfo is None else us - t.utcoffset() // _US
    raise ApiError(422, "invalid_type", f"{where}: expected timestamp (µs integer or ISO 8601 string), "
                   f"got {type_name(v)}", where)


def value(v: object, t: Type, where: str, non_finite: bool = False) -> object:
    """Check one JSON value against a column type (nullability included); returns the store's value.
    With `non_finite`, a float type also takes "NaN", "Infinity" and "-Infinity"."""
    if v is None:
        if t.optional:
            return None
        raise ApiError(422, "invalid_type", f"{where}: expected {t}, got null", where)
    name = t.name
    if name == "timestamp":
        return _timestamp(v, where)
    ok: bool
    if name == "bool":
        ok = isinstance(v, bool)
    elif name in ("int32", "int64", "duration"):
        v = _integral(v)
        ok = isinstance(v, int) and not isinstance(v, bool)
        if ok:
            lo, hi = INT_RANGE[name]
            if not lo <= v <= hi:
                raise ApiError(422, "invalid_value", f"{where}: {v} is out of range for {name}", where)
    elif name in ("float32", "float64"):
        ok = isinstance(v, int | float) and not isinstance(v, bool)
        if ok:
            return float(v)
        if non_finite and isinstance(v, str) and v in NON_FINITE_INPUTS:
            return NON_FINITE_INPUTS[v]
    elif name == "string":
        ok = isinstance(v, str)
    else:  # lists and vectors are never inputs
        ok = False
    if not ok:
        raise ApiError(422, "invalid_type", f"{where}: expected {t.non_null()}, got {type_name(v)}", where)
    return v


def _vector(v: object, t: Type, where: str) -> list[float]:
    """A pushed vector: a JSON array of exactly N finite numbers within float32's range, or a sparse
    vector {"indices": [...], "values": [...]} (`astra.sparse`), made dense here."""
    from astra.ops.vectors import vector_error
    from astra.sparse import SparseError, from_index_map

    if isinstance(v, dict):  # sparse: {"3": 0.5, ...}
        try:
            return from_index_map(v, t.size).tolist()
        except SparseError as exc:
            raise ApiError(422, "invalid_value", f"{where}: sparse vector: {exc}", where) from None

    why = vector_error(v, t) if isinstance(v, list) else f"is not a `{t.non_null()}` (an array of {t.size} numbers)"
    if why is not None:
        raise ApiError(422, "invalid_value", f"{where}: {type_name(v)} {why}", where)
    return [float(x) for x in v]


def _object(v: object, where: str) -> dict:
    if not isinstance(v, dict):
        raise ApiError(422, "invalid_type", f"{where}: expected object, got {type_name(v)}", where)
    return v


def _fields(obj: dict, allowed: tuple[str, ...], required: tuple[str, ...], where: str) -> None:
    for k in obj:
        if k not in allowed:
            raise ApiError(422, "unknown_field", f"{where}{'.' if where else ''}{k}: unknown field; "
                           f"allowed: {', '.join(allowed)}", f"{where}{'.' if where else ''}{k}",
                           allowed=list(allowed))
    for k in required:
        if k not in obj:
            raise ApiError(422, "missing_field", f"{where}{'.' if where else ''}{k}: required",
                           f"{where}{'.' if where else ''}{k}")


# --------------------------------------------------------------------------- /v1/features


@attrs.frozen
class ServiceInfo:
    """What the server needs per service, computed once from the plan."""

    service: ir.Service
    names: tuple[str, ...]  # output names, service order
    types: tuple[str, ...]  # their types as written in .feat files
    key_names: tuple[str, ...]  # every key column a query row must carry
    key_types: tuple[Type, ...]
    entity_keys: tuple[tuple[str, tuple[str, ...]], ...]  # (entity, its key names) per service entity
    entity_pos: tuple[tuple[str, tuple[int, ...]], ...]  # (entity, positions of its keys in key_names)
    request_fields: tuple[tuple[str, str, Type], ...]  # (qualified name, field, type)
    reads_data: tuple[bool, ...]  # per output: does it read any source (else it can never be missing)
    sources: tuple[tuple[str, ...], ...]  # per output: the sources it reads, transitively
    deprecated: str | None  # why, when a group it pins is deprecated
    id: str  # `name@vN`
    # request field as a client may write it (`amount` or `checkout.amount`) -> (qualified name, type);
    # a bare name two requests share means the first
    request_by_name: dict[str, tuple[str, Type]] = attrs.field(factory=dict, eq=False)


def service_info(plan: ir.Plan, svc: ir.Service) -> ServiceInfo:
    key_names: list[str] = []
    key_types: list[Type] = []
    entity_keys = []
    for ename in svc.entities:
        ent = plan.entity(ename)
        entity_keys.append((ename, tuple(k for k, _ in ent.keys)))
        for k, t in ent.keys:
            if k not in key_names:
                key_names.append(k)
                key_types.append(t.non_null())
    fields = []
    for rname in svc.requests:
        req = next(r for r in plan.requests if r.name == rname)
        fields.extend((f"{rname}.{f}", f, t) for f, t in req.fields)
    sources = []
    for out in svc.outputs:
        srcs: set[str] = set()
        for f in plan.closure((out.feature,)):
            for n in ir.walk(f.expr):
                if isinstance(n, ir.AsOf | ir.Aggregate):
                    srcs.add(n.key.source)
        sources.append(tuple(sorted(srcs)))
    groups = {(o.feature.split("@v")[0], int(o.feature.split("@v")[1].split(".")[0])) for o in svc.outputs}
    notes = [f"{g.id} is deprecated: {g.deprecated}" for g in plan.groups
             if (g.name, g.version) in groups and g.deprecated]
    return ServiceInfo(
        service=svc, names=tuple(o.name for o in svc.outputs),
        types=tuple(str(plan.feature(o.feature).type) for o in svc.outputs),
        key_names=tuple(key_names), key_types=tuple(key_types), entity_keys=tuple(entity_keys),
        entity_pos=tuple((e, tuple(key_names.index(k) for k in ks)) for e, ks in entity_keys),
        request_fields=tuple(fields), reads_data=tuple(bool(s) for s in sources), sources=tuple(sources),
        deprecated="; ".join(notes) or None, id=svc.id, request_by_name=_by_name(fields))


def _by_name(fields: list[tuple[str, str, Type]]) -> dict[str, tuple[str, Type]]:
    by_name: dict[str, tuple[str, Type]] = {}
    for q, f, t in fields:
        by_name[q] = (q, t)
        by_name.setdefault(f, (q, t))
    return by_name


@attrs.frozen
class FeaturesQuery:
    """A checked `/v1/features` request."""

    info: ServiceInfo
    keys: list[tuple]  # per entity: its key values in key_names order (typed, checked)
    at: int | list[int] | None  # µs; None means now; a list when an entity has its own
    request: dict | list[dict] | None  # store format: {qualified field: value}, or one dict per entity
    request_keys: list[tuple] | None  # per entity, hashable request values (cache keys)
    select: tuple[int, ...] | None  # indexes of the requested outputs (None: all)


FEATURE_FIELDS = ("service", "version", "entities", "at", "request", "features")
# Beside its key columns an entity may carry its own `at` and `request`, which replace the top-level
# ones for it (a key column named `at` wins: that entity then takes the top-level time only).
ENTITY_FIELDS = ("at", "request")


def features_query(doc: object, services: dict[tuple[str, int], ServiceInfo], max_batch: int) -> FeaturesQuery:
    """Check a `/v1/features` body against the plan."""
    doc = _object(doc, "body")
    if isinstance(doc.get("service"), str) and "@" in doc["service"]:
        raise _versioned_name(doc["service"], services)
    _fields(doc, FEATURE_FIELDS, ("service", "version", "entities"), "")
    name, version = doc["service"], _integral(doc["version"])
    if not isinstance(name, str):
        raise ApiError(422, "invalid_type", f"service: expected string, got {type_name(name)}", "service")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ApiError(422, "invalid_type", f"version: expected integer, got {type_name(version)}", "version")
    info = services.get((name, version))
    if info is None:
        versions = sorted(v for n, v in services if n == name)
        if not versions:
            known = sorted({n for n, _ in services})
            raise ApiError(404, "unknown_service", f"unknown service `{name}`{did_you_mean(name, known)}; "
                           f"services: {', '.join(known)}", "service", available=known)
        raise ApiError(404, "unknown_version", f"service `{name}` has no version {version}; available: "
                       + ", ".join(f"v{v}" for v in versions), "version", available=versions)
    ents = doc["entities"]
    if not isinstance(ents, list):
        raise ApiError(422, "invalid_type", f"entities: expected array, got {type_name(ents)}", "entities")
    if not ents:
        raise ApiError(422, "invalid_value", "entities: send at least one entity", "entities")
    if len(ents) > max_batch:
        raise ApiError(422, "batch_too_large", f"entities: {len(ents)} entities in one request; the limit is "
                       f"{max_batch} (--max-batch)", "entities", limit=max_batch)
    names, types = info.key_names, info.key_types
    keys = []
    own_at: dict[int, int] = {}  # per-entity values, only for the entities that carry them
    own_req: dict[int, dict] = {}
    for j, e in enumerate(ents):
        if type(e) is not dict:
            _object(e, f"entities[{j}]")
        own = False
        for k in e:
            if k not in names:
                if k in ENTITY_FIELDS:
                    own = True
                    continue
                where = f"entities[{j}]"
                raise ApiError(422, "unknown_key", f"{where}.{k}: `{info.id}` is keyed by "
                               f"{', '.join(names)}, not `{k}`{did_you_mean(k, names + ENTITY_FIELDS)} (an entity "
                               f"holds its key columns, and optionally its own `at` and `request`)", f"{where}.{k}",
                               keys=list(names))
        row = []
        for k, t in zip(names, types):
            if k not in e:
                where = f"entities[{j}]"
                raise ApiError(422, "missing_key", f"{where}.{k}: required (`{info.id}` is keyed by "
                               f"{', '.join(names)})", f"{where}.{k}", keys=list(names))
            v = e[k]
            # fast path for the common case: an int64 key given as an in-range integer
            if t.name == "int64" and type(v) is int and -(2**63) <= v < 2**63:
                row.append(v)
            else:
                row.append(value(v, t, f"entities[{j}].{k}"))
        keys.append(tuple(row))
        if own:
            _own_fields(e, j, info, own_at, own_req)
    at = doc.get("at")
    if type(at) is list:
        raise ApiError(422, "invalid_type", "at: expected one time for every entity, got array; to give an entity "
                       "its own time, put `at` in the entity (`entities[0].at`)", "at")
    if at is not None:
        at = _timestamp(at, "at")
    if own_at:
        default = at if at is not None else time.time_ns() // 1000  # absent means now, as for the top level
        at = [own_at.get(j, default) for j in range(len(ents))]
    request, request_keys = _request(doc.get("request"), info, len(ents), own_req)
    select = None
    if doc.get("features") is not None:
        want = doc["features"]
        if not isinstance(want, list):
            raise ApiError(422, "invalid_type", f"features: expected array, got {type_name(want)}", "features")
        idx = []
        for j, f in enumerate(want):
            if not isinstance(f, str):
                raise ApiError(422, "invalid_type", f"features[{j}]: expected string, got {type_name(f)}",
                               f"features[{j}]")
            if f not in info.names:
                raise ApiError(422, "unknown_feature", f"features[{j}]: `{info.id}` has no feature `{f}`"
                               f"{did_you_mean(f, info.names)}; "
                               f"features: {', '.join(info.names)}", f"features[{j}]", available=list(info.names))
            idx.append(info.names.index(f))
        select = tuple(idx)
    return FeaturesQuery(info, keys, at, request, request_keys, select)


def _own_fields(e: dict, j: int, info: ServiceInfo, own_at: dict[int, int], own_req: dict[int, dict]) -> None:
    """An entity's own `at` and `request` (null: as if absent, the top-level one applies)."""
    t = e.get("at")
    if t is not None and "at" not in info.key_names:
        own_at[j] = t if type(t) is int and _TS_LO <= t <= _TS_HI else _timestamp(t, f"entities[{j}].at")
    req = e.get("request")
    if req is None:
        return
    where = f"entities[{j}]"
    if not info.request_fields:
        if req != {}:
            raise ApiError(422, "unknown_field", f"{where}.request: `{info.id}` takes no request fields",
                           f"{where}.request")
        return
    own_req[j] = _request_row(req, info, f"{where}.request")


def _versioned_name(ref: str, services: dict[tuple[str, int], ServiceInfo]) -> ApiError:
    """The 404 for `"service": "name@vN"`: the name and the version go in separate fields."""
    name, _, tail = ref.partition("@")
    versions = sorted(v for n, v in services if n == name)
    if not versions:
        known = sorted({n for n, _ in services})
        return ApiError(404, "unknown_service", f"unknown service `{ref}`{did_you_mean(name, known)}: `service` "
                        f"is the name alone and `version` the number; services: {', '.join(known)}", "service",
                        available=known)
    asked = tail[1:] if tail[:1] in ("v", "V") else tail
    if asked.isdigit() and int(asked) in versions:
        hint = f'send "service": "{name}", "version": {int(asked)}'
    else:
        which = f"no version {int(asked)}" if asked.isdigit() else f"no version `{tail}`"
        hint = f"`{name}` has {which}; available: " + ", ".join(f"v{v}" for v in versions)
    return ApiError(404, "unknown_service", f"unknown service `{ref}`: `service` is the name alone and `version` "
                    f"the number; {hint}", "service", available=versions)


def _request_row(obj: object, info: ServiceInfo, where: str) -> dict:
    obj = _object(obj, where)
    by_name = info.request_by_name
    out, given = {}, {}
    for k, v in obj.items():
        if k not in by_name:
            allowed = [f for _, f, _ in info.request_fields]
            msg = (f"{where}.{k}: `{info.id}` takes no request fields" if not allowed else
                   f"{where}.{k}: unknown request field{did_you_mean(k, by_name)}; fields: {', '.join(allowed)}")
            raise ApiError(422, "unknown_field", msg, f"{where}.{k}", allowed=allowed)
        q, t = by_name[k]
        if q in given:  # `amount` and `checkout.amount` for one entity: which one counts would be arbitrary
            raise ApiError(400, "conflicting_fields", f"{where}: `{given[q]}` and `{k}` both give request field "
                           f"`{q}`; send one of them", f"{where}.{k}", fields=[given[q], k])
        given[q] = k
        out[q] = value(v, t, f"{where}.{k}", non_finite=True)
    row = {}  # in declaration order, whatever the client's: equal inputs give equal cache keys
    for q, f, t in info.request_fields:
        if q in out:
            row[q] = out[q]
        elif t.optional:
            row[q] = None
        else:
            raise ApiError(422, "missing_field", f"{where}.{f}: required by `{info.id}` ({t})", f"{where}.{f}")
    return row


def _request(req: object, info: ServiceInfo, n: int,
             own: dict[int, dict]) -> tuple[dict | list[dict] | None, list[tuple] | None]:
    """The request inputs: the top-level object for every entity, except those with their own."""
    if not info.request_fields:
        if req not in (None, {}):
            raise ApiError(422, "unknown_field", f"request: `{info.id}` takes no request fields", "request")
        return None, None
    if type(req) is list:
        raise ApiError(422, "invalid_type", "request: expected one object for every entity, got array; to give an "
                       "entity its own inputs, put `request` in the entity (`entities[0].request`)", "request")
    if req is None and own:
        if len(own) == n:
            rows = [own[j] for j in range(n)]
            return rows, [tuple(r.values()) for r in rows]
        if any(not t.optional for _, _, t in info.request_fields):
            j = next(j for j in range(n) if j not in own)
            need = ", ".join(f for _, f, t in info.request_fields if not t.optional)
            raise ApiError(422, "missing_field", f"entities[{j}].request: required, as there is no top-level "
                           f"`request` (`{info.id}` needs {need})", f"entities[{j}].request")
    row = _request_row({} if req is None else req, info, "request")
    if not own:
        return row, [tuple(row.values())] * n
    rows = [own.get(j, row) for j in range(n)]
    return rows, [tuple(r.values()) for r in rows]


# --------------------------------------------------------------------------- /v1/push


PUSH_FIELDS = ("source", "rows")


def push_body(doc: object, sources: dict[str, ir.Source], max_rows: int) -> tuple[ir.Source, list]:
    """The source and raw rows of a `/v1/push` body (rows are checked by `push_rows`)."""
    doc = _object(doc, "body")
    _fields(doc, PUSH_FIELDS, PUSH_FIELDS, "")
    name, rows = doc["source"], doc["rows"]
    if not isinstance(name, str):
        raise ApiError(422, "invalid_type", f"source: expected string, got {type_name(name)}", "source")
    if name not in sources:
        known = sorted(sources)
        raise ApiError(404, "unknown_source", f"unknown source `{name}`{did_you_mean(name.partition('@')[0], known)}; "
                       f"sources: {', '.join(known)}", "source", available=known)
    if not isinstance(rows, list):
        raise ApiError(422, "invalid_type", f"rows: expected array, got {type_name(rows)}", "rows")
    if len(rows) > max_rows:
        raise ApiError(422, "batch_too_large", f"rows: {len(rows)} rows in one push; the limit is {max_rows}",
                       "rows", limit=max_rows)
    return sources[name], rows


def push_rows(src: ir.Source, rows: list) -> tuple[list[dict], list[dict], int]:
    """Check every row; returns (normalised rows, errors [{index, location, message}], bad row count).

    Every problem of every row is reported (each unknown, missing or mistyped column), up to
    `MAX_ERRORS` in all.  As `Store.push` (docs/semantics.md, "Nulls in source data"): the time
    and the non-key columns declared without `?` are required; key columns may be null or
    omitted, as long as one of the source's entities has its whole key (the row counts for those);
    optional columns may be omitted."""
    types = dict(src.columns)
    key_columns = {c for k in src.keys for c in k.columns}
    required = {src.time} | {c for c, t in types.items() if not t.optional and c not in key_columns}
    out, errors, n_bad = [], [], 0
    for j, row in enumerate(rows):
        where = f"rows[{j}]"
        if not isinstance(row, dict):
            problems = [(where, f"{where}: expected object, got {type_name(row)}")]
        else:
            norm, problems = {}, []
            for c, v in row.items():
                t = types.get(c)
                if t is None:
                    problems.append((f"{where}.{c}", f"{where}.{c}: `{src.name}` has no column `{c}`"
                                     f"{did_you_mean(c, types)}; columns: {', '.join(types)}"))
                    continue
                if c == src.time:
                    t = t.non_null()
                elif c in key_columns:
                    t = t.nullable()
                try:
                    if t.name == "vector" and v is not None:  # a JSON array of N finite numbers
                        norm[c] = _vector(v, t, f"{where}.{c}")
                        continue
                    norm[c] = value(v, t, f"{where}.{c}", non_finite=c not in key_columns and c != src.time)
                except ApiError as exc:
                    problems.append((exc.location or f"{where}.{c}", exc.message))
            for c, t in types.items():
                if c not in row:
                    if c in required:
                        problems.append((f"{where}.{c}", f"{where}.{c}: required ({t})"))
                    else:
                        norm[c] = None
            if src.keys and not any(all(row.get(c) is not None for c in k.columns) for k in src.keys):
                keys = "; ".join(f"{e}: {', '.join(k.columns)}" for e, k in zip(src.entities, src.keys))
                problems.append((where, f"{where}: a null or missing key for every entity of `{src.name}` ({keys}); "
                                 f"the row would be visible to none"))
            if not problems:
                out.append(norm)
                continue
        n_bad += 1
        room = MAX_ERRORS - len(errors)
        errors.extend({"index": j, "location": at, "message": msg} for at, msg in problems[:room])
    return out, errors, n_bad
