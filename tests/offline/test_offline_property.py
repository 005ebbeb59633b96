"""Property test: the offline engine agrees with the reference interpreter on random plans."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "differential"))

from engines import run_offline
from helpers import same
from strategies_plan import Case, cases

from astra.plan import reference


# bounded: derandomized, no database, no shrinking (a failure prints the case; bench/fuzz.py digs further)
@settings(max_examples=150, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases(), st.sampled_from([1, 2, 3, 1 << 19]), st.sampled_from([1, 2]))
def test_engine_matches_reference(case: Case, chunk_rows: int, threads: int) -> None:
    """Also with sources cut into chunks of a few rows (down to one), partitioned by slices of
    half that and answered on two threads."""
    expected = reference.evaluate(case.plan, "svc", 1, case.spine, case.tables)
    with tempfile.TemporaryDirectory() as tmp:
        got = run_offline(case, Path(tmp), chunk_rows, threads)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        for name in (o.name for o in case.outputs):
            value = e[name]
            assert same(g[name], value), f"row {i} column {name}: engine {g[name]!r} vs reference {value!r}"
