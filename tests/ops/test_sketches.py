"""The sketches of astra.ops.sketches: the documented hash, the error guarantees against exact
answers, merge == whole, order independence, bit-for-bit agreement of numpy and the plain-Python
references, determinism across processes, and the edge values (docs/semantics.md)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.ops import sketches as S

SE = 1.04 / math.sqrt(S.M)  # HyperLogLog's relative standard error at P = 14
TINY = 2.2250738585072014e-308  # smallest normal float: below it a float has fewer digits than ALPHA needs


def csr(groups):
    """(values, offsets) of a list of lists."""
    lengths = [len(g) for g in groups]
    offsets = np.zeros(len(groups) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = [v for g in groups for v in g]
    return flat, offsets


def same_sketches(a: S.Sketches, b: S.Sketches) -> bool:
    return (np.array_equal(a.offsets, b.offsets) and np.array_equal(a.keys, b.keys)
            and np.array_equal(a.values, b.values))


# --------------------------------------------------------------------------- the hash


def test_hash_matches_published_test_vectors():
    # FNV-1a 64: the offset basis for no bytes, 0xaf63dc4c8601ec8c for "a" (the FNV reference
    # vectors); splitmix64 seeded with 0 first returns 0xe220a8397b1dcdaf, i.e. the finalizer of 0 + golden
    assert S.fnv1a64_ref(b"") == 0xCBF29CE484222325
    assert S.fnv1a64_ref(b"a") == 0xAF63DC4C8601EC8C
    assert S.hash_ref(0) == 0xE220A8397B1DCDAF
    assert int(S.hash64(np.array([0], np.int64))[0]) == 0xE220A8397B1DCDAF
    assert int(S.fnv1a64(np.array(["a", ""], object))[0]) == 0xAF63DC4C8601EC8C


def test_integer_hash_matches_reference():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.integers(-2**63, 2**63 - 1, 5000, dtype=np.int64, endpoint=True),
                        np.array([0, 1, -1, 2**63 - 1, -2**63], np.int64)])
    assert S.hash64(x).tolist() == [S.hash_ref(v) for v in x.tolist()]
    # narrower integers, booleans and times hash as the int64 of the same number
    assert S.hash64(x[:100].astype(np.int32)).tolist() == [S.hash_ref(int(np.int32(v))) for v in x[:100]]
    assert S.hash64(np.array([True, False])).tolist() == [S.hash_ref(1), S.hash_ref(0)]
    ts = np.array([0, 1_700_000_000_000_000, -5], "datetime64[us]")
    assert S.hash64(ts).tolist() == [S.hash_ref(0), S.hash_ref(1_700_000_000_000_000), S.hash_ref(-5)]
    assert S.hash64(np.array([7], "timedelta64[us]")).tolist() == [S.hash_ref(7)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=30))
def test_string_hash_matches_reference(texts):
    expected = [S.hash_ref(t) for t in texts]
    assert S.hash64(np.array(texts, dtype=object)).tolist() == expected
    if texts:  # the same through Arrow and Polars buffers
        import polars as pl
        import pyarrow as pa

        assert S.hash64(pa.array(texts, pa.string())).tolist() == expected
        assert S.hash64(pl.Series(texts, dtype=pl.String)).tolist() == expected
        assert S.hash64(pl.Series(texts, dtype=pl.String)[1:]).tolist() == expected[1:]  # sliced buffers


def test_random_unicode_string_hash_matches_reference():
    rng = np.random.default_rng(3)
    blocks = (range(32, 127), range(0xA0, 0x2FF), range(0x4E00, 0x4F00), range(0x1F600, 0x1F650))
    alphabet = [chr(c) for block in blocks for c in block]
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 60)))) for _ in range(3000)]
    assert S.hash64(np.array(texts, dtype=object)).tolist() == [S.hash_ref(t) for t in texts]
    assert S.hash64(np.array(texts, dtype=np.dtypes.StringDType())).tolist() == [S.hash_ref(t) for t in texts]


def test_floats_have_no_hash():
    with pytest.raises(TypeError):
        S.hash64(np.array([1.0]))
    with pytest.raises(TypeError):
        S.hash_ref(1.0)


# --------------------------------------------------------------------------- HyperLogLog


def distinct_ints(rng, n: int) -> np.ndarray:
    """n distinct int64 values spread over the whole range."""
    out = np.unique(rng.integers(-2**62, 2**62, int(n * 1.1) + 10, dtype=np.int64))
    return rng.permutation(out)[:n]


@pytest.mark.parametrize(("n", "datasets"), [(1_000, 40), (100_000, 8), (1_000_000, 2)])
def test_hll_relative_error_within_a_few_standard_errors(n, datasets):
    rng = np.random.default_rng(n)
    errors = []
    for _ in range(datasets):
        x = distinct_ints(rng, n)
        x = np.concatenate([x, x[: n // 3]])  # repeats change nothing
        est = S.approx_count_distinct(rng.permutation(x), [0, len(x)])[0]
        errors.append(est / n - 1)
    errors = np.array(errors)
    assert np.abs(errors).max() < 4 * SE
    # no bias: the mean error is within 4 standard errors of its own spread
    assert abs(errors.mean()) < 4 * SE / math.sqrt(datasets) + 1e-3


def test_hll_strings_relative_error():
    rng = np.random.default_rng(11)
    for n in (10, 1_000, 100_000):
        texts = np.array([f"user-{v}" for v in distinct_ints(rng, n).tolist()], dtype=object)
        est = S.approx_count_distinct(np.concatenate([texts, texts[:50]]), [0, n + min(50, n)])[0]
        assert abs(est / n - 1) < 4 * SE


def test_hll_small_cardinalities_are_nearly_exact():
    # below a few hundred values two of them rarely share a register, and then the estimate
    # rounds to the count; a shared register costs one
    rng = np.random.default_rng(5)
    groups = [distinct_ints(rng, n).tolist() for n in range(0, 60) for _ in range(10)]
    values, offsets = csr(groups)
    est = S.approx_count_distinct(np.array(values, np.int64), offsets)
    truth = np.array([len(g) for g in groups])
    assert np.abs(est - truth).max() <= 1
    assert (est == truth).mean() > 0.95
    assert est[truth == 0].tolist() == [0] * 10


def test_hll_numpy_equals_reference_bit_for_bit():
    rng = np.random.default_rng(2)
    groups = [rng.integers(-50, 10**int(rng.integers(1, 6)), int(rng.integers(0, 3000))).tolist() for _ in range(12)]
    values, offsets = csr(groups)
    sk = S.hll_build(S.hash64(np.array(values, np.int64)), offsets)
    dense = S.hll_dense(sk)
    est = S.hll_estimate(sk)
    for g, vals in enumerate(groups):
        regs = S.hll_registers_ref(vals)
        assert dense[g].tolist() == regs
        assert est[g] == S.hll_estimate_ref(regs)  # the same float, not merely close
    assert S.approx_count_distinct(np.array(values, np.int64), offsets).tolist() == \
        [S.approx_count_distinct_ref(g) for g in groups]
    texts = [[f"{v}é" for v in g] for g in groups[:4]]
    tv, to = csr(texts)
    assert S.approx_count_distinct(np.array(tv, object), to).tolist() == [S.approx_count_distinct_ref(g) for g in texts]


def test_hll_estimate_chunks_agree():
    rng = np.random.default_rng(4)
    groups = [rng.integers(0, 1000, int(rng.integers(0, 200))).tolist() for _ in range(50)]
    values, offsets = csr(groups)
    sk = S.hll_build(S.hash64(np.array(values, np.int64)), offsets)
    assert np.array_equal(S.hll_estimate(sk), S.hll_estimate(sk, chunk=7))
    # a few groups take scalar loops: the same floats as the vectorised ones
    alone = [S.hll_estimate(S.hll_build(S.hash64(np.array(g, np.int64)), [0, len(g)]))[0] for g in groups]
    assert np.array_equal(S.hll_estimate(sk), np.array(alone))


def split(rng, groups):
    """Each group's values dealt at random into two parts."""
    left, right = [], []
    for g in groups:
        side = rng.random(len(g)) < rng.random()
        left.append([v for v, s in zip(g, side) if s])
        right.append([v for v, s in zip(g, side) if not s])
    return left, right


