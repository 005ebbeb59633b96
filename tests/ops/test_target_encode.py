"""Target encoding: the full fit against scikit-learn's TargetEncoder, the cross-fitting folds
against a hand computation with numpy, and the bound operators in every engine."""

from __future__ import annotations

import functools
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from three_engines import check, compile_features, run_all

from astra.ops.target_encode import FOLDS, fit_target, fold_of
from astra.ops.transforms import FitDataError
from astra.plan import reference
from astra.plan.fit import bind_features


def fnv1a64(text: str) -> int:
    """FNV-1a, 64 bit, written from its definition (offset basis 14695981039346656037, prime 2^40 + 2^8 + 0xb3)."""
    h = np.uint64(14695981039346656037)
    with np.errstate(over="ignore"):
        for byte in text.encode("utf-8"):
            h = np.uint64(h ^ np.uint64(byte)) * np.uint64(2**40 + 2**8 + 0xB3)
    return int(h)


@pytest.mark.parametrize("key", [0, 1, -7, 2**63 - 1, "u1", "", "日本"])
def test_the_fold_is_fnv1a_of_the_key_text_modulo_k(key) -> None:
    assert fold_of(key) == fnv1a64(str(key)) % FOLDS


def _data(seed: int, n: int, cats: int):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, cats, n)
    y = (rng.random(n) < 0.2 + 0.1 * (x % 3)).astype(np.float64)
    keys = rng.integers(0, n // 3 + 2, n)
    return x, y, keys


@pytest.mark.parametrize(("seed", "smoothing"), [(0, 10.0), (1, 0.5), (2, 3.0), (3, 0.0)])
def test_the_full_fit_equals_scikit_learns_target_encoder(seed: int, smoothing: float) -> None:
    from sklearn.preprocessing import TargetEncoder

    x, y, keys = _data(seed, 500, 12)
    names = np.array([f"c{v:02d}" for v in x])
    stats = fit_target(pl.Series(names), pl.Series(y), pl.Series(keys), "t", ("label", smoothing))
    enc = TargetEncoder(smooth=smoothing, target_type="continuous", cv=5, shuffle=False)
    enc.fit(names.reshape(-1, 1), y)
    assert stats["categories"] == sorted(enc.categories_[0].tolist())
    want = enc.transform(np.array(stats["categories"] + ["never"]).reshape(-1, 1))[:, 0]
    np.testing.assert_allclose([*stats["encodings"], stats["prior"]], want, rtol=0, atol=1e-12)
    assert stats["prior"] == pytest.approx(enc.target_mean_, abs=1e-12)


def test_the_folds_are_fitted_on_the_other_folds_rows() -> None:
    x, y, keys = _data(7, 400, 6)
    m = 4.0
    stats = fit_target(pl.Series(x), pl.Series(y), pl.Series(keys), "t", ("label", m))
    fold = np.array([fnv1a64(str(k)) % FOLDS for k in keys])
    cats = np.unique(x)
    assert stats["categories"] == cats.tolist() and stats["folds"] == FOLDS
    table = np.array(stats["fold_encodings"]).reshape(FOLDS, len(cats))
    for f in range(FOLDS):
        rest = fold != f
        prior = y[rest].mean()
        assert stats["fold_priors"][f] == pytest.approx(prior, abs=1e-12)
        for j, c in enumerate(cats):
            sel = rest & (x == c)
            want = (y[sel].sum() + m * prior) / (sel.sum() + m)  # a category absent elsewhere: the prior
            assert table[f, j] == pytest.approx(want, abs=1e-12), (f, c)
    # the row's own label never reaches its fold's statistics: flipping it leaves its fold unchanged
    i = 0
    y2 = y.copy()
    y2[i] = 1.0 - y2[i]
    flipped = fit_target(pl.Series(x), pl.Series(y2), pl.Series(keys), "t", ("label", m))
    own = fold[i]
    row = slice(own * len(cats), (own + 1) * len(cats))
    assert flipped["fold_encodings"][row] == stats["fold_encodings"][row]
    assert flipped["encodings"] != stats["encodings"]


def test_nulls_and_unusable_labels() -> None:
    stats = fit_target(pl.Series(["a", None, "a"]), pl.Series([1.0, 0.0, 0.0]), pl.Series([1, 2, 3]), "t",
                       ("label", 1.0))
    assert stats["categories"] == ["a"] and stats["prior"] == pytest.approx(1 / 3)  # null x rows count in the prior
    assert stats["encodings"] == [pytest.approx((1.0 + 1.0 / 3) / 3)]
    with pytest.raises(FitDataError, match="null or non-finite"):
        fit_target(pl.Series(["a"]), pl.Series([None], dtype=pl.Float64), pl.Series([1]), "t", ("label", 1.0))
    with pytest.raises(FitDataError, match="at least two"):
        fit_target(pl.Series(["a", "b"]), pl.Series([1.0, 0.0]), pl.Series([5, 5]), "t", ("label", 1.0))


FEATURES = """
    ts_: float64 = target_encode(r.s, label, 2)
    tk: float64 = target_encode(r.k, label)
    tb: float64 = target_encode(r.b, label, 0)
"""
FIELDS = "k: int64  s: string?  b: bool?"


@functools.cache
def _plan():
    return compile_features(FEATURES, FIELDS)


def _stats(categories, encodings, prior):
    return {"categories": categories, "encodings": encodings, "prior": prior, "fold_encodings": [],
            "fold_priors": [], "spine": "0" * 16, "start": None, "end": None}


def test_every_engine_applies_the_full_fit() -> None:
    plan = bind_features(_plan(), {
        "g@v1.ts_#0": _stats(["", "a", "日本"], [0.25, -0.0, 1e308], 0.125),
        "g@v1.tk#0": _stats([-(2**63), 7], [0.5, 0.75], 0.3),
        "g@v1.tb#0": _stats([0, 1], [0.1, 0.9], 0.4),
    })
    rows = [dict(k=7, s="a", b=True), dict(k=-(2**63), s=None, b=None), dict(k=0, s="z", b=False),
            dict(k=2**63 - 1, s="日本", b=True), dict(k=7, s="", b=None)]
    results = run_all(plan, [{"ts": 1_700_000_000_000_000 + i, **r} for i, r in enumerate(rows)])
    check(results, {
        "ts_": [-0.0, 0.125, 0.125, 1e308, 0.25],  # null and unseen get the prior
        "tk": [0.75, 0.5, 0.3, 0.3, 0.75],
        "tb": [0.9, 0.4, 0.1, 0.9, 0.4],  # bools are the categories 0 / 1
    })


words = st.sampled_from(["a", "b", "", "ä", "a "])


@settings(max_examples=25, deadline=None)
@given(st.lists(words, unique=True, max_size=4), st.data())
def test_every_engine_equals_the_reference(cats, data) -> None:
    cats = sorted(cats)
    f = st.floats(allow_nan=False, allow_infinity=False)
    plan = bind_features(_plan(), {
        "g@v1.ts_#0": _stats(cats, [data.draw(f) for _ in cats], data.draw(f)),
        "g@v1.tk#0": _stats([1, 2], [data.draw(f), data.draw(f)], data.draw(f)),
        "g@v1.tb#0": _stats([1], [data.draw(f)], data.draw(f)),
    })
    rows = data.draw(st.lists(st.fixed_dictionaries(dict(
        k=st.integers(-3, 3), s=st.one_of(st.none(), words), b=st.one_of(st.none(), st.booleans()))),
        min_size=1, max_size=12))
    spine = [{"ts": 1_700_000_000_000_000 + i, **r} for i, r in enumerate(rows)]
    results = run_all(plan, spine)
    ref = reference.evaluate(plan, "svc", 1, [{"uid": 1, **r} for r in spine], {"ev": []})
    check(results, {n: [r[n] for r in ref] for n in ("ts_", "tk", "tb")})
    assert all(not math.isnan(r["ts_"]) for r in ref)


@pytest.mark.parametrize(("expr", "code"), [
    ("target_encode(r.s)", "E0202"), ("target_encode(r.s, label, 1, 2)", "E0202"),
    ("target_encode(r.v, label)", "E0803"), ('target_encode(r.s, "label")', "E0806"),
    ("target_encode(r.s, a.b)", "E0806"), ('target_encode(r.s, label, "x")', "E0807"),
    ("target_encode(r.s, label, -0.5)", "E0807"),
])
def test_bad_calls_are_located_errors(expr: str, code: str) -> None:
    from three_engines import CompileFailed

    with pytest.raises(CompileFailed, match=code):
        compile_features(f"    t: float64 = {expr}", "s: string?  v: float64")
