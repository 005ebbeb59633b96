"""Experiment assignment: the versioned hash and the `assignment` operator.

Hash version 2 is the published description of GrowthBook's hash v2, computed over UTF-8 bytes:
`fnv1a32(str(fnv1a32(seed + key))) % 10000` (FNV-1a, 32 bits, offset basis 2166136261, prime
16777619; `str` is the decimal spelling).  The result is a bucket in 0..9999.  For ASCII seeds and
keys it equals GrowthBook's value; GrowthBook hashes UTF-16 code units, so other text differs.

A unit is assigned in two independent draws (docs/language.md, "Experiments"):
  * the layer bucket `hash(layer + ":", key)`, shared by every experiment of the layer, must fall in
    the experiment's slice of the layer: disjoint slices make experiments of a layer exclusive;
  * the experiment bucket `hash(layer + ":" + salt + ":", key)` then picks holdout or an arm.  The
    holdout is the first `holdout%` of buckets; the rest is split by the arm weights into fixed
    ranges, each filled from its start up to `coverage` of its width.  Raising coverage only widens
    each range at its end, so a unit never moves from one arm to another.

All thresholds are computed once, here, from the declaration (`Spec`); the three lowerings below
only compare integer buckets with them, so they agree exactly.
"""

from __future__ import annotations

import functools
import json

import attrs

from astra.lang.types import STRING, Type
from astra.ops.registry import LazyModule, ScalarOp, TypeRuleError, register

np = LazyModule("numpy", "np", globals())

HASH_VERSION = 2
BUCKETS = 10_000
OFFSET = 2166136261
PRIME = 16777619
MASK = 0xFFFFFFFF


# --------------------------------------------------------------------------- the hash (reference)


def fnv1a32(data: bytes, start: int = OFFSET) -> int:
    """FNV-1a over `data`, continuing from `start` (the offset basis for a fresh hash)."""
    h = start
    for byte in data:
        h = ((h ^ byte) * PRIME) & MASK
    return h


def bucket(seed: str, key: str) -> int:
    """Hash version 2 of `key` under `seed`: a bucket in 0..9999."""
    inner = fnv1a32((seed + key).encode("utf-8"))
    return fnv1a32(str(inner).encode("ascii")) % BUCKETS


def key_text(key: object) -> str:
    """The text a unit key is hashed as: strings as they are, integers in decimal."""
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise TypeError(f"an experiment unit key must be a string or an integer, not {type(key).__name__}")
    return key if isinstance(key, str) else str(key)


# --------------------------------------------------------------------------- the declaration's thresholds