def test_hll_merge_of_any_split_is_the_whole_and_order_never_matters():
    rng = np.random.default_rng(8)
    groups = [rng.integers(0, 10**5, int(rng.integers(0, 5000))).tolist() for _ in range(20)] + [[]]

    def build(gs):
        v, o = csr(gs)
        return S.hll_build(S.hash64(np.array(v, np.int64)), o)

    whole = build(groups)
    for _ in range(3):
        left, right = split(rng, groups)
        assert same_sketches(S.hll_merge(build(left), build(right)), whole)
        assert same_sketches(S.hll_merge(build(right), build(left)), whole)
    assert same_sketches(build([list(rng.permutation(g)) for g in groups]), whole)
    assert same_sketches(S.hll_merge(whole, whole), whole)  # idempotent


# --------------------------------------------------------------------------- DDSketch


def order_statistic(values, q):
    xs = sorted(values)
    return xs[S.rank(q, len(xs)) - 1]


QS = (0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


def datasets(rng):
    yield rng.lognormal(0, 4, 20_000)
    yield rng.normal(0, 1e3, 20_000)
    yield -rng.pareto(1.5, 20_000)
    yield rng.integers(-10**12, 10**12, 20_000).astype(np.float64)
    yield np.concatenate([np.zeros(100), rng.uniform(-1, 1, 5_000), [np.inf, -np.inf]])
    yield rng.choice([1e-300, 1e300, -7.0, 3.5], 1_000)
    yield np.array([42.0])


@pytest.mark.parametrize("seed", range(4))
def test_dd_quantiles_within_alpha_of_the_order_statistic(seed):
    rng = np.random.default_rng(seed)
    for x in datasets(rng):
        for q in QS:
            (est,), (ok,) = S.approx_percentile(x, [0, len(x)], q)
            exact = order_statistic(x.tolist(), q)
            assert ok
            if math.isinf(exact) or exact == 0:
                assert est == exact
            else:
                assert abs(est - exact) <= S.ALPHA * abs(exact), (q, est, exact)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False) | st.integers(-2**53, 2**53).map(float), min_size=1, max_size=60),
       st.floats(0, 1))
