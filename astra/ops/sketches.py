"""Mergeable sketches: HyperLogLog distinct counts and DDSketch quantiles, in numpy.

Both are computed for many groups at once (CSR: `values` plus `offsets`, group g holding
`values[offsets[g]:offsets[g + 1]]`), with no Python loop over values, and each has a plain-Python
reference that gives the same state and the same answer bit for bit.  The state of a group is a
function of the multiset of its values only: the order of the rows and how they were split into
parts never change it, and merging the sketches of any split gives the sketch of the whole.

Every step is integer arithmetic or one correctly rounded IEEE-754 operation (+, *, /, sqrt,
ldexp, frexp), never a libm function such as log or exp whose last bit varies between platforms
and numpy builds, so the results are the same in every process and on every machine.

The hash (`hash64`, docs/semantics.md): a 64-bit value per input, fixed forever.
  * integers, booleans (0/1), timestamps and durations (int64 µs): the splitmix64 finalizer of
    `x + 0x9E3779B97F4A7C15` (x as unsigned 64-bit two's complement);
  * strings: the same finalizer of the 64-bit FNV-1a (offset 0xCBF29CE484222325, prime
    0x100000001B3) of their UTF-8 bytes (a lone surrogate as its 3-byte pattern).
Floats have no hash: two floats that print alike may differ, as for count_distinct.

HyperLogLog (Flajolet, Fusy, Gandouet, Meunier 2007), precision P = 14: M = 16384 one-byte
registers.  A hash's top 14 bits pick the register; the register keeps the largest rank seen, the
rank being 1 + the number of leading zeros of the remaining 50 bits (51 when all are zero).  The
estimate is Ertl's improved estimator (arXiv:1702.01284, 2017, "New cardinality estimation
algorithms for HyperLogLog sketches"), computed from the histogram of register values.  It is
chosen over the 2007 paper's raw estimate with its switch to linear counting (biased around the
switch) and over HLL++ (whose bias correction is a table of empirical data): it is nearly
unbiased from a handful of values to far beyond 10^9 with one formula, and needs no logarithm.
Its relative standard error is about 1.04 / sqrt(M) = 0.81%.

DDSketch (Masson, Rim, Lee 2019) with relative accuracy ALPHA = 0.01.  A positive value x =
m * 2^e (1 <= m < 2) falls in bucket 50 * e + ceil(50 * (m - 1)): the 50 buckets of each power of
two cut its mantissa into equal steps (the paper's linearly interpolated mapping), so a bucket's
upper bound is at most 1.02 times its lower bound and the bucket's value, the harmonic mean of its
bounds, is within 0.0099 * x of every x in it.  Negative values use the buckets of |x| mirrored,
zeros one bucket of their own, -inf and +inf one each; NaN is counted apart and makes every
quantile NaN.  The q-quantile is the value of the bucket holding the order statistic of rank
floor(q * (n - 1)) + 1 (1-based, q * (n - 1) computed in float64: the lower of the two order
statistics `percentile` interpolates between), so it is within 1% of that order statistic
(exactly ±inf or 0 when the statistic is).  Buckets span every float, so no bucket is ever merged
into another (at most about 210,000 buckets, far fewer in practice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from astra.ops.registry import LazyModule

np = LazyModule("numpy", "np", globals())

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1, MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
FNV64_OFFSET, FNV64_PRIME = 0xCBF29CE484222325, 0x100000001B3

P = 14  # HyperLogLog precision
M = 1 << P  # registers
Q = 64 - P  # hash bits left for the rank
ALPHA_INF = 0.7213475204444817  # 1 / (2 ln 2), written out so no logarithm is evaluated

ALPHA = 0.01  # DDSketch relative accuracy
STEPS = 50  # buckets per power of two
OFF = 60_000  # shifts bucket numbers (-53750 .. 51200) to positive codes
ZERO, POS_INF, NEG_INF, NAN = 0, 200_000, -200_000, 300_000
# value of a bucket relative to 2^k (k = bucket // STEPS), by bucket % STEPS: the harmonic mean of
# its bounds, 2ab / (a + b); remainder 0 is the last step below 2^k, (0.99, 1] once scaled
_BOUNDS = [((STEPS + STEPS - 1) / (2 * STEPS), 1.0)] + [((STEPS + r - 1) / STEPS, (STEPS + r) / STEPS)
                                                         for r in range(1, STEPS)]
REPRESENTATIVE = tuple((2.0 * a * b) / (a + b) for a, b in _BOUNDS)


# --------------------------------------------------------------------------- reference (plain Python)


def mix64_ref(z: int) -> int:
    """The splitmix64 finalizer of a 64-bit integer."""
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def fnv1a64_ref(data: bytes) -> int:
    """64-bit FNV-1a of `data`."""
    h = FNV64_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV64_PRIME) & MASK64
    return h


def hash_ref(value: object) -> int:
    """The documented 64-bit hash of one non-null value (int, bool, µs time, or str)."""
    if isinstance(value, str):  # a lone surrogate (no UTF-8 of its own) as its 3-byte pattern
        return mix64_ref(fnv1a64_ref(value.encode("utf-8", "surrogatepass")))
    if isinstance(value, int):  # bool included: True is 1
        return mix64_ref(((int(value) & MASK64) + GOLDEN) & MASK64)
    raise TypeError(f"no sketch hash for {type(value).__name__} values")


def hll_registers_ref(values: Sequence[object]) -> list[int]:
    """The M registers of the HyperLogLog of `values` (non-null)."""
    regs = [0] * M
    for v in values:
        h = hash_ref(v)
        rest = h & ((1 << Q) - 1)
        rank = Q - rest.bit_length() + 1
        regs[h >> Q] = max(regs[h >> Q], rank)
    return regs


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x = x * x
        old = z
        z = z + x * y
        y = y + y
        if z == old:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        old = z
        y = 0.5 * y
        z = z - (1.0 - x) * (1.0 - x) * y
        if z == old:
            return z / 3.0


def hll_estimate_ref(registers: Sequence[int]) -> float:
    """Ertl's improved estimate of the number of distinct values behind `registers`."""
    c = [0] * (Q + 2)
    for r in registers:
        c[r] += 1
    return _estimate_ref(c)


