#!/usr/bin/env python3
"""Mutation-fuzz the compiler on the example project for longer than CI does.

Each case changes one file of `features/` (imports included) and compiles the copy in-process;
see `tests/lang/mutations.py` for the mutations and the checks. Cases are numbered and derived
from (seed, number), so a failing case is rerun alone with `--first N --cases 1`.

Usage: bench/fuzz_compile.py [--cases 100000] [--seed 1] [--first 0] [--workers 2] [--show 3]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lang"))

from mutations import run_cases  # noqa: E402


def _run(job: tuple[int, int, int]):
    return run_cases(ROOT / "features", *job)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first", type=int, default=0, help="number of the first case")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--show", type=int, default=3, help="failures printed in full")
    a = ap.parse_args()
    chunk = max(1, a.cases // (a.workers * 8))
    end = a.first + a.cases
    jobs = [(a.seed, s, min(chunk, end - s)) for s in range(a.first, end, chunk)]
    t0 = time.perf_counter()
    failures, per_file = [], collections.Counter()
    with multiprocessing.Pool(a.workers) as pool:
        for found, hit in pool.imap_unordered(_run, jobs):
            failures += found
            per_file += hit
    took = time.perf_counter() - t0
    print(f"{a.cases} cases (seed {a.seed}, from {a.first}) in {took:.1f} s on {a.workers} workers "
          f"({took * a.workers / a.cases * 1000:.0f} ms a case): {len(failures)} failing")
    print("cases per file: " + ", ".join(f"{f} {n}" for f, n in sorted(per_file.items())))
    kinds = collections.Counter(f.problems[0].strip().splitlines()[-1][:120] for f in failures)
    for kind, n in kinds.most_common():
        print(f"  {n:6d}  {kind}")
    for f in sorted(failures, key=lambda f: f.case.number)[:a.show]:
        print("\n" + f.report())
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
