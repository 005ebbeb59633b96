"""The differential suite of tests/differential, run for longer: random programs over hostile data,
each answered by the independent oracle, the reference interpreter, the offline engine and the
online store's batch and single-entity plans.

    uv run python bench/fuzz.py --examples 2000 [--seed 7] [--show 3]

Prints how many programs, query rows and source rows ran, which registered operators were never
drawn, and every distinct failure (grouped by the outputs' root operator, the engine and the kind
of disagreement) with one full example each.  Exits 1 when anything failed or was never drawn.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "differential")]

import oracle  # noqa: E402
from engines import answers, describe, mismatches  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from strategies_plan import Case, cases, drawn_ops, registered_ops  # noqa: E402

from astra.plan import ir  # noqa: E402


def signature(case: Case, m, overflowed: bool) -> str:
    """What kind of failure this is: the failing output's operators, the engine, and how it differs."""
    f = case.plan.feature(next((o.feature for o in case.outputs if o.name == m.output), case.outputs[0].feature))
    ops = sorted({n.op for n in ir.walk(f.expr) if isinstance(n, ir.Apply | ir.Aggregate)})
    if m.row < 0:
        return f"{m.engine}: {str(m.got).splitlines()[0][:110]}"
    how = "null vs value" if (m.got is None) != (m.expected is None) else "value"
    tag = " [an integer wrapped around]" if overflowed else ""
    return f"{m.engine}: {how} in {'/'.join(ops) or type(f.expr).__name__}{tag}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None, help="a fixed seed (default: random)")
    ap.add_argument("--show", type=int, default=1, help="full examples printed per kind of failure")
    ap.add_argument("--skip-op", action="append", default=[],
                    help="leave out programs using this operator (to look past a known failure)")
    args = ap.parse_args()

    stats = collections.Counter()
    seen: set[str] = set()
    failures: dict[str, list[str]] = collections.defaultdict(list)

    @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases(), st.data())
    def run(case: Case, data) -> None:
        if set(args.skip_op) & drawn_ops(case.plan):
            stats["skipped"] += 1
            return
        stats["programs"] += 1
        stats["query rows"] += len(case.spine)
        stats["source rows"] += sum(len(r) for r in case.tables.values())
        stats["features"] += len(case.plan.features)
        seen.update(drawn_ops(case.plan))
        knobs = {"chunk_rows": data.draw(st.sampled_from([None, 1, 2, 3])),
                 "batches": data.draw(st.sampled_from([None, [1], [2, 3]])),
                 "materialize": data.draw(st.integers(0, 4)) == 0}
        before = oracle.wraps
        got = answers(case, **knobs)
        overflowed = oracle.wraps != before
        found = mismatches(case, got)
        stats["compared values"] += len(case.spine) * len(case.outputs) * 4
        for kind in dict.fromkeys(signature(case, m, overflowed) for m in found):
            failures[kind].append(f"{knobs}\n" + describe(case, [m for m in found
                                                                 if signature(case, m, overflowed) == kind]))

    if args.seed is not None:
        run = seed(args.seed)(run)
    t0 = time.perf_counter()
    run()
    elapsed = time.perf_counter() - t0

    never = sorted(registered_ops() - seen)
    print(f"{stats['programs']} programs ({stats['features']} features), {stats['query rows']} query rows, "
          f"{stats['source rows']} source rows, {stats['compared values']} values compared, in {elapsed:.0f} s")
    print(f"operators never drawn: {', '.join(never) or 'none'}"
          + (f"; {stats['skipped']} programs left out for using {', '.join(args.skip_op)}" if args.skip_op else ""))
    total = sum(len(v) for v in failures.values())
    print(f"{total} failing program(s), {len(failures)} kind(s) of failure")
    for kind, examples in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"\n=== {len(examples)} x {kind}")
        for ex in examples[:args.show]:
            print(ex)
    return 1 if failures or never else 0


if __name__ == "__main__":
    sys.exit(main())
