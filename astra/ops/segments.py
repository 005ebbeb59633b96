"""Segments: every query's window as one run of its non-null values, for order-statistic kernels.

Some aggregations (first_k, top_k, percentile, skew, exp_decay_sum, sketches) need the values
themselves rather than a prefix structure.  Both engines hand them the same thing: for a batch of
n queries, the window's non-null (and, with a `where`, included) values in (time, source position)
order, query after query, as CSR arrays.  The offline `Window.segments(column, times)` and the
online `WindowView.segments(times)` build it; the kernel that reads it lives in `astra.ops`, once,
so the engines cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import numpy as np


@attrs.frozen(kw_only=True, eq=False)
class Segments:
    """Query j's values are `values[offsets[j]:offsets[j + 1]]`, oldest first (ties: source order).

    `values` holds numbers (int64, float32/64, bool), times as int64 µs, or strings (an object or
    StringDType array); `offsets` is int64 of length n + 1, starting at 0.  With `times=True` the
    engine also fills `times` (each value's event time, int64 µs) and `query_times` (each query's
    time t, int64 µs); otherwise both are None."""

    values: np.ndarray
    offsets: np.ndarray
    times: np.ndarray | None = None
    query_times: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of queries."""
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """Values per query (int64)."""
        import numpy as np

        return np.diff(self.offsets)

    def query_ids(self) -> np.ndarray:
        """The query index of every value (int64, non-decreasing)."""
        import numpy as np

        return np.repeat(np.arange(self.n, dtype=np.int64), self.lengths())

    def starts(self) -> np.ndarray:
        """The position in `values` of each query's first value (= offsets[:-1])."""
        return self.offsets[:-1]


def offsets_of(counts: np.ndarray) -> np.ndarray:
    """CSR offsets (int64, length n + 1, from 0) from per-query counts."""
    import numpy as np

    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def concatenated_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[starts[0], starts[0] + lengths[0]), [starts[1], ...), ... concatenated (int64), without a
    Python loop: each position is its range's start plus its rank inside the range."""
    import numpy as np

    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(np.asarray(starts, np.int64) - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift
