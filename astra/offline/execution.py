"""How this process evaluates a plan offline: chunk sizes and threads, in one value.

A backfill's answers do not depend on these settings (tests/offline/test_execution_config.py
runs one plan under very different ones and compares the frames); only its time and memory do.
They travel down the evaluation as an argument, not as module globals, so two backfills in one
process (or one task on each Dask worker, with that worker's threads) can run differently, and
a test sets them without patching a module.

The defaults were measured at 10M events on two cores (docs/backfill.md, "Where the time goes").
"""

from __future__ import annotations

import os

import attrs

DEFAULT_CHUNK_ROWS = 1 << 20
DEFAULT_SLICE_ROWS = 1 << 20  # ~8 MB of int64 per slice: its temporaries stay in cache


def _at_least_one(instance, attribute, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ExecutionConfig.{attribute.name} must be a whole number >= 1, not {value!r}")


def default_threads() -> int:
    """Chunk threads: the cores, up to 4 (more measured no faster: the passes are memory-bound)."""
    return min(os.cpu_count() or 1, 4)


@attrs.frozen
class ExecutionConfig:
    """`chunk_rows`: sorted queries answered per chunk (a chunk's arrays stay in cache);
    `threads`: chunks answered at once, and threads of the passes over every row;
    `slice_rows`: rows per slice of those passes; `group_threads`: groups (one source and key,
    with their windows) answered at once -- 1, since the chunks already use every core."""

    chunk_rows: int = attrs.field(default=DEFAULT_CHUNK_ROWS, validator=_at_least_one)
    threads: int = attrs.field(factory=default_threads, validator=_at_least_one)
    slice_rows: int = attrs.field(default=DEFAULT_SLICE_ROWS, validator=_at_least_one)
    group_threads: int = attrs.field(default=1, validator=_at_least_one)