@attrs.frozen
class Spec:
    """What assignment needs of an experiment, in buckets; serialised into the plan as JSON text."""

    layer: str
    salt: str
    slice: tuple[float, float]  # layer buckets [lo, hi) of this experiment
    holdout: float  # experiment buckets below this are held out
    arms: tuple[tuple[str, float, float], ...]  # (arm, lo, hi): experiment buckets [lo, hi)
    # nested: only units the parent experiment puts in this arm take part
    parent: tuple[Spec, str] | None = None

    @property
    def layer_seed(self) -> str:
        return self.layer + ":"

    @property
    def seed(self) -> str:
        return self.layer + ":" + self.salt + ":"

    def text(self) -> str:
        return json.dumps(self._data(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def _data(self) -> dict:
        d = {"layer": self.layer, "salt": self.salt, "slice": list(self.slice), "holdout": self.holdout,
             "arms": [list(a) for a in self.arms]}
        if self.parent is not None:  # absent otherwise: a top-level experiment's text never changes
            d["parent"] = {"spec": self.parent[0]._data(), "arm": self.parent[1]}
        return d


def spec(layer: str, salt: str, arms: tuple[tuple[str, float], ...], *, holdout: float = 0.0,
         coverage: float = 100.0, slice: tuple[float, float] = (0.0, 100.0),
         parent: tuple[Spec, str] | None = None) -> Spec:
    """The thresholds of an experiment from its declared percentages (arms summing to 100)."""
    scale = BUCKETS / 100.0
    held = holdout * scale
    rest = BUCKETS - held
    out, start = [], 0.0
    for name, weight in arms:
        lo = held + rest * start / 100.0
        out.append((name, lo, lo + rest * weight / 100.0 * coverage / 100.0))
        start += weight
    return Spec(layer=layer, salt=salt, slice=(slice[0] * scale, slice[1] * scale), holdout=held, arms=tuple(out),
                parent=parent)


@functools.lru_cache(maxsize=256)
def parse_spec(text: str) -> Spec:
    return _from_data(json.loads(text))


def _from_data(d: dict) -> Spec:
    parent = d.get("parent")
    return Spec(layer=d["layer"], salt=d["salt"], slice=tuple(d["slice"]), holdout=d["holdout"],
                arms=tuple(tuple(a) for a in d["arms"]),
                parent=None if parent is None else (_from_data(parent["spec"]), parent["arm"]))


def arm_of(s: Spec, layer_bucket: int, exp_bucket: int) -> str | None:
    """The arm for a unit's two buckets; None when outside the slice, held out or not yet covered."""
    if not (s.slice[0] <= layer_bucket < s.slice[1]) or exp_bucket < s.holdout:
        return None
    for name, lo, hi in s.arms:
        if lo <= exp_bucket < hi:
            return name
    return None


def assign(s: Spec, key: object) -> str | None:
    """The arm of one unit key (plain Python: the reference the vectorised paths are tested against)."""
    text = key_text(key)
    if s.parent is not None and assign(s.parent[0], text) != s.parent[1]:
        return None
    return arm_of(s, bucket(s.layer_seed, text), bucket(s.seed, text))


# --------------------------------------------------------------------------- vectorised (numpy)


def buckets(seed: str, keys) -> object:
    """Hash version 2 of every string of `keys` (a sequence of str): an int64 array of buckets.

    The loops run over byte positions and decimal digits, never over keys: each step updates the
    hash of every key that is that long at once."""
    start = fnv1a32(seed.encode("utf-8"))
    encoded = [k.encode("utf-8") for k in keys]
    n = len(encoded)
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=n)
    h = np.full(n, start, dtype=np.uint64)
    if n and lengths.max() > 0:
        width = int(lengths.max())
        flat = np.frombuffer(b"".join(b.ljust(width, b"\0") for b in encoded), dtype=np.uint8).reshape(n, width)
        for j in range(width):
            live = lengths > j
            h = np.where(live, ((h ^ flat[:, j]) * PRIME) & MASK, h)
    # second round over the decimal digits of the first hash (1..10 digits, most significant first)
    digits = np.ones(n, dtype=np.int64)
    for p in range(1, 10):
        digits += h >= 10**p
    h2 = np.full(n, OFFSET, dtype=np.uint64)
    for j in range(10):
        live = digits > j
        power = np.where(live, digits - 1 - j, 0).astype(np.uint64)
        digit = (h // (np.uint64(10) ** power)) % np.uint64(10)
        h2 = np.where(live, ((h2 ^ (digit + np.uint64(48))) * PRIME) & MASK, h2)
    return (h2 % BUCKETS).astype(np.int64)


def assign_many(s: Spec, keys) -> tuple[object, object]:
    """Arms of a sequence of distinct key texts: (object array of arm names, validity mask)."""
    lb, eb = buckets(s.layer_seed, keys), buckets(s.seed, keys)
    inside = (lb >= s.slice[0]) & (lb < s.slice[1]) & (eb >= s.holdout)
    if s.parent is not None:
        parent_arms, parent_valid = assign_many(s.parent[0], keys)
        inside &= parent_valid & (parent_arms == s.parent[1])
    out = np.full(len(lb), "", dtype=object)
    valid = np.zeros(len(lb), dtype=bool)
    for name, lo, hi in s.arms:
        hit = inside & (eb >= lo) & (eb < hi)
        out[hit] = name
        valid |= hit
    return out, valid


def _texts(values) -> list[str]:
    return [v if isinstance(v, str) else str(int(v)) for v in values.tolist()]


def _numpy(out: Type, key, spec_text: str):
    s = parse_spec(spec_text)
    texts = _texts(np.asarray(key))
    uniq, inverse = np.unique(np.array(texts, dtype=object), return_inverse=True) if texts else ([], [])
    arms, valid = assign_many(s, list(uniq))
    if not texts:
        return np.array([], dtype=object), np.zeros(0, dtype=bool)
    return arms[inverse].astype(object), valid[inverse]


def _polars(out: Type, key, spec_text: str):
    import polars as pl

    s = parse_spec(spec_text)

    def batch(series: pl.Series) -> pl.Series:
        text = series.cast(pl.String)
        uniq = text.drop_nulls().unique()
        arms, valid = assign_many(s, uniq.to_list())
        table = pl.Series([a if v else None for a, v in zip(arms.tolist(), valid.tolist(), strict=True)],
                          dtype=pl.String)
        return text.replace_strict(uniq, table, default=None, return_dtype=pl.String)

    return key.map_batches(batch, return_dtype=pl.String)


def _reference(out: Type, key, spec_text: str):
    return assign(parse_spec(spec_text), key)


def _infer(args: tuple[Type, ...]) -> Type:
    if args[0].name not in ("string", "int64", "int32"):
        raise TypeRuleError("an experiment's unit key must be a string or an integer", 0)
    if args[1].name != "string":
        raise TypeRuleError("the experiment is given by the spec string the compiler writes", 1)
    return STRING.nullable(True)


register(ScalarOp(name="assignment", arity=(2, 2), infer=_infer, reference=_reference, polars=_polars,
                  numpy=_numpy, literal_args=(1,),
                  doc="assignment(experiment): the unit's arm, null when it is not in the experiment"))
