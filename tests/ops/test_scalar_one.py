"""An operator's scalar lowering (`ScalarOp.one`, used by the single-entity plan) gives the bits
its numpy lowering gives on a one-element array, on hostile values: NaN, infinities, signed
zeros, integer limits, unseen categories and nulls.  Each operator with a `one` needs a case here."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.lang.types import FLOAT32, FLOAT64, INT32, INT64, STRING, Type
from astra.online.codegen import _arr, _custom1, _strict1, converter
from astra.ops.dtypes import numpy_dtype
from astra.ops.registry import SCALARS, Vec
from astra.ops.target_encode import bound_literal

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e308, -5e-324]))
INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 2**53 + 1, -(2**63)]))
FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


def _numeric(t: Type):
    return FLOATS if t.is_float else INTS


def _stored(t: Type, x):
    """x as the store hands it to the single-entity plan: a numpy scalar of the column's dtype."""
    if x is None:
        return None
    with np.errstate(over="ignore"):
        return np.array([x]).astype(numpy_dtype(t))[0]


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        fa, fb = float(a), float(b)
        return (math.isnan(fa) and math.isnan(fb)) or np.float64(fa).tobytes() == np.float64(fb).tobytes()
    return a == b


def _via_numpy(name: str, out: Type, arg_types: list[Type], args: list, literals: dict[int, object]):
    """What the single-entity plan computed before `one`: numpy on one-element arrays."""
    op = SCALARS[name]
    cols = []
    for i, (t, v) in enumerate(zip(arg_types, args)):
        if i in literals:
            cols.append(literals[i])
        elif op.null_policy == "custom":
            dt = numpy_dtype(t)
            filler = "" if t == STRING else 0
            cols.append(Vec(_arr(filler if v is None else v, dt), np.array([v is not None])))
        else:
            if v is None:
                return None
            cols.append(_arr(v, numpy_dtype(t)))
    r = op.numpy(out, *cols)
    return _custom1(r) if op.null_policy == "custom" else _strict1(r)


def _check(name: str, out: Type, arg_types: list[Type], args: list, literals: dict[int, object]):
    op = SCALARS[name]
    fn = op.one(out, *(literals[i] for i in sorted(literals)))  # specialised to the literals
    rest = [a for i, a in enumerate(args) if i not in literals]
    strict_null = op.null_policy != "custom" and any(a is None for a in rest)
    one = None if strict_null else fn(*rest)  # the emitter checks nulls before the call
    want = _via_numpy(name, out, arg_types, args, literals)
    conv = converter(numpy_dtype(out))
    got = None if one is None else conv(one)
    want = None if want is None else conv(want)
    assert _same(got, want), (name, args, literals, got, want)


CASES = {"/", "fitted.scale", "fitted.bins", "fitted.vocab", "fitted.impute", "fitted.target"}


def test_every_scalar_lowering_has_a_case():
    assert {name for name, op in SCALARS.items() if op.one is not None} == CASES


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([INT64, INT32, FLOAT32, FLOAT64]), st.data(), FINITE,
       st.one_of(FINITE.filter(lambda s: s != 0.0), st.sampled_from([1.0, 1e-300, -3.0])))
def test_scale(t, data, center, scale):
    x = data.draw(st.one_of(st.none(), _numeric(t)))
    x = _stored(t, x)
    _check("fitted.scale", FLOAT64.nullable(True), [t, FLOAT64, FLOAT64], [x, None, None], {1: center, 2: scale})


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([INT64, FLOAT64]), st.data(),
       st.lists(st.one_of(FINITE, st.integers(-(2**62), 2**62)), max_size=12))
def test_bins(t, data, edges):
    edges = sorted(set(float(e) for e in edges))
    x = data.draw(st.one_of(st.none(), _numeric(t), st.sampled_from(edges or [0.0])))
    if t == INT64 and isinstance(x, float):
        x = int(x) if math.isfinite(x) and abs(x) < 2**63 else 0
    _check("fitted.bins", INT32.nullable(True), [t, FLOAT64], [x, None], {1: edges})


def _categories(data, strings: bool):
    """Sorted categories, a value (null, unseen or one of them) and its type."""
    if strings:
        cats = sorted(set(data.draw(st.lists(st.text(max_size=4), max_size=8))))
        x = data.draw(st.one_of(st.none(), st.text(max_size=4), st.sampled_from(cats or [""])))
        t = STRING
    else:
        cats = sorted(set(data.draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8))))
        x = data.draw(st.one_of(st.none(), INTS, st.sampled_from(cats or [0])))
        t = INT64
    return cats, x, t


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans())
def test_vocab(data, strings):
    cats, x, t = _categories(data, strings)
    _check("fitted.vocab", INT32.nullable(True), [t, t], [x, None], {1: cats})


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([(FLOAT64, FLOAT64), (FLOAT32, FLOAT32), (INT64, INT64), (INT64, FLOAT64)]), st.data())
def test_impute(types, data):
    col, out = types
    x = _stored(col, data.draw(st.one_of(st.none(), _numeric(col))))
    value = data.draw(FINITE) if out.is_float else data.draw(INTS)
    if out == FLOAT32:
        value = float(np.float32(value)) if abs(value) < 3e38 else 0.0
    _check("fitted.impute", out, [col, out], [x, None], {1: value})


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans(), FINITE)
def test_target(data, strings, prior):
    cats, x, t = _categories(data, strings)
    encs = data.draw(st.lists(FINITE, min_size=len(cats), max_size=len(cats)))
    stats = bound_literal({"categories": cats, "encodings": encs, "prior": prior, "fold_encodings": [],
                           "fold_priors": [], "spine": "", "start": None, "end": None})
    _check("fitted.target", FLOAT64.nullable(True), [t, STRING], [x, None], {1: stats})


_NUMBERS = [INT64, INT32, FLOAT32, FLOAT64]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(_NUMBERS), st.sampled_from(_NUMBERS), st.data())
def test_divide(ta, tb, data):
    # zero divisors of both signs, overflowing and underflowing quotients, inf / inf, NaN, nulls
    a = _stored(ta, data.draw(st.one_of(st.none(), _numeric(ta))))
    b = _stored(tb, data.draw(st.one_of(st.none(), _numeric(tb), st.sampled_from([0.0, -0.0, 0, 1e-308]))))
    _check("/", FLOAT64.nullable(True), [ta, tb], [a, b], {})
