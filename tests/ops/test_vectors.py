"""Vector functions: every one against scipy / numpy in float64, and its numpy lowering, its Polars
lowering and its plain-Python reference against each other to the bit (they share the rule of
docs/language.md, "Vectors": float64 products, sums left to right, vector results rounded once)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy.spatial import distance

import astra.ops.functions  # noqa: F401  (registers the operators)
from astra.lang.types import FLOAT64, Type
from astra.ops.registry import SCALARS, TypeRuleError
from astra.ops.vectors import pack, routed, unpack, vector_error

F32 = np.float32


def _batch(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """n float32 vectors of `width`: ordinary, zero, huge (1e30), tiny (1e-30) and mixed-scale rows."""
    rows = [rng.standard_normal(width), np.zeros(width), rng.standard_normal(width) * 1e30,
            rng.standard_normal(width) * 1e-30, rng.standard_normal(width) * 10.0 ** rng.integers(-30, 30, width),
            np.full(width, -1e30), np.full(width, 3.0e38)]
    while len(rows) < n:
        rows.append(rng.uniform(-5, 5, width))
    return np.array(rows[:n], F32)


def _cases():
    for width in (1, 3, 17, 10_000):
        rng = np.random.default_rng(width)
        n = 12
        a, b = _batch(rng, n, width), _batch(rng, n, width)[::-1].copy()
        b[3] = a[3]  # equal vectors: distance 0, cosine 1
        yield width, a, b


CASES = list(_cases())
IDS = [f"N={w}" for w, _, _ in CASES]

PAIR = ("dot", "cosine", "euclidean", "manhattan", "vector+", "vector-", "vector*")
ONE = ("norm", "normalize")


def _out(op: str, width: int) -> Type:
    arg = Type.vector(width)
    return SCALARS[op].infer((arg, arg) if op in PAIR else (arg,))


def _numpy(op: str, out: Type, *args: np.ndarray) -> list:
    """Row values of the numpy lowering (online form in, online form out), None where null."""
    got = SCALARS[op].numpy(out, *(pack(a) for a in args))
    values, ok = got if isinstance(got, tuple) else (got, np.ones(len(args[0]), bool))
    values = [tuple(map(float, r)) for r in unpack(values)] if out.name == "vector" else list(map(float, values))
    return [v if k else None for v, k in zip(values, ok)]


def _polars(op: str, out: Type, *args: np.ndarray) -> list:
    width = args[0].shape[1]
    df = pl.DataFrame({f"a{i}": pl.Series(a, dtype=pl.Array(pl.Float32, width)) for i, a in enumerate(args)})
    got = df.select(SCALARS[op].polars(out, *(pl.col(f"a{i}") for i in range(len(args))))).to_series()
    return [None if v is None else (tuple(v) if out.name == "vector" else v) for v in got.to_list()]


def _reference(op: str, out: Type, *args: np.ndarray) -> list:
    rows = zip(*([tuple(map(float, r)) for r in a] for a in args))
    return [SCALARS[op].reference(out, *r) for r in rows]


def _bits(x):
    if x is None:
        return None
    if isinstance(x, tuple):
        return tuple(_bits(v) for v in x)
    return np.float64(x).tobytes()


@pytest.mark.parametrize(("width", "a", "b"), CASES, ids=IDS)
@pytest.mark.parametrize("op", PAIR + ONE)
def test_numpy_polars_and_reference_agree_to_the_bit(op, width, a, b) -> None:
    out = _out(op, width)
    args = (a, b) if op in PAIR else (a,)
    ref = _reference(op, out, *args)
    assert list(map(_bits, _numpy(op, out, *args))) == list(map(_bits, ref))
    assert list(map(_bits, _polars(op, out, *args))) == list(map(_bits, ref))


def _bound(terms: np.ndarray) -> float:
    """A bound of a left-to-right float64 sum's rounding error: N * eps * sum |term|."""
    return len(terms) * 2.0**-52 * float(np.abs(terms).sum()) + 1e-300


@pytest.mark.parametrize(("width", "a", "b"), CASES, ids=IDS)
def test_every_function_against_scipy_and_numpy_in_float64(width, a, b) -> None:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    dot = _numpy("dot", FLOAT64, a, b)
    cos = _numpy("cosine", FLOAT64.nullable(), a, b)
    euc = _numpy("euclidean", FLOAT64, a, b)
    man = _numpy("manhattan", FLOAT64, a, b)
    norm = _numpy("norm", FLOAT64, a)
    unit = _numpy("normalize", Type.vector(width, optional=True), a)
    for j in range(len(a)):
        x, y = a64[j], b64[j]
        assert abs(dot[j] - float(np.dot(x, y))) <= 2 * _bound(x * y)
        assert math.isclose(euc[j], distance.euclidean(x, y), rel_tol=1e-12, abs_tol=1e-300)
        assert math.isclose(man[j], distance.cityblock(x, y), rel_tol=1e-12, abs_tol=1e-300)
        assert math.isclose(norm[j], float(np.linalg.norm(x)), rel_tol=1e-12, abs_tol=1e-300)
        if not x.any() or not y.any():
            assert cos[j] is None  # the zero-vector rule
        else:
            # scipy's cosine is the distance 1 - similarity, clipped to [0, 2]
            assert abs((1.0 - cos[j]) - distance.cosine(x, y)) <= 1e-12
        if not x.any():
            assert unit[j] is None and norm[j] == 0.0
        else:
            want = (x / np.linalg.norm(x)).astype(F32)
            got = np.array(unit[j], F32)
            assert np.all(np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32)) <= 1)  # 1 ulp
    assert cos[3] == pytest.approx(1.0, abs=1e-12) or not a[3].any()
    assert euc[3] == 0.0 and man[3] == 0.0


