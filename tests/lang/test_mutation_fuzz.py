"""Mutation fuzzing of the whole example project: the compiler never crashes on bad input.

10,000 numbered cases (seed 1), each one file of `features/` (imports included) changed by one to
three mutations and compiled in-process. Every case must end in diagnostics, never an exception;
every diagnostic must render and point at a real `file:line:col`; a clean plan must be whole.
`ASTRA_FUZZ_CASES` changes the count; `bench/fuzz_compile.py` runs longer. About 30 ms a case.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import (
    MUTATIONS,
    Case,
    Failure,
    compile_case,
    copy_project,
    grammar_tokens,
    project_tokens,
    read_project,
    run_cases,
)

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "features"
SEED = 1
CASES = int(os.environ.get("ASTRA_FUZZ_CASES", "10000"))
CHUNK = 250


def _chunk(first: int):
    return run_cases(PROJECT, SEED, first, min(CHUNK, CASES - first))


def test_ten_thousand_mutated_projects_compile_to_diagnostics_never_to_a_crash() -> None:
    firsts = range(0, CASES, CHUNK)
    # Chunks run in two forked workers where fork exists (CI has two cores), else one by one.
    if sys.platform == "linux" and (os.cpu_count() or 1) > 1:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(_chunk, firsts)
    else:
        results = [_chunk(f) for f in firsts]
    failures = [f for found, _ in results for f in found]
    per_file = sum((hit for _, hit in results), collections.Counter())
    assert sum(per_file.values()) == CASES
    assert set(per_file) == {f for f in read_project(PROJECT) if f.endswith(".feat")}  # every file, imports too
    assert not failures, f"{len(failures)} of {CASES} cases failed; the first:\n\n" + "\n\n".join(
        f.report() for f in failures[:3])


FILES = read_project(PROJECT)
POOL = grammar_tokens() + project_tokens(FILES)


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file=st.sampled_from(sorted(f for f in FILES if f.endswith(".feat"))),
       steps=st.lists(st.tuples(st.sampled_from(MUTATIONS), st.randoms(use_true_random=False)), min_size=1,
                      max_size=4))
def test_hypothesis_mutations_compile_to_located_diagnostics(tmp_path_factory, file, steps) -> None:
    text = FILES[file]
    for mutation, rng in steps:
        text = mutation(text, rng, POOL)
    root = copy_project(PROJECT, tmp_path_factory.mktemp("fuzz") / "features")
    case = Case(number=-1, file=file, steps=tuple(m.__name__ for m, _ in steps), text=text)
    found = compile_case(root, FILES, case)
    assert not found, Failure(case=case, problems=tuple(found)).report() + f"\n--- the file ---\n{text}"
