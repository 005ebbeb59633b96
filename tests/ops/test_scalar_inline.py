"""An operator's inline form (`ScalarOp.inline`, spliced into the single-entity plan) gives the bits
its numpy lowering gives on a one-element array, already as the Python value the plan's converter
would make of it (the plan converts it no further), on hostile values: NaN, infinities, signed zeros,
int64 limits, float32 values, ties on bin edges, bools, unseen categories and nulls.  The argument
comes either raw from the store (a numpy scalar) or as a converted feature (a Python value, and a
float64 feature is passed as its own float).  Each operator with an inline form needs a case here."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scalar_one import _categories, _numeric, _same, _stored, _via_numpy

from astra.lang.types import BOOL, FLOAT32, FLOAT64, INT32, INT64, STRING, Type
from astra.online.codegen import _OneEmitter, converter
from astra.ops.dtypes import numpy_dtype
from astra.ops.registry import SCALARS
from astra.ops.target_encode import bound_literal

CASES = {"fitted.scale", "fitted.bins", "fitted.vocab", "fitted.impute", "fitted.target", "fitted.one_hot"}
FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


def test_every_inline_form_has_a_case():
    assert {name for name, op in SCALARS.items() if op.inline is not None} == CASES


def _inline(name: str, out: Type, literals: dict[int, object], x_is_float: bool):
    """The operator's inline expression as a function of x, its constants bound as the plan binds them."""
    op = SCALARS[name]
    ns: dict = {}
    em = _OneEmitter(None, ns)
    code = op.inline(out, "x", "x" if x_is_float else "float(x)", em.literal,
                     *(literals[i] for i in sorted(literals)))
    if code is None:
        return None
    if op.null_policy != "custom":
        code = f"None if x is None else {code}"
    exec(f"def f(x):\n    return {code}\n", ns)
    return ns["f"]


def _as_feature(t: Type, x):
    """x as a converted feature of type t holds it: a Python value."""
    return None if x is None else converter(numpy_dtype(t))(x)


def _check(name: str, out: Type, arg_type: Type, x, literals: dict[int, object]):
    """x as the store gives it and as a converted feature: inline == numpy, and already converted."""
    conv = converter(numpy_dtype(out))
    n = 1 + len(literals)  # x first, then the literals
    want = _via_numpy(name, out, [arg_type] * n, [x] + [None] * len(literals), literals)
    want = None if want is None else conv(want)
    for value, is_float in ((x, False), (_as_feature(arg_type, x), arg_type == FLOAT64)):
        fn = _inline(name, out, literals, is_float)
        got = fn(value)
        assert _same(got, want), (name, value, literals, got, want)
        if got is not None:  # the plan's converter would leave it exactly as it is
            again = conv(got)
            assert type(again) is type(got) and _same(again, got), (name, value, got, again)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([INT64, INT32, FLOAT32, FLOAT64]), st.data(), FINITE,
       st.one_of(FINITE.filter(lambda s: s != 0.0), st.sampled_from([1.0, 1e-300, -3.0, 5e-324])))
def test_scale(t, data, center, scale):
    x = _stored(t, data.draw(st.one_of(st.none(), _numeric(t))))
    _check("fitted.scale", FLOAT64.nullable(True), t, x, {1: center, 2: scale})


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([INT64, FLOAT64, FLOAT32]), st.data(),
       st.lists(st.one_of(FINITE, st.integers(-(2**62), 2**62)), max_size=12))
def test_bins(t, data, edges):
    edges = sorted(set(float(e) for e in edges))
    x = data.draw(st.one_of(st.none(), _numeric(t), st.sampled_from(edges or [0.0])))
    if t == INT64 and isinstance(x, float):
        x = int(x) if math.isfinite(x) and abs(x) < 2**63 else 0
    _check("fitted.bins", INT32.nullable(True), t, _stored(t, x), {1: edges})


def test_bins_rounds_a_large_integer_as_numpy_does():
    # 2**53 + 3 becomes the float 2**53 + 4, equal to the edge: numpy puts it above, an exact
    # integer comparison would put it below
    edge = float(2**53 + 4)
    _check("fitted.bins", INT32.nullable(True), INT64, np.int64(2**53 + 3), {1: [edge]})
    assert _inline("fitted.bins", INT32.nullable(True), {1: (edge,)}, False)(2**53 + 3) == 1


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans())
def test_vocab(data, strings):
    cats, x, t = _categories(data, strings)
    _check("fitted.vocab", INT32.nullable(True), t, _stored(t, x), {1: cats})


@settings(max_examples=50, deadline=None)
@given(st.sampled_from([None, True, False]), st.sampled_from([[], [0], [1], [0, 1]]))
def test_vocab_of_bools(x, cats):
    _check("fitted.vocab", INT32.nullable(True), BOOL, _stored(BOOL, x), {1: cats})


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans())
def test_one_hot(data, strings):
    cats, x, t = _categories(data, strings)
    _check("fitted.one_hot", Type.list_of(INT32, optional=True), t, _stored(t, x), {1: cats})


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([FLOAT64, FLOAT32, INT64, INT32]), st.data())
def test_impute_to_float64(col, data):
    x = _stored(col, data.draw(st.one_of(st.none(), _numeric(col))))
    value = data.draw(st.one_of(FINITE, st.integers(-(2**63), 2**63 - 1)))
    _check("fitted.impute", FLOAT64, col, x, {1: value})


def test_impute_of_another_type_is_not_inlined():
    # its Python form is left to `one` and the plan's converter
    for out, value in ((INT64, 3), (FLOAT32, 1.5), (STRING, "a")):
        assert _inline("fitted.impute", out, {1: value}, False) is None


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans(), FINITE)
def test_target(data, strings, prior):
    cats, x, t = _categories(data, strings)
    encs = data.draw(st.lists(FINITE, min_size=len(cats), max_size=len(cats)))
    stats = bound_literal({"categories": cats, "encodings": encs, "prior": prior, "fold_encodings": [],
                           "fold_priors": [], "spine": "", "start": None, "end": None})
    _check("fitted.target", FLOAT64.nullable(True), t, _stored(t, x), {1: stats})


def test_target_of_a_bool_finds_its_category():
    stats = bound_literal({"categories": [0, 1], "encodings": [0.25, 0.75], "prior": 0.5, "fold_encodings": [],
                           "fold_priors": [], "spine": "", "start": None, "end": None})
    for x, want in ((True, 0.75), (np.False_, 0.25)):
        assert _inline("fitted.target", FLOAT64.nullable(True), {1: stats}, False)(x) == want