def _estimate_ref(c: list[int]) -> float:
    """Ertl's improved estimate from the histogram c[k] = number of registers holding k."""
    z = M * _tau(1.0 - c[Q + 1] / M)
    for k in range(Q, 0, -1):
        z = 0.5 * (z + c[k])
    z = z + M * _sigma(c[0] / M)
    return ALPHA_INF * M * M / z


def approx_count_distinct_ref(values: Sequence[object]) -> int:
    """approx_count_distinct of the non-null `values`: the estimate rounded half to even."""
    return round(hll_estimate_ref(hll_registers_ref(values)))


def dd_code_ref(x: float) -> int:
    """The bucket code of one number: codes grow with the value (NaN: its own code)."""
    x = float(x)
    if math.isnan(x):
        return NAN
    if math.isinf(x):
        return POS_INF if x > 0 else NEG_INF
    if x == 0.0:
        return ZERO
    f, e = math.frexp(abs(x))  # |x| = (2f) * 2^(e - 1), exactly
    i = STEPS * (e - 1) + math.ceil(STEPS * (2.0 * f - 1.0))
    return i + OFF if x > 0 else -(i + OFF)


def dd_value_ref(code: int) -> float:
    """The value a bucket code stands for."""
    if code == NAN:
        return math.nan
    if code in (POS_INF, NEG_INF):
        return math.inf if code == POS_INF else -math.inf
    if code == ZERO:
        return 0.0
    k, r = divmod(abs(code) - OFF, STEPS)
    v = math.ldexp(REPRESENTATIVE[r], k)
    return v if code > 0 else -v


def dd_sketch_ref(values: Sequence[float]) -> dict[int, int]:
    """The DDSketch of the non-null `values`: bucket code -> count."""
    out: dict[int, int] = {}
    for x in values:
        c = dd_code_ref(x)
        out[c] = out.get(c, 0) + 1
    return dict(sorted(out.items()))


def rank(q: float, n: int) -> int:
    """The 1-based rank of the q-quantile among n values: floor(q (n - 1)) + 1, q (n - 1) in float64."""
    return math.floor(q * float(n - 1)) + 1


def dd_quantile_ref(sketch: dict[int, int], q: float) -> float | None:
    """The q-quantile of a sketch (None when empty; NaN when it counted a NaN)."""
    n = sum(sketch.values())
    if not n:
        return None
    if NAN in sketch:
        return math.nan
    r, seen = rank(q, n), 0
    for code in sorted(sketch):
        seen += sketch[code]
        if seen >= r:
            return dd_value_ref(code)
    raise AssertionError("rank beyond the count")


def approx_percentile_ref(values: Sequence[float], q: float) -> float | None:
    """approx_percentile of the non-null `values`."""
    return dd_quantile_ref(dd_sketch_ref(values), q)


