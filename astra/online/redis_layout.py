"""How the Redis store lays rows out: URLs, per-entity keys, packed columnar chunks and the Lua
scripts that append, register cutoffs, advance them and fetch, each run in one round trip.

`astra.online.redis_store` holds the store itself (pushes, reads, materialize) on top of these.
"""

from __future__ import annotations

import json
import struct
from urllib.parse import urlsplit

import numpy as np

from astra.online.errors import OnlineError
from astra.ops.dtypes import numpy_dtype
from astra.ops.registry import Vec
from astra.plan import ir

_HEAD = struct.Struct("<II")  # rows, bytes of string values after the records

# KEYS[1]: an entity's rows, KEYS[2]: their version.  ARGV: score (the chunk's newest time), member
# (seq + chunk), trim cutoff ("" = keep all), keep_last (1: keep the newest chunk before the cutoff,
# for as-of reads), expire-at in ms (0: no TTL; only ever moved later), the chunk's push sequence.
# The version is the sequence of the latest append: unique in the namespace (never reused, even
# once the key expired), so a reader holding the entity's rows at that version has them all.
_APPEND = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[6])
if ARGV[3] ~= '' then
  local n = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[3])
  if ARGV[4] == '1' then n = n - 1 end
  if n > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - 1) end
end
local e = tonumber(ARGV[5])
if e > 0 then
  local cur = redis.call('PEXPIRETIME', KEYS[1])
  if cur < e then redis.call('PEXPIREAT', KEYS[1], e) end
  cur = redis.call('PEXPIRETIME', KEYS[2])
  if cur < e then redis.call('PEXPIREAT', KEYS[2], e) end
end
return 1
"""

# The source's registry of cutoffs ("cuts:" .. source: "field K step" entries, ';'-separated):
# every replica registers its tables' (field, K, step), so a push through any replica moves the
# cutoffs of every layout, as an embedded store of that layout fed the same pushes moves its own.
# ARGV[1]: source, then from ARGV[first] on, (field, K, step) triplets to register.
_REGISTRY = """
local function register(first)
  local rf = 'cuts:' .. ARGV[1]
  local reg = redis.call('HGET', KEYS[1], rf) or ''
  local changed = false
  for i = first, #ARGV, 3 do
    local e = ARGV[i] .. ' ' .. ARGV[i + 1] .. ' ' .. ARGV[i + 2]
    if not string.find(';' .. reg .. ';', ';' .. e .. ';', 1, true) then
      reg = (reg == '' and e) or (reg .. ';' .. e)
      changed = true
    end
  end
  if changed then redis.call('HSET', KEYS[1], rf, reg) end
  return reg
end
"""
_REGISTER = _REGISTRY + """
register(2)
return 1
"""

# KEYS[1]: the meta hash.  ARGV: source, the batch's newest time, then this replica's evicting
# tables (field, K, step), registered.  The watermark only grows; each registered table's cutoff
# becomes watermark - K when that is at least `step` past the current one (the embedded store's
# amortised eviction), and is appended to the field's history ("h" .. field: the cutoffs in
# order, as a read replays them).
_ADVANCE = _REGISTRY + """
local f = 'wm:' .. ARGV[1]
local t = tonumber(ARGV[2])
local cur = redis.call('HGET', KEYS[1], f)
if cur and tonumber(cur) > t then t = tonumber(cur) end
redis.call('HSET', KEYS[1], f, string.format('%.0f', t))
for e in string.gmatch(register(3), '[^;]+') do
  local field, k, step = string.match(e, '^(%S+) (%S+) (%S+)$')
  local c = t - tonumber(k)
  local old = redis.call('HGET', KEYS[1], field)
  if (not old) or c - tonumber(old) >= tonumber(step) then
    local txt = string.format('%.0f', c)
    redis.call('HSET', KEYS[1], field, txt)
    local h = redis.call('HGET', KEYS[1], 'h' .. field) or old
    redis.call('HSET', KEYS[1], 'h' .. field, h and (h .. ',' .. txt) or txt)
  end
