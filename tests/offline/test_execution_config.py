"""ExecutionConfig decides how a backfill runs (chunk sizes, threads), never what it answers."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from astra.offline import ExecutionConfig

CONFIGS = [
    # every chunk a handful of rows, passes sliced finer still, chunks and groups on threads
    ExecutionConfig(chunk_rows=7, slice_rows=3, threads=3, group_threads=2),
    # one row per chunk and per slice, one thread
    ExecutionConfig(chunk_rows=1, slice_rows=1, threads=1, group_threads=1),
]


@pytest.mark.parametrize("service", ["fraud_model@v1", "fraud_model@v2", "profile_lookup@v1"])
def test_answers_do_not_depend_on_how_the_backfill_runs(example_project, small_demo, service):
    spine = pl.read_parquet(small_demo / "spine.parquet")
    base = example_project.backfill(spine, service=service, data_root=small_demo)
    assert base.height == spine.height
    for config in CONFIGS:
        got = example_project.backfill(spine, service=service, data_root=small_demo, execution=config)
        assert_frame_equal(got, base)


def test_batch_scoring_takes_it_too(example_project, small_demo):
    kw = {"service": "fraud_model@v1", "every": "7d", "start": "2026-02-01", "end": "2026-03-01",
          "data_root": small_demo}
    base = example_project.snapshot(**kw)
    assert base.height > 0
    assert_frame_equal(example_project.snapshot(**kw, execution=CONFIGS[0]), base)


@pytest.mark.parametrize("field", ["chunk_rows", "threads", "slice_rows", "group_threads"])
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_settings_are_whole_numbers_of_at_least_one(field, bad):
    with pytest.raises(ValueError, match=rf"ExecutionConfig\.{field} must be a whole number >= 1, not"):
        ExecutionConfig(**{field: bad})


def test_defaults():
    c = ExecutionConfig()
    assert c.chunk_rows == c.slice_rows == 1 << 20
    assert 1 <= c.threads <= 4 and c.group_threads == 1


def test_the_settings_reach_the_chunked_sources(example_project, small_demo, monkeypatch):
    from astra.offline import evaluate

    seen = []
    real = evaluate.SortedSource

    def spy(frame, ids, times, q_ids, q_times, rows_per_chunk, widths=(), threads=1, slice_rows=None):
        seen.append((rows_per_chunk, threads, slice_rows))
        return real(frame, ids, times, q_ids, q_times, rows_per_chunk, widths, threads, slice_rows)

    monkeypatch.setattr(evaluate, "SortedSource", spy)
    spine = pl.read_parquet(small_demo / "spine.parquet")
    example_project.backfill(spine, service="fraud_model@v1", data_root=small_demo, execution=CONFIGS[0])
    assert seen and set(seen) == {(7, 3, 3)}