# --------------------------------------------------------------------------- hashing (numpy)


def mix64(z):
    """The splitmix64 finalizer of every element of a uint64 array (a new array)."""
    z = z ^ (z >> np.uint64(30))
    z *= np.uint64(MIX1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(MIX2)
    z ^= z >> np.uint64(31)
    return z


def _utf8(values):
    """(offsets int64 of length n + 1, bytes uint8) of the UTF-8 text of `values`, via Arrow."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        if hasattr(values, "to_arrow"):  # a Polars Series
            values = values.to_arrow()
        else:
            values = np.asarray(values, dtype=object)
            try:
                values = pa.array(values, type=pa.large_string())
            except (UnicodeEncodeError, pa.ArrowInvalid):  # lone surrogates: encoded as hash_ref does
                encoded = [v.encode("utf-8", "surrogatepass") for v in values.tolist()]
                values = pa.array(encoded, type=pa.large_binary())
    arr = values.cast(pa.large_binary())
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offsets, data


def fnv1a64(values):
    """64-bit FNV-1a of the UTF-8 bytes of every string of `values` (uint64 array).

    Strings are ordered longest first, so step j updates a prefix of the hashes (those longer
    than j): the work is the total number of bytes, the Python loop the longest string's length."""
    offsets, data = _utf8(values)
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")
    starts = offsets[:-1][order]
    ascending = lengths[order][::-1]
    h = np.full(n, FNV64_OFFSET, dtype=np.uint64)
    prime = np.uint64(FNV64_PRIME)
    for j in range(int(lengths.max()) if n else 0):
        k = n - int(np.searchsorted(ascending, j, side="right"))  # strings longer than j
        h[:k] ^= data[starts[:k] + j]
        h[:k] *= prime
    out = np.empty_like(h)
    out[order] = h
    return out


def hash64(values):
    """The documented 64-bit hash of every value (uint64 array): integers, booleans, times
    (datetime64/timedelta64 or int64 µs) or strings (object, StringDType, Arrow or Polars)."""
    if isinstance(values, list | tuple):
        values = np.array(values, dtype=object if any(isinstance(v, str) for v in values)
                          else None if values else np.int64)
    if not isinstance(values, np.ndarray) or values.dtype.kind in "OTU":
        return mix64(fnv1a64(values))
    if values.dtype.kind == "f":
        raise TypeError("floats have no sketch hash")
    if values.dtype.kind in "mM":
        values = values.view(np.int64)
    x = values.astype(np.int64, copy=False).view(np.uint64) + np.uint64(GOLDEN)
    return mix64(x)


# --------------------------------------------------------------------------- sketch sets (numpy)


@attrs.frozen(eq=False)
class Sketches:
    """One sketch per group, sparse: group g's (key, value) pairs are `keys[offsets[g]:offsets[g + 1]]`
    and `values[...]`, keys ascending.  HyperLogLog: key = register, value = its (non-zero) rank.
    DDSketch: key = bucket code, value = count."""

    offsets: object  # int64, n + 1
    keys: object  # int64
    values: object  # uint8 ranks or int64 counts

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    def group(self, g: int) -> dict[int, int]:
        """Group g's pairs as a dict (for tests and references)."""
        lo, hi = int(self.offsets[g]), int(self.offsets[g + 1])
        return dict(zip(self.keys[lo:hi].tolist(), self.values[lo:hi].tolist(), strict=True))


def _offsets(counts):
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _group_ids(offsets):
    n = len(offsets) - 1
    return np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))


def _runs(sorted_keys):
    """Start of every run of equal elements of a sorted int64 array."""
    if not len(sorted_keys):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def _hll_points(hashes):
    """(register, rank) of every hash."""
    reg = (hashes >> np.uint64(Q)).astype(np.int64)
    rest = (hashes & np.uint64((1 << Q) - 1)).astype(np.float64)  # < 2^50: exact as a float
    top = (rest.view(np.int64) >> 52) - 1023  # its exponent: the highest set bit (-1023 for 0)
    return reg, np.minimum(Q - top, Q + 1)


# a dense table of (group, register/bucket) cells beats a sort up to this size, when it is not
# much larger than the input
DENSE_CELLS, DENSE_RATIO = 1 << 24, 4