def test_dd_any_values_any_q(values, q):
    (est,), (ok,) = S.approx_percentile(np.array(values), [0, len(values)], q)
    ref = S.approx_percentile_ref(values, q)
    assert ok and est == ref  # numpy and the reference: the same float
    exact = order_statistic(values, q)
    if math.isinf(exact) or exact == 0:
        assert est == exact
    elif abs(exact) >= TINY:
        assert abs(est - exact) <= S.ALPHA * abs(exact)
    else:  # subnormal: within ALPHA of it, or of the nearest subnormals
        assert abs(est - exact) <= S.ALPHA * abs(exact) + 5e-324


def test_dd_numpy_equals_reference_bit_for_bit():
    rng = np.random.default_rng(9)
    groups = [rng.normal(0, 10.0 ** int(rng.integers(-5, 5)), int(rng.integers(0, 500))).tolist() for _ in range(15)]
    groups += [[], [0.0, -0.0], [math.inf], [-math.inf, 1.0], [5e-324, -5e-324, 1.7976931348623157e308]]
    values, offsets = csr(groups)
    sk = S.dd_build(np.array(values, np.float64), offsets)
    for g, vals in enumerate(groups):
        assert sk.group(g) == S.dd_sketch_ref(vals)
    for q in QS:
        est, ok = S.dd_quantile(sk, q)
        for g, vals in enumerate(groups):
            ref = S.approx_percentile_ref(vals, q)
            assert bool(ok[g]) == (ref is not None)
            if ref is not None:
                assert est[g] == ref