@pytest.mark.parametrize(("width", "a", "b"), CASES, ids=IDS)
def test_elementwise_arithmetic_and_scaling_round_once_to_float32(width, a, b) -> None:
    vt = Type.vector(width)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(over="ignore"):
        for op, want in (("vector+", a64 + b64), ("vector-", a64 - b64), ("vector*", a64 * b64)):
            got = np.array(_numpy(op, vt, a, b), F32)
            np.testing.assert_array_equal(got, want.astype(F32))  # inf past float32's range
        s = np.linspace(-3, 3, len(a))
        got = SCALARS["number*vector"].numpy(vt, s, pack(a))
        np.testing.assert_array_equal(unpack(got), (s[:, None] * a64).astype(F32))
    ref = [SCALARS["number*vector"].reference(vt, float(k), tuple(map(float, r))) for k, r in zip(s, a)]
    assert [tuple(map(float, r)) for r in unpack(got)] == ref


def test_known_values() -> None:
    a, b = np.array([[3.0, 4.0]], F32), np.array([[4.0, -3.0]], F32)
    assert _numpy("dot", FLOAT64, a, b) == [0.0]
    assert _numpy("norm", FLOAT64, a) == [5.0]
    assert _numpy("euclidean", FLOAT64, a, b) == [math.sqrt(50)]
    assert _numpy("manhattan", FLOAT64, a, b) == [8.0]
    assert _numpy("cosine", FLOAT64.nullable(), a, b) == [0.0]
    assert _numpy("cosine", FLOAT64.nullable(), a, -a) == [-1.0]
    assert _numpy("normalize", Type.vector(2, optional=True), a) == [(float(F32(0.6)), float(F32(0.8)))]


def test_sums_run_left_to_right_not_pairwise() -> None:
    # 1e16 + 1 + -1e16 + 1 ... left to right loses every 1; a pairwise or exact sum would not
    width = 64
    a = np.array([[1e16 if k % 2 == 0 else 1.0 for k in range(width)]], np.float64)
    a[0, 2::2] = [(-1) ** (k + 1) * 1e16 for k in range(width // 2 - 1)]
    a = a.astype(F32)
    want = 0.0
    for x in a[0].astype(np.float64):
        want += x
    assert _numpy("dot", FLOAT64, a, np.ones_like(a)) == [want]


def test_type_rules() -> None:
    v3, v4 = Type.vector(3), Type.vector(4)
    assert SCALARS["dot"].infer((v3, v3)) == FLOAT64
    assert SCALARS["dot"].infer((v3.nullable(), v3)) == FLOAT64.nullable()
    assert SCALARS["cosine"].infer((v3, v3)) == FLOAT64.nullable()  # null for a zero vector
    assert SCALARS["normalize"].infer((v3,)) == v3.nullable()
    assert SCALARS["vector+"].infer((v3, v3)) == v3
    with pytest.raises(TypeRuleError) as err:
        SCALARS["euclidean"].infer((v3, v4))
    assert err.value.code == "E0220" and err.value.arg == 1
    with pytest.raises(TypeRuleError):
        SCALARS["norm"].infer((FLOAT64,))
    assert routed("*", (FLOAT64, v3)) == ("number*vector", (0, 1))
    assert routed("*", (v3, FLOAT64)) == ("number*vector", (1, 0))
    assert routed("+", (v3, v3)) == ("vector+", (0, 1))
    assert routed("+", (FLOAT64, FLOAT64)) is None


@pytest.mark.parametrize(("value", "message"), [
    ([1.0, 2.0, 3.0], None),
    ((1, 2, 3), None),
    (np.array([1, 2, 3], F32), None),
    ([1.0, 2.0], "has 2 elements, expected 3"),
    ([1.0, float("nan"), 3.0], "element 1 is nan"),
    ([1.0, float("inf"), 3.0], "element 1 is inf"),
    ([1.0, 1e39, 3.0], "beyond float32's range"),
    ([1.0, "2", 3.0], "element 1 is '2', not a number"),
    ([1.0, True, 3.0], "not a number"),
    ([1.0, None, 3.0], "element 1 is None"),
    ("abc", "is not a `vector<float32, 3>`"),
    (3.0, "is not a `vector<float32, 3>`"),
])
def test_vector_values_are_checked_on_entry(value, message) -> None:
    why = vector_error(value, Type.vector(3))
    assert (why is None) if message is None else (message in why), why