end
return 1
"""


# KEYS[1]: the meta hash, then per entity its row key, its version key and, for a stateful table,
# its state key.  ARGV: per entity a flag (1 when a state key follows) and the version the reader
# holds ('' for none).  Returns the meta hash flattened, then per entity its version and either 0
# (the reader's version is current: nothing more sent) or its state ('' when none) and its chunks:
# those that may hold a row at or after the state's cutoff (score: a chunk's newest time), else
# all.  One command, one reply parsed in C: a read's round trip (on a cluster this becomes one
# call per node, keys grouped by hash slot).
_FETCH = """
local out = {redis.call('HGETALL', KEYS[1])}
local k = 2
for j = 1, #ARGV, 2 do
  local stateful = ARGV[j] == '1'
  local v = redis.call('GET', KEYS[k + 1]) or ''
  out[#out + 1] = v
  if v ~= '' and v == ARGV[j + 1] then
    out[#out + 1] = 0
  else
    local st = ''
    local from = '-inf'
    if stateful then
      st = redis.call('GET', KEYS[k + 2]) or ''
      if st ~= '' then from = string.match(st, '^(%-?%d+)|') or '-inf' end
    end
    out[#out + 1] = st
    out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[k], from, '+inf')
  end
  k = k + (stateful and 3 or 2)
end
return out
"""


def parse_url(url: str) -> str:
    """Check a `redis://host:port/db` URL; a bad one raises ValueError with a one-line reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"store URL {url!r}: expected redis://host:port/db (or rediss://, unix://)")
    if parts.scheme != "unix":
        if not parts.hostname:
            raise ValueError(f"store URL {url!r}: no host")
        try:
            parts.port  # noqa: B018 - raises on a non-numeric port
        except ValueError:
            raise ValueError(f"store URL {url!r}: the port is not a number") from None
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError(f"store URL {url!r}: the database must be a number, not {db!r}")
    return url


class _Storage:
    """How one (source, key columns) is kept: its key prefix, retention and record layout."""

    def __init__(self, prefix: str, src: ir.Source, key: tuple[str, ...], specs: list):
        self.source, self.key = src, key
        self.columns = [c for c, _ in src.columns]
        self.types = dict(src.columns)
        self.dtypes = {c: numpy_dtype(t) for c, t in src.columns}
        self.strings = {c for c, dt in self.dtypes.items() if dt.kind in "TUO"}
        bad = [c for c, dt in self.dtypes.items() if dt == np.dtype(object)]
        if bad:
            raise OnlineError(f"source `{src.name}`: columns {bad} cannot be kept in Redis")
        fields = [("t", "<i8")]
        for i, c in enumerate(self.columns):
            fields += [(f"v{i}", "<i4" if c in self.strings else self.dtypes[c].newbyteorder("<")), (f"m{i}", "?")]
        self.record = np.dtype(fields)
        schema = json.dumps([src.time, [(c, str(t)) for c, t in src.columns]])
        import hashlib

        tag = hashlib.blake2b(schema.encode(), digest_size=6).hexdigest()
        self.prefix = f"{prefix}:r:{src.name}:{','.join(key)}:{tag}:"
        self.prefix_bytes = self.prefix.encode()
        # retention: keep everything for lifetime state or unmergeable tables; else the longest window
        self.keep_all = any(not s.mergeable or any(i.lifetime for i in s.inputs) for s in specs)
        self.window = max((s.max_window for s in specs), default=0)  # none: a vector index's log
        self.keep_last = any(s.asof for s in specs)

    def name(self, key) -> bytes:
        """The Redis key of an entity's rows: the entity's key is the hash tag (one cluster slot)."""
        if type(key) is int:
            return self.prefix_bytes + b"{[%d]}" % key
        text = json.dumps(list(key) if isinstance(key, tuple) else [key], ensure_ascii=True)
        return (self.prefix + "{" + text.replace("{", "\\u007b").replace("}", "\\u007d") + "}").encode()

    def encode(self, times: np.ndarray, cols: dict[str, Vec], idx: np.ndarray) -> bytes:
        rec = np.zeros(len(idx), self.record)
        rec["t"] = times[idx]
        blobs = []
        for i, c in enumerate(self.columns):
            v = cols[c]
            rec[f"m{i}"] = v.valid[idx]
            if c in self.strings:
                enc = [s.encode() for s in v.values[idx].tolist()]
                rec[f"v{i}"] = [len(b) for b in enc]
                blobs += enc
            else:
                rec[f"v{i}"] = v.values[idx]
        tail = b"".join(blobs)
        return _HEAD.pack(len(idx), len(tail)) + rec.tobytes() + tail

    def decode(self, chunks: list[bytes], skip: int = 0) -> tuple[np.ndarray, dict[str, Vec]]:
        """Rows of chunks (each after `skip` bytes; in push order) as the embedded store's ingest gives them."""
        parts, strings, size = [], {c: [] for c in self.strings}, self.record.itemsize
        for ch in chunks:
            n, _ = _HEAD.unpack_from(ch, skip)
            parts.append(ch[skip + _HEAD.size:skip + _HEAD.size + n * size])
            if self.strings:
                rec = np.frombuffer(ch, self.record, n, skip + _HEAD.size)
                at = skip + _HEAD.size + n * self.record.itemsize
                for i, c in enumerate(self.columns):  # column after column, as `encode` wrote them
                    if c in self.strings:
                        out = strings[c]
                        for ln in rec[f"v{i}"].tolist():
                            out.append(ch[at:at + ln].decode())
                            at += ln
        rec = np.frombuffer(parts[0] if len(parts) == 1 else b"".join(parts), self.record)
        cols = {}
        for i, c in enumerate(self.columns):
            vals = (np.array(strings[c], dtype=self.dtypes[c]) if c in self.strings
                    else rec[f"v{i}"].astype(self.dtypes[c]))
            cols[c] = Vec(vals, rec[f"m{i}"].copy())
        return rec["t"].astype(np.int64), cols


def canonical_key(values: list):
    """A key as the embedded store's dict holds it (ints, strings), or None when no stored key can
    equal it (the entity is then unknown, as it would be in the embedded store)."""
    out = []
    for v in values:
        if isinstance(v, bool | np.bool_ | int | np.integer) or (
                isinstance(v, float | np.floating) and float(v).is_integer()):
            out.append(int(v))
        elif isinstance(v, str):
            out.append(v)
        else:
            return None
    return out[0] if len(out) == 1 else tuple(out)