def test_dd_merge_of_any_split_is_the_whole_and_order_never_matters():
    rng = np.random.default_rng(10)
    groups = [rng.lognormal(0, 2, int(rng.integers(0, 3000))).tolist() for _ in range(20)] + [[], [np.nan, 1.0]]

    def build(gs):
        v, o = csr(gs)
        return S.dd_build(np.array(v, np.float64), o)

    whole = build(groups)
    for _ in range(3):
        left, right = split(rng, groups)
        assert same_sketches(S.dd_merge(build(left), build(right)), whole)
    assert same_sketches(build([list(rng.permutation(g)) for g in groups]), whole)
    doubled = S.dd_merge(whole, whole)  # counts add up; the smallest and largest stay
    assert np.array_equal(doubled.values, 2 * whole.values)
    for q in (0.0, 1.0):
        a, b = S.dd_quantile(doubled, q), S.dd_quantile(whole, q)
        assert np.array_equal(a[1], b[1])
        assert np.array_equal(a[0], b[0], equal_nan=True)


def test_dd_edge_values():
    groups = [[], [3.0], [-3.0], [0.0, -0.0], [np.nan], [1.0, np.nan, 2.0], [np.inf, 1.0], [-np.inf, 1.0],
              [-2.0, 0.0, 2.0]]
    values, offsets = csr(groups)
    lo, ok = S.approx_percentile(np.array(values, np.float64), offsets, 0.0)
    mid, _ = S.approx_percentile(np.array(values, np.float64), offsets, 0.5)
    hi, _ = S.approx_percentile(np.array(values, np.float64), offsets, 1.0)
    assert ok.tolist() == [False] + [True] * 8  # empty: null
    assert abs(lo[1] - 3.0) <= 0.03 and lo[1] == mid[1] == hi[1]  # one value: every quantile is it
    assert lo[2] == -lo[1]  # negatives mirror positives
    assert lo[3] == 0.0 and hi[3] == 0.0
    assert all(math.isnan(v[g]) for v in (lo, mid, hi) for g in (4, 5))  # a NaN makes every quantile NaN
    assert hi[6] == np.inf and abs(lo[6] - 1) <= 0.01
    assert lo[7] == -np.inf and abs(hi[7] - 1) <= 0.01
    assert mid[8] == 0.0 and abs(lo[8] + 2) <= 0.02 and abs(hi[8] - 2) <= 0.02


def test_dd_integers_are_taken_as_floats():
    x = np.array([3, 1, 2, -(2**62), 2**62], np.int64)
    est, ok = S.approx_percentile(x, [0, 5], 0.5)
    assert ok[0] and abs(est[0] - 2) <= 0.02
    assert est[0] == S.approx_percentile_ref(x.tolist(), 0.5)


# --------------------------------------------------------------------------- determinism across processes

PROGRAM = """
import hashlib, numpy as np
from astra.ops import sketches as S
rng = np.random.default_rng(123)
ints = rng.integers(-10**9, 10**9, 50_000)
texts = np.array([f"k{v}ü" for v in ints[:5_000].tolist()], dtype=object)
floats = rng.standard_cauchy(50_000)
offsets = [0, 10, 1_000, 50_000]
parts = [S.hll_dense(S.hll_build(S.hash64(ints), offsets)).tobytes(),
         S.hll_estimate(S.hll_build(S.hash64(ints), offsets)).tobytes(),
         S.hll_dense(S.hll_build(S.hash64(texts), [0, 5_000])).tobytes()]
sk = S.dd_build(floats, offsets)
parts += [sk.keys.tobytes(), sk.values.tobytes()] + [S.dd_quantile(sk, q)[0].tobytes() for q in (0.01, 0.5, 0.99)]
print(hashlib.sha256(b"".join(parts)).hexdigest())
"""


