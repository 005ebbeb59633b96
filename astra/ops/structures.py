"""What an aggregation kernel may ask of an engine's window: the generic structures, as protocols.

The kernels in `astra.ops.aggregations` are written against these and nothing else, so `astra.ops`
imports no engine and an engine offers every aggregation by implementing the structures (counts,
exact sums and means, range extremes, the nearest valid position, distinct counts, moments,
newest-k, gathered rows, segments of values) rather than code per operator.

- `OfflineWindow` (astra.offline.windows.Window): one window for every query of a chunk of sorted
  rows, column by name; results are numpy arrays or Polars Series in sorted-query order.
- `OnlineWindow` (astra.online.view.WindowView): one aggregation input over one window for every
  query of a batch; results are numpy arrays or `Vec`s (values and validity).
- `OnlineSingle` (astra.online.single.Single): one entity at one time; input i of table ti over
  window j (-1: lifetime), results as Python scalars (None: null), bit-identical to the batch form.

Each structure is defined over the window's visible rows in (time, source position) order and
ignores null inputs unless it says otherwise (docs/semantics.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from astra.ops.registry import Vec
    from astra.ops.segments import Segments


class OfflineWindow(Protocol):
    """The rows [lo, hi) of one window for every query of a chunk (column None: count(*))."""

    @property
    def size(self) -> int:
        """Number of queries."""
        ...

    def count(self, column: str | None) -> np.ndarray:
        """Non-null values per window (every row when column is None)."""
        ...

    def sum(self, column: str) -> np.ndarray:
        """Sums of non-null values: int64 wrapping for integers, exactly rounded float64; 0 when empty."""
        ...

    def mean(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, count) per window, exactly rounded; the mean is garbage where the count is 0."""
        ...

    def variance(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(count, sample variance) per window; the variance is garbage where the count is below 2."""
        ...

    def extremes(self, windows: Sequence[OfflineWindow], column: str, largest: bool) -> list[pl.Series]:
        """max (or min) of the non-null values of each of `windows` (all of this window's chunk,
        answered together so they share one range structure); null where a window has none, NaN
        where it holds a NaN."""
        ...

    def nearest_valid(self, column: str | None, latest: bool) -> np.ndarray:
        """Row position of the latest (or earliest) non-null value in each window, or -1."""
        ...

    def gather(self, column: str, positions: np.ndarray) -> pl.Series:
        """Values at row positions (-1: null), one per query."""
        ...

    def distinct(self, column: str) -> np.ndarray:
        """Distinct non-null values per window."""
        ...

    def last_k(self, column: str, k: int) -> pl.Series:
        """The k latest non-null values of each window, newest first (a list per query)."""
        ...

    def segments(self, column: str, times: bool = False) -> Segments:
        """Each query's non-null values in (time, source position) order, as CSR arrays; with
        `times`, the rows' event times and the queries' times too."""
        ...


class OnlineWindow(Protocol):
    """One aggregation input over one window for every query of a batch; a lifetime window also
    covers the rows evicted from the store and folded into its running state."""

    n: int  # queries in the batch
    ones: np.ndarray  # n True flags: the validity of an always-valid result
    lifetime: bool

    def count(self) -> np.ndarray:
        """Included rows (int64)."""
        ...

    def sum(self) -> np.ndarray:
        """Sums of the included values: int64 for integer columns, exactly rounded float64 otherwise."""
        ...

    def magnitude(self) -> int:
        """An upper bound of |value| over an integer input (to tell where an int64 sum may wrap)."""
        ...

    def exact_mean(self, j: int, n: int) -> float:
        """Query j's mean over its n values, exactly rounded (for sums that overflowed or wrapped)."""
        ...

    def first(self) -> Vec:
        """The earliest included value (ties: earliest arrival); null when none."""
        ...

    def last(self) -> Vec:
        """The latest included value (ties: latest arrival); null when none."""
        ...

    def extreme(self, largest: bool) -> Vec:
        """The largest (or smallest) included value; null when none, NaN where one is NaN."""
        ...

    def distinct(self) -> np.ndarray:
        """Distinct included values."""
        ...

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(count, M2: the sum of squared deviations from the mean) of the included values, M2
        within the tolerance of `astra.ops.exact` of the exact one."""
        ...

    def last_k(self, k: int) -> Vec:
        """The k latest included values of each window, newest first (a tuple per query)."""
        ...

    def gather(self) -> tuple[np.ndarray, np.ndarray]:
        """(query index, value) of every included row, by query then (time, arrival)."""
        ...

    def segments(self, times: bool = False) -> Segments:
        """The included values of each query in (time, arrival) order, as CSR arrays (the rows of
        `gather`); with `times`, the rows' event times and the queries' times too."""
        ...


class OnlineSingle(Protocol):
    """One entity at one query time: input i of table ti over window j (-1: lifetime)."""

    def count(self, ti: int, i: int, j: int) -> int:
        """Included rows."""
        ...

    def sum(self, ti: int, i: int, j: int) -> object:
        """Sum of the included values (an int64-wrapped int, or a float), as the batch form."""
        ...

    def mean(self, ti: int, i: int, j: int) -> float | None:
        """Mean of the included values; None when there are none."""
        ...

    def nearest(self, ti: int, i: int, j: int, latest: bool) -> object:
        """The latest (or earliest) included value; None when none."""
        ...

    def extreme(self, ti: int, i: int, j: int, largest: bool) -> object:
        """The largest (or smallest) included value; None when none."""
        ...

    def distinct(self, ti: int, i: int, j: int) -> int:
        """Distinct included values."""
        ...

    def vector(self, ti: int, i: int, j: int, kernel: Callable[[OnlineWindow], Vec]) -> object:
        """`kernel` run on a one-query `OnlineWindow` of the same input and window, as a scalar."""
        ...