def _hll_reduce(groups, regs, ranks, n):
    """The sketches holding, per (group, register), the largest rank."""
    cells = groups * M + regs
    if n * M <= min(DENSE_CELLS, DENSE_RATIO * len(cells) + M):  # few groups: a dense maximum per cell
        dense = np.zeros(n * M, np.uint8)
        np.maximum.at(dense, cells, ranks.astype(np.uint8))
        cell = np.flatnonzero(dense)
        top = dense[cell]
    else:  # one sort of group, register and rank packed in an int64: the last of each run is its maximum
        packed = np.sort(cells * 64 + ranks)
        cell = packed >> 6
        last = np.flatnonzero(np.append(cell[1:] != cell[:-1], True))[:len(cell)]
        cell, top = cell[last], (packed[last] & 63).astype(np.uint8)
    return Sketches(_offsets(np.bincount(cell // M, minlength=n)), cell % M, top)


def hll_build(hashes, offsets) -> Sketches:
    """The HyperLogLog of every group of a CSR array of hashes (`hash64`)."""
    offsets = np.asarray(offsets, np.int64)
    reg, ranks = _hll_points(hashes)
    return _hll_reduce(_group_ids(offsets), reg, ranks, len(offsets) - 1)


def hll_merge(a: Sketches, b: Sketches) -> Sketches:
    """Group g of the result is the register-wise maximum of group g of `a` and of `b`."""
    if a.n != b.n:
        raise ValueError("merged sketch sets must have as many groups")
    groups = np.concatenate((_group_ids(a.offsets), _group_ids(b.offsets)))
    regs = np.concatenate((a.keys, b.keys))
    ranks = np.concatenate((a.values, b.values)).astype(np.int64)
    return _hll_reduce(groups, regs, ranks, a.n)


def hll_dense(s: Sketches):
    """The registers of every group as an (n, M) uint8 array."""
    out = np.zeros((s.n, M), np.uint8)
    out[_group_ids(s.offsets), s.keys] = s.values
    return out


def _sigma_many(x):
    out = np.full(len(x), np.inf)
    live = x != 1.0
    x, z = x[live], x[live].copy()
    y = np.ones(len(x))
    active = np.ones(len(x), bool)
    while active.any():  # each element takes the steps of the scalar loop, then freezes
        x = np.where(active, x * x, x)
        new = np.where(active, z + x * y, z)
        y = np.where(active, y + y, y)
        active &= new != z
        z = new
    out[live] = z
    return out


def _tau_many(x):
    out = np.zeros(len(x))
    live = (x != 0.0) & (x != 1.0)
    x = x[live]
    y, z = np.ones(len(x)), 1.0 - x
    active = np.ones(len(x), bool)
    while active.any():
        x = np.where(active, np.sqrt(x), x)
        y = np.where(active, 0.5 * y, y)
        new = np.where(active, z - (1.0 - x) * (1.0 - x) * y, z)
        active &= new != z
        z = new
    out[live] = z / 3.0
    return out


def hll_estimate(s: Sketches, chunk: int = 1 << 16):
    """Ertl's improved estimate for every group (float64; 0.0 for an empty group), the same
    operations in the same order as `hll_estimate_ref`."""
    est = np.zeros(s.n)
    if s.n <= 8:  # a few groups (an online request): the scalar loops beat masked vector ones
        for g in range(s.n):
            lo, hi = int(s.offsets[g]), int(s.offsets[g + 1])
            c = np.bincount(s.values[lo:hi], minlength=Q + 2).tolist()
            c[0] = M - (hi - lo)
            est[g] = _estimate_ref(c)
        return est
    gid = _group_ids(s.offsets)
    for lo in range(0, s.n, chunk):  # the (groups, 52) histogram, a chunk of groups at a time
        hi = min(s.n, lo + chunk)
        a, b = int(s.offsets[lo]), int(s.offsets[hi])
        c = np.bincount((gid[a:b] - lo) * (Q + 2) + s.values[a:b], minlength=(hi - lo) * (Q + 2))
        c = c.reshape(hi - lo, Q + 2).astype(np.float64)
        c[:, 0] = M - np.diff(s.offsets[lo:hi + 1])
        z = M * _tau_many(1.0 - c[:, Q + 1] / M)
        for k in range(Q, 0, -1):
            z = 0.5 * (z + c[:, k])
        z = z + M * _sigma_many(c[:, 0] / M)
        est[lo:hi] = ALPHA_INF * M * M / z
    return est


def approx_count_distinct(values, offsets):
    """approx_count_distinct of every group of a CSR array of non-null values (int64 array)."""
    return np.rint(hll_estimate(hll_build(hash64(values), offsets))).astype(np.int64)


def dd_codes(values):
    """The bucket code of every number (int64 array), as `dd_code_ref`."""
    x = np.asarray(values)
    x = x.astype(np.float64, copy=False) if x.dtype != np.float64 else x
    f, e = np.frexp(np.abs(x))
    with np.errstate(invalid="ignore"):
        i = STEPS * (e.astype(np.int64) - 1) + np.ceil(STEPS * (2.0 * f - 1.0)).astype(np.int64)
    code = np.where(x > 0, i + OFF, -(i + OFF))
    code[x == 0] = ZERO
    code[x == np.inf] = POS_INF
    code[x == -np.inf] = NEG_INF
    code[np.isnan(x)] = NAN
    return code


def dd_values(codes):
    """The value every bucket code stands for (float64 array), as `dd_value_ref`."""
    codes = np.asarray(codes, np.int64)
    k, r = np.divmod(np.abs(codes) - OFF, STEPS)
    with np.errstate(over="ignore"):
        v = np.ldexp(np.asarray(REPRESENTATIVE)[r % STEPS], np.clip(k, -1100, 1100).astype(np.int32))
    v = np.where(codes < 0, -v, v)
    v[codes == ZERO] = 0.0
    v[codes == POS_INF] = np.inf
    v[codes == NEG_INF] = -np.inf
    v[codes == NAN] = np.nan
    return v


def _dd_reduce(groups, codes, counts, n):
    """The sketches holding, per (group, bucket code), the sum of the counts."""
    lo = int(codes.min()) if len(codes) else 0
    span = int(codes.max()) - lo + 1 if len(codes) else 1
    packed = groups * span + (codes - lo)
    if n * span <= min(DENSE_CELLS, DENSE_RATIO * len(codes) + span):  # few groups, a narrow range: count densely
        total = np.bincount(packed, weights=None if counts is None else counts, minlength=n * span)
        cell = np.flatnonzero(total)
        total = total[cell]
    elif counts is None:  # one value each: run lengths of the sorted cells
        packed = np.sort(packed)
        starts = _runs(packed)
        total = np.diff(np.append(starts, len(packed)))
        cell = packed[starts]
    else:
        order = np.argsort(packed, kind="stable")
        packed = packed[order]
        starts = _runs(packed)
        total = np.add.reduceat(counts[order], starts) if len(starts) else np.zeros(0, np.int64)
        cell = packed[starts]
    return Sketches(_offsets(np.bincount(cell // span, minlength=n)), cell % span + lo, total.astype(np.int64))


def dd_build(values, offsets) -> Sketches:
    """The DDSketch of every group of a CSR array of non-null numbers."""
    offsets = np.asarray(offsets, np.int64)
    codes = dd_codes(values)
    return _dd_reduce(_group_ids(offsets), codes, None, len(offsets) - 1)


def dd_merge(a: Sketches, b: Sketches) -> Sketches:
    """Group g of the result adds the bucket counts of group g of `a` and of `b`."""
    if a.n != b.n:
        raise ValueError("merged sketch sets must have as many groups")
    groups = np.concatenate((_group_ids(a.offsets), _group_ids(b.offsets)))
    return _dd_reduce(groups, np.concatenate((a.keys, b.keys)), np.concatenate((a.values, b.values)), a.n)


def dd_quantile(s: Sketches, q: float):
    """(value, valid) of the q-quantile of every group: invalid (null) when a group is empty, NaN
    when it counted a NaN, else the value of the bucket holding rank floor(q (n - 1)) + 1."""
    cum = np.cumsum(s.values)
    cum0 = np.concatenate(([0], cum))
    before = cum0[s.offsets[:-1]]  # values of earlier groups
    n = cum0[s.offsets[1:]] - before
    valid = n > 0
    out = np.full(s.n, np.nan)
    if not valid.any():
        return out, valid
    r = np.floor(q * np.maximum(n - 1, 0).astype(np.float64)).astype(np.int64) + 1
    at = np.searchsorted(cum, before + r, side="left")
    g = np.flatnonzero(valid)
    picked = s.keys[at[g]]
    out[g] = dd_values(picked)
    nan = s.keys[s.offsets[1:][g] - 1] == NAN  # NaN sorts last: a group's last bucket
    out[g[nan]] = np.nan
    return out, valid


def approx_percentile(values, offsets, q: float):
    """(value, valid) of approx_percentile(x, q) for every group of a CSR array of non-null numbers."""
    return dd_quantile(dd_build(values, offsets), q)
