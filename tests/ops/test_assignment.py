"""Experiment assignment (docs/language.md, "Experiments"): the version-2 hash against the FNV-1a
definition, the vectorised paths against the plain-Python reference, and the statistical
properties the semantics promise (arm ratios, exclusion within a layer, independence across
layers, ramps that never move a unit between arms)."""

from __future__ import annotations

import math
import random

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.lang.types import STRING
from astra.ops.assignment import assign, assign_many, bucket, buckets, fnv1a32, spec
from astra.ops.registry import SCALARS

HALF = (("control", 50.0), ("treatment", 50.0))


def by_definition(data: bytes) -> int:
    """FNV-1a written out from its definition: xor the byte in, then multiply by the prime mod 2**32."""
    h = 2166136261
    for b in data:
        h ^= b
        h = (h * 16777619) % 2**32
    return h


def test_fnv1a_published_vectors():
    # the FNV reference test vectors for the 32-bit FNV-1a variant
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968


def test_version_2_is_the_hash_of_the_decimal_hash():
    # "a" hashes to 3826002220; version 2 hashes that decimal text again and keeps it mod 10000
    assert by_definition(b"a") == 3826002220
    assert bucket("", "a") == by_definition(b"3826002220") % 10000
    assert bucket("seed", "key") == by_definition(str(by_definition(b"seedkey")).encode()) % 10000
    # the seed is a prefix of the hashed text, UTF-8 encoded
    assert bucket("é", "ü") == by_definition(str(by_definition("éü".encode())).encode()) % 10000


keys = st.one_of(st.text(max_size=40), st.integers(min_value=-2**63, max_value=2**63 - 1).map(str))


@settings(max_examples=200, deadline=None)
@given(st.lists(keys, max_size=30), st.text(max_size=10))
def test_vectorised_hash_equals_reference(ks, seed):
    assert buckets(seed, ks).tolist() == [bucket(seed, k) for k in ks]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.integers(min_value=-2**63, max_value=2**63 - 1)),
                min_size=1, max_size=30),
       st.floats(0, 50), st.floats(1, 100))
def test_numpy_and_polars_lowerings_equal_reference(ks, holdout, coverage):
    s = spec("layer", "salt", (("a", 30.0), ("b", 70.0)), holdout=holdout, coverage=coverage)
    text = s.text()
    op = SCALARS["assignment"]
    expected = [op.reference(STRING, k, text) for k in ks]
    strs = [str(k) for k in ks]  # one column type at a time, as engines see it
    ints = [k for k in ks if isinstance(k, int)]
    for column, want in ((strs, [assign(s, k) for k in strs]),
                         (ints, [op.reference(STRING, k, text) for k in ints])):
        if not column:
            continue
        values, valid = op.numpy(STRING, np.array(column, dtype=object if isinstance(column[0], str) else np.int64),
                                 text)
        assert [v if ok else None for v, ok in zip(values.tolist(), valid.tolist(), strict=True)] == want
        frame = pl.DataFrame({"k": column})
        got = frame.select(op.polars(STRING, pl.col("k"), text).alias("a"))["a"].to_list()
        assert got == want
    assert expected == [assign(s, k) for k in ks]


def sample(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"user-{rng.getrandbits(64)}" for _ in range(n)]


def within(count: int, n: int, p: float, sds: float = 4.5) -> bool:
    """Is `count` of `n` within `sds` binomial standard deviations of n*p?"""
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


def test_arm_ratios_on_100k_keys():
    ks = sample(100_000, 1)
    s = spec("checkout", "ratio", (("control", 20.0), ("treatment", 30.0), ("other", 50.0)), holdout=5)
    arms, valid = assign_many(s, ks)
    n = len(ks)
    held = n - int(valid.sum())
    assert within(held, n, 0.05)
    for name, weight in (("control", 0.2), ("treatment", 0.3), ("other", 0.5)):
        assert within(int((arms[valid] == name).sum()), n, 0.95 * weight), name


def test_experiments_of_a_layer_are_exclusive_and_share_it_by_slice():
    ks = sample(50_000, 2)
    a = spec("checkout", "a", HALF, slice=(0, 40))
    b = spec("checkout", "b", HALF, slice=(40, 100))
    _, in_a = assign_many(a, ks)
    _, in_b = assign_many(b, ks)
    assert not (in_a & in_b).any()
    assert within(int(in_a.sum()), len(ks), 0.4)
    assert within(int(in_b.sum()), len(ks), 0.6)
    assert (in_a | in_b).all()  # slices covering the layer put every unit in one experiment


