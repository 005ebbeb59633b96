"""A query's request inputs as the compiled plans take them: one `Vec` per field for the
vectorised plan, one dict per entity for the single-entity plan, and the `key:entity.field`
inputs an experiment's `assignment` reads, filled from the queried keys."""

from __future__ import annotations

import numpy as np

from astra.online import ingest
from astra.ops.dtypes import filler, numpy_dtype
from astra.ops.registry import Vec
from astra.times import value_micros


def with_entity_keys(request, key_names: tuple, key_rows: list, names: list[str]):
    """`request` (a dict, a list of per-entity dicts or None) with each `key:entity.field` input
    set from the entities' own keys."""
    try:
        pos = {name: key_names.index(name.split(".", 1)[1]) for name in names}
    except ValueError:
        raise KeyError(f"the query lacks a key of {names}") from None
    keys = {name: [k[p] for k in key_rows] for name, p in pos.items()}
    if isinstance(request, list):
        return [{**r, **{name: keys[name][j] for name in names}} for j, r in enumerate(request)]
    return {**(request or {}), **keys}


def request_vecs(fields: tuple, request, n: int) -> dict[str, Vec]:
    """Request inputs as Vecs: `request` is {field: value or per-entity list} or a list of dicts."""
    out = {}
    rows = request if isinstance(request, list) else None
    for name, t in fields:
        field = name.split(".", 1)[1]
        if rows is not None:
            vals = [r.get(name, r.get(field)) for r in rows]
        else:
            d = request or {}
            v = d.get(name, d.get(field))
            vals = list(v) if isinstance(v, list | tuple | np.ndarray) else [v] * n
        valid = np.array([v is not None for v in vals], bool)
        if t.name == "vector":  # rows of N float32 (HTTP lets only null through: request_schema)
            out[name] = Vec(ingest.vector_rows(vals, t), valid)
            continue
        f = filler(t)
        out[name] = Vec(np.array([f if v is None else value_micros(v) for v in vals],
                                 dtype=numpy_dtype(t)), valid)
    return out


def request_rows(fields: tuple, request, n: int) -> list[dict]:
    """Request inputs per entity as {name.field: value}: numpy scalars of the field's dtype, as
    `request_vecs` converts them (None: null)."""
    vecs = request_vecs(fields, request, n)
    cols = [(name, vecs[name].values, vecs[name].valid.tolist()) for name, _ in fields]
    return [{name: v[j] if ok[j] else None for name, v, ok in cols} for j in range(n)]
