"""Per-entity lifetime state in the Redis store: the mergeable tile below the eviction cutoff.

A table whose lifetime aggregations can fold evicted rows into running state (counts, sums,
moments, extremes, first/last, last_k: `TableSpec.mergeable`) keeps, per entity, one state value
beside its rows: the slot's running state after eviction at some cutoff c, and c itself.  (Such
a table keeps no row before c: only snapshots are read as of a time, and a snapshot is never
aggregated, so a table with lifetime state has no as-of lookups.)  A read then needs the state
plus the rows at or after c instead of the entity's whole history, and folds the rest the way
the embedded store does, with its own eviction code, in its own steps: every cutoff the shared watermark
moved to is kept, in order, in the meta hash, and a read evicts at each one past the entity's
state in turn.  Folding in the same steps gives the same bits (moments and double-double sums
depend on how rows are grouped into steps, not only on which rows were folded).

The state is a deterministic function of the rows below c (no row can arrive below a cutoff
once set: it would be later than the allowed lateness), so any reader that folded further writes
it back, only ever replacing an older state; concurrent readers write the same value.

Value format: b"<cutoff>|" + JSON {"s": {slot array: value}}; string values (dictionary codes
in the table) are kept as strings, floats as JSON numbers (Python's repr round-trips every
double; NaN and infinities included).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from astra.online.layout import TableSpec, input_id
from astra.online.table import Table

# KEYS[1]: an entity's state.  ARGV: its cutoff, the value.  Only a state folded further wins.
SET_NEWER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = tonumber(string.match(cur, '^(%-?%d+)|'))
  if c and c >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

_DERIVED = ("start", "len", "cap")  # positions, set by the load
_BOUNDS = ("shm:", "sem:", "slast:")  # float-sum error bounds of the retained rows, derived by the load
_VALUE_KEYS = ("efv", "elv", "ex", "lk")  # slot arrays holding a column's values (codes for strings)


def stateful(spec: TableSpec) -> bool:
    """Whether the table keeps lifetime state of evicted rows (so a state bounds its reads)."""
    return spec.evict_window is not None and not spec.asof and any(i.lifetime for i in spec.inputs)


def suffix(spec: TableSpec, cut_field: str) -> bytes:
    """What names a table's state after the entity's row key: a hash of its layout and cutoff
    field, so replicas serving other services (other layouts) or another lateness keep their own."""
    doc = json.dumps([spec.columns, [[*input_id(i), sorted(i.needs), sorted(map(repr, i.windows)), i.lifetime,
                                      i.last_k] for i in spec.inputs], spec.evict_window, spec.asof, cut_field])
    return b":s:" + hashlib.blake2b(doc.encode(), digest_size=6).hexdigest().encode()


def history(meta: dict, cut_field: str) -> list[int]:
    """The cutoffs a table was evicted at, oldest first (a namespace written before the history
    was kept: its current cutoff alone)."""
    got = meta.get("h" + cut_field)
    if got:
        return [int(c) for c in got.split(",")]
    cut = meta.get(cut_field)
    return [] if cut is None else [int(cut)]


def _column_of(tb: Table, key: str) -> str | None:
    """The column whose values slot array `key` holds (None: a count, sum or flag)."""
    parts = key.split(":")
    if parts[0] not in _VALUE_KEYS:
        return None
    i = int(parts[2] if parts[0] == "ex" else parts[1])
    return tb.inputs[i].column


def parse(blob: bytes) -> tuple[int, dict]:
    """(cutoff, slot values) of a stored state."""
    head, _, body = blob.partition(b"|")
    doc = json.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc["s"], dict):
        raise ValueError("not a state")
    return int(head), doc["s"]


def encode(tb: Table, slot: int, cutoff: int) -> bytes:
    """The state of `slot` after eviction at `cutoff`: its running state."""
    values = {}
    for k, a in tb.slot.items():
        if k in _DERIVED or k.startswith(_BOUNDS):
            continue
        v = a[slot].item()
        column = _column_of(tb, k)
        if column is not None and column in tb.dicts:
            v = str(tb.decode(column, np.array([v], a.dtype))[0]) if tb.dicts[column][0] else None
        values[k] = v
    return f"{cutoff}|".encode() + json.dumps({"s": values}, separators=(",", ":")).encode()


def apply(tb: Table, slot: int, values: dict) -> None:
    """Set a slot's running state from a parsed state (after its rows were loaded)."""
    for k, v in values.items():
        if k not in tb.slot or v is None:
            continue
        column = _column_of(tb, k)
        if column is not None and column in tb.dicts:
            v = int(tb.encode(column, np.array([v]))[0])
        elif column is not None and column in tb.narrow and not -2**31 <= v < 2**31:
            tb._widen(column)  # as the embedded store widened when the value was pushed
        tb.slot[k][slot] = v


def replay(tb: Table, steps: list[int]) -> None:
    """Evict at each cutoff in turn (ascending), as the embedded store did when the watermark
    moved; a step that would evict no row only moves the table's cutoff."""
    S = tb.slot
    keep = int(tb.keep_last)
    for c in steps:
        if tb.cutoff is not None and c <= tb.cutoff:
            continue
        st, ln = S["start"][:tb.n_slots].astype(np.int64), S["len"][:tb.n_slots].astype(np.int64)
        some = ln > keep
        if some.any() and (tb.pos["time"][st[some] + keep] < c).any():
            tb.evict(c)
        else:
            tb.cutoff = c
