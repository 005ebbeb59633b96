"""Property test: the offline engine agrees with the reference interpreter on random plans."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import run_engine, same
from strategies_plan import Case, cases

from astra.lang.types import FLOAT64, INT64, STRING, TIMESTAMP
from astra.offline import evaluate
from astra.plan import reference


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases(), st.sampled_from([1, 2, 3, 1 << 19]), st.sampled_from([1, 2]))
def test_engine_matches_reference(case: Case, chunk_rows: int, threads: int) -> None:
    """Also with sources cut into chunks of a few rows (down to one), partitioned by slices of
    half that and answered on two threads."""
    spine_columns = (("uid", INT64), *((("region", STRING),) if case.composite else ()), ("ts", TIMESTAMP),
                     ("amount", FLOAT64.nullable()))
    expected = reference.evaluate(case.plan, "svc", 1, case.spine, case.tables)
    saved = evaluate.CHUNK_ROWS, evaluate.CHUNK_THREADS, evaluate.SLICE_ROWS
    evaluate.CHUNK_ROWS, evaluate.CHUNK_THREADS, evaluate.SLICE_ROWS = chunk_rows, threads, max(1, chunk_rows // 2)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            got = run_engine(case.plan, "svc", 1, case.spine, case.tables, Path(tmp), spine_columns)
    finally:
        evaluate.CHUNK_ROWS, evaluate.CHUNK_THREADS, evaluate.SLICE_ROWS = saved
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        for name, value in e.items():
            assert same(g[name], value), f"row {i} column {name}: engine {g[name]!r} vs reference {value!r}"
