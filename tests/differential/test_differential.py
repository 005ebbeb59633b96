"""Random well-typed programs over hostile data, answered five ways and compared with the
independent oracle: the reference interpreter, the offline engine, and the online store's batch
and single-entity plans (`engines.answers`).

Bounded for CI: a fixed number of examples, derandomized, no example database, no shrinking (a
failure prints the program, the query rows and the data instead).  Coverage of the registry is
guaranteed by construction: one test per registered operator, each example rooted at it.
`bench/fuzz.py` runs the same checks for longer, with a random seed, counts what ran, and fails
when unfocused generation never drew some registered operator.
"""

from __future__ import annotations

import pytest
from engines import answers, describe, mismatches
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from strategies_plan import Case, cases, drawn_ops, registered_ops

BOUNDED = settings(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck))
PER_OPERATOR = 4  # examples rooted at each registered operator
RANDOM = 120  # examples rooted anywhere


def check(case: Case, data) -> None:
    """All five answers agree with the oracle; the engines' knobs drawn at random."""
    chunk_rows = data.draw(st.sampled_from([None, 1, 2, 3]), label="offline chunk rows")
    batches = data.draw(st.sampled_from([None, [1], [2, 3], [5, 1]]), label="online push batch sizes")
    materialize = data.draw(st.integers(0, 4), label="materialize") == 0
    got = answers(case, chunk_rows=chunk_rows, batches=batches, materialize=materialize)
    found = mismatches(case, got)
    assert not found, "\n" + describe(case, found)


@pytest.mark.parametrize("op", sorted(registered_ops()))
def test_every_registered_operator_agrees_five_ways(op: str) -> None:
    """One test per operator of the registry, so an operator the generator cannot reach fails."""

    @settings(BOUNDED, max_examples=PER_OPERATOR)
    @given(cases(focus=op), st.data())
    def run(case: Case, data) -> None:
        assert op in drawn_ops(case.plan), f"`{op}` was not drawn"
        check(case, data)

    run()


def test_random_programs_agree_five_ways() -> None:
    @settings(BOUNDED, max_examples=RANDOM)
    @given(cases(), st.data())
    def run(case: Case, data) -> None:
        check(case, data)

    run()