def test_same_bytes_in_another_process():
    def run(seed):
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120,
                             env=env, check=True)
        return out.stdout.strip()

    first, second = run("1"), run("2")
    assert first == second and len(first) == 64
    here: dict = {}
    exec(PROGRAM.replace("print(", "result = ("), here)
    assert here["result"] == first


@pytest.mark.parametrize("groups", [1, 3, 40])
def test_dense_and_sorted_reductions_agree(groups, monkeypatch):
    rng = np.random.default_rng(groups)
    sizes = rng.integers(0, 20_000 // groups, groups)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    ints = rng.integers(-10**6, 10**6, int(offsets[-1]))
    floats = np.where(rng.random(len(ints)) < 0.01, np.nan, rng.standard_cauchy(len(ints)))
    half = offsets // 2

    def run():
        h = S.hash64(ints)
        left = S.hll_build(h[:half[-1]], half)
        empty = S.dd_build(floats[:0], [0] * (groups + 1))
        return (S.hll_build(h, offsets), S.hll_merge(left, left), S.dd_build(floats, offsets),
                S.dd_merge(S.dd_build(floats, offsets), empty))

    monkeypatch.setattr(S, "DENSE_CELLS", 1 << 40)
    monkeypatch.setattr(S, "DENSE_RATIO", 1 << 40)
    dense = run()
    monkeypatch.setattr(S, "DENSE_CELLS", 0)
    for a, b in zip(dense, run(), strict=True):
        assert same_sketches(a, b)


def test_lone_surrogates_hash_as_their_three_byte_pattern():
    texts = ["a\ud800b", "\udfff", "ok"]
    assert S.hash64(np.array(texts, dtype=object)).tolist() == [S.hash_ref(t) for t in texts]
    assert S.hash_ref("\ud800") == S.mix64_ref(S.fnv1a64_ref(b"\xed\xa0\x80"))


values_of_one_type = st.one_of(
    st.lists(st.lists(st.integers(-2**63, 2**63 - 1), max_size=30), max_size=6),
    st.lists(st.lists(st.text(max_size=8), max_size=30), max_size=6),
    st.lists(st.lists(st.booleans(), max_size=5), max_size=6),
)


@settings(max_examples=150, deadline=None)
@given(values_of_one_type)
def test_hll_any_groups_match_the_reference(groups):
    values, offsets = csr(groups)
    if values and all(isinstance(v, str) for v in values):
        array = np.array(values, dtype=object)
    elif values and isinstance(values[0], bool):
        array = np.array(values, dtype=bool)
    else:
        array = np.array(values, dtype=np.int64)
    sk = S.hll_build(S.hash64(array), offsets)
    assert [sk.group(g) for g in range(len(groups))] == [
        {r: v for r, v in enumerate(S.hll_registers_ref(g)) if v} for g in groups]
    assert S.approx_count_distinct(array, offsets).tolist() == [S.approx_count_distinct_ref(g) for g in groups]
    # up to 30 values: each pair sharing a register (rare; two pairs far rarer) makes it one less
    est = S.approx_count_distinct(array, offsets)
    assert all(len(set(g)) - 2 <= e <= len(set(g)) for e, g in zip(est.tolist(), groups, strict=True))


def test_python_lists_hash_like_arrays():
    assert S.hash64([1, -2]).tolist() == [S.hash_ref(1), S.hash_ref(-2)]
    assert S.hash64(["a", "é"]).tolist() == [S.hash_ref("a"), S.hash_ref("é")]
    assert S.hash64([True, False]).tolist() == [S.hash_ref(1), S.hash_ref(0)]
    assert len(S.hash64([])) == 0
