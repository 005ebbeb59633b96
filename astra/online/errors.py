"""Errors the online store raises; each message says what the store holds and what to do."""

from __future__ import annotations


class OnlineError(Exception):
    """Base class of the online engine's errors."""


class IndexNotBuilt(OnlineError):
    """A declared vector index that cannot answer, since the rows it is built from are not all
    known (a state restored without them, a Redis namespace without the index's log)."""


class SchemaError(OnlineError):
    """A pushed row does not match its source's declared columns."""


class LateRowError(OnlineError):
    """Rows older than the source's watermark minus the allowed lateness; `rejected` lists them.

    Each entry is `(index in the pushed batch, event time, watermark - lateness)`."""

    def __init__(self, source: str, rejected: list[tuple[int, int, int]]):
        self.source, self.rejected = source, rejected
        idx, t, bound = rejected[0]
        super().__init__(
            f"{len(rejected)} row(s) pushed to `{source}` are too late (first: row {idx} at {t} < {bound}, "
            f"the watermark minus the allowed lateness); nothing from this batch was stored. "
            f"Push with on_late='report' to store the rest, or raise allowed_lateness.")


class FutureRowError(OnlineError):
    """Rows later than the store's clock plus `max_future`; `rejected` lists them.

    Each entry is `(index in the pushed batch, event time, clock + max_future)`; for a source file
    the index counts the file's rows that have a time and a key."""

    def __init__(self, source: str, rejected: list[tuple[int, int, int]], message: str):
        self.source, self.rejected = source, rejected
        super().__init__(message)


class HorizonError(OnlineError):
    """A query time before the oldest time the store can still answer exactly."""

    def __init__(self, at: int, horizon: int):
        self.at, self.horizon = at, horizon
        super().__init__(f"query time {at} is before the store's horizon {horizon}: rows needed for that time "
                         f"were evicted (the store keeps the longest window + allowed lateness)")


class UnknownServiceError(OnlineError, KeyError):
    """A service name/version the plan does not define."""

    def __str__(self) -> str:
        return str(self.args[0])
