"""IR <-> plain data (JSON-ready dicts), for `build/plan.json` and for fingerprints.

Spans, and any field declared with `eq=False`, are left out: the data form is exactly what the
node's equality sees, so equal plans serialise identically.
"""

from __future__ import annotations

import attrs

from astra.lang.types import Type, parse_type
from astra.plan import ir

_NODES = {cls.__name__: cls for cls in (
    ir.Const, ir.Now, ir.Column, ir.RequestInput, ir.EntityKey, ir.SourceKey, ir.AsOf, ir.Aggregate, ir.Apply,
    ir.FeatureRef, ir.Experiment, ir.VectorIndex, ir.PointInTime,
    ir.Entity, ir.Source, ir.Request, ir.Feature, ir.Group, ir.Output, ir.Service, ir.Plan,
)}


def to_data(x):
    """A node, type or value as JSON-compatible data; nodes become dicts tagged with `node`."""
    if isinstance(x, Type):
        return str(x)
    if attrs.has(type(x)):
        out = {"node": type(x).__name__}
        for f in attrs.fields(type(x)):
            if f.eq and f.init:
                v = getattr(x, f.name)
                if v is None and f.metadata.get("omit_none"):  # fields added later keep old plans' data
                    continue
                out[f.name] = to_data(v)
        return out
    if isinstance(x, tuple | list):
        return [to_data(v) for v in x]
    return x


def from_data(d):
    """Inverse of `to_data` for plan data."""
    if isinstance(d, dict) and "node" in d:
        cls = _NODES[d["node"]]
        kwargs = {}
        for f in attrs.fields(cls):
            if f.name in d:
                kwargs[f.name] = _field_value(f, d[f.name])
        return cls(**kwargs)
    if isinstance(d, list):
        return tuple(from_data(v) for v in d)
    return d


def _field_value(f: attrs.Attribute, v):
    if f.name == "type" and isinstance(v, str):
        return parse_type(v)
    if f.name in ("columns", "keys", "fields") and isinstance(v, list) and v and isinstance(v[0], list) \
            and len(v[0]) == 2 and isinstance(v[0][1], str) and not isinstance(v[0][0], dict):
        return tuple((name, parse_type(t)) for name, t in v)
    if f.name == "value" and isinstance(v, list):
        return tuple(v)
    if f.name == "tags" and isinstance(v, list):
        return tuple(v)
    return from_data(v)