def test_layers_are_independent():
    # a 2x2 contingency table of arms in two layers: chi-square with 1 degree of freedom
    ks = sample(100_000, 3)
    x, _ = assign_many(spec("search", "x", HALF), ks)
    y, _ = assign_many(spec("checkout", "y", HALF), ks)
    table = np.array([[np.sum((x == a) & (y == b)) for b in ("control", "treatment")]
                      for a in ("control", "treatment")], dtype=float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    assert chi2 < 10.83  # p = 0.001 critical value for 1 dof; fixed seed, so this cannot flake


def test_same_salt_in_another_layer_gives_another_assignment():
    ks = sample(10_000, 4)
    x, _ = assign_many(spec("search", "same", HALF), ks)
    y, _ = assign_many(spec("checkout", "same", HALF), ks)
    assert within(int((x == y).sum()), len(ks), 0.5)


@settings(max_examples=200, deadline=None)
@given(keys, st.floats(0, 100), st.floats(0, 100), st.floats(0, 30),
       st.lists(st.integers(1, 10), min_size=1, max_size=4))
def test_ramping_coverage_never_moves_a_unit_between_arms(key, c1, c2, holdout, weights):
    total = sum(weights)
    arms = tuple((f"arm{i}", 100.0 * w / total) for i, w in enumerate(weights))
    lo, hi = sorted((c1, c2))
    before = assign(spec("l", "s", arms, holdout=holdout, coverage=lo), key)
    after = assign(spec("l", "s", arms, holdout=holdout, coverage=hi), key)
    assert before is None or before == after


def test_full_coverage_without_holdout_assigns_every_unit():
    ks = sample(2_000, 5)
    _, valid = assign_many(spec("l", "s", HALF), ks)
    assert valid.all()


def test_assignment_is_deterministic_across_calls_and_key_types():
    s = spec("l", "s", HALF)
    assert assign(s, 12345) == assign(s, "12345") == assign(spec("l", "s", HALF), 12345)


# --------------------------------------------------------------------------- at scale, and across processes
def chi_square(observed: np.ndarray, expected: np.ndarray) -> float:
    return float(((observed - expected) ** 2 / expected).sum())


def test_sample_ratio_chi_square_at_one_million_units():
    """Goodness of fit of held-out / control / treatment / other counts at 1M units against the
    declared 5% holdout and 20/30/50 split: chi-square with 3 degrees of freedom below the
    p = 0.001 critical value (16.27). Keys and seed are fixed, so this cannot flake."""
    ks = [f"unit-{i}" for i in range(1_000_000)]
    s = spec("checkout", "srm", (("control", 20.0), ("treatment", 30.0), ("other", 50.0)), holdout=5)
    arms, valid = assign_many(s, ks)
    observed = np.array([(~valid).sum()] + [((arms == a) & valid).sum() for a in ("control", "treatment", "other")],
                        dtype=float)
    expected = len(ks) * np.array([0.05, 0.95 * 0.2, 0.95 * 0.3, 0.95 * 0.5])
    assert chi_square(observed, expected) < 16.27


def test_layers_are_independent_at_one_million_units():
    """Arms in two layers form a 3x2 table whose chi-square test of independence (2 degrees of
    freedom) stays below the p = 0.001 critical value (13.82)."""
    ks = [f"u{i}" for i in range(1_000_000)]
    x, _ = assign_many(spec("search", "x", (("a", 20.0), ("b", 30.0), ("c", 50.0))), ks)
    y, _ = assign_many(spec("checkout", "y", HALF), ks)
    table = np.array([[np.sum((x == a) & (y == b)) for b in ("control", "treatment")] for a in "abc"], dtype=float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    assert chi_square(table, expected) < 13.82


def test_assignment_is_the_same_in_another_process_with_another_hash_seed():
    """Nothing depends on Python's per-process string hashing or on the order keys arrive in."""
    import os
    import subprocess
    import sys

    code = ("from astra.ops.assignment import assign_many, spec\n"
            "ks = [f'k{i}' for i in range(5000)][::-1]\n"
            "a, v = assign_many(spec('l', 's', (('x', 30.0), ('y', 70.0)), holdout=10), ks)\n"
            "print(sorted(zip(ks, [n if ok else None for n, ok in zip(a.tolist(), v.tolist())])))\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")]
    ks = [f"k{i}" for i in range(5000)]
    arms, valid = assign_many(spec("l", "s", (("x", 30.0), ("y", 70.0)), holdout=10), ks)
    here = sorted(zip(ks, [n if ok else None for n, ok in zip(arms.tolist(), valid.tolist())]))
    assert runs[0] == runs[1] == str(here)


# --------------------------------------------------------------------------- nested experiments
def test_a_nested_experiment_splits_exactly_the_units_of_its_parents_arm():
    """docs/language.md: with `within parent.arm`, a unit takes part only when the parent puts it
    in that arm, and is then assigned by the nested experiment's own layer, salt and shares."""
    ks = [f"n{i}" for i in range(200_000)]
    parent = spec("checkout", "p", HALF, holdout=10)
    child = spec("button", "c", (("blue", 25.0), ("green", 75.0)), parent=(parent, "treatment"))
    p_arms, p_valid = assign_many(parent, ks)
    c_arms, c_valid = assign_many(child, ks)
    in_arm = p_valid & (p_arms == "treatment")
    assert not (c_valid & ~in_arm).any()  # never outside the parent's arm
    alone, alone_valid = assign_many(spec("button", "c", (("blue", 25.0), ("green", 75.0))), ks)
    assert (c_valid == (in_arm & alone_valid)).all()  # inside it, the child's own rule decides
    assert (c_arms[c_valid] == alone[c_valid]).all()
    n = int(in_arm.sum())
    assert within(int((c_arms[c_valid] == "blue").sum()), n, 0.25)
    assert [assign(child, k) for k in ks[:3000]] == [a if ok else None for a, ok in zip(c_arms[:3000], c_valid[:3000])]


def test_nesting_is_in_the_spec_text_and_top_level_texts_are_unchanged():
    from astra.ops.assignment import parse_spec

    top = spec("checkout", "p", HALF)
    assert "parent" not in top.text()
    child = spec("button", "c", HALF, parent=(top, "control"))
    assert parse_spec(child.text()) == child and parse_spec(top.text()) == top
    grandchild = spec("colour", "g", HALF, parent=(child, "treatment"))
    assert parse_spec(grandchild.text()) == grandchild
