"""`FeatureClient`: the interface `astra.Online` (in process) and `astra.Client` (over HTTP) share.

Code written against it runs unchanged in a notebook over the embedded store and in a service
calling `astra serve`; the tests hold both to the same frames and the same errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import polars as pl

    from astra.clients.codec import PushAck


@runtime_checkable
class FeatureClient(Protocol):
    """Features by entity, pushes, and what the server defines."""

    def get(self, service: str, entities: Any, at: Any = None, *, request: Any = None, features: Any = None,
            version: int | None = None, status: bool = False) -> pl.DataFrame:
        """The service's features for each entity at `at` (None: now): a DataFrame of the key
        columns then the features, typed as declared (`status=True` adds `_missing`, `_stale`)."""
        ...

    def push(self, source: str, rows: Any) -> PushAck:
        """Append rows (a list of dicts or a DataFrame) to a source; all or nothing on bad rows."""
        ...

    def registry(self) -> dict:
        """The registry document: entities, sources, requests, groups and services."""
        ...

    def close(self) -> None:
        """Release what the client holds (connections; nothing in process)."""
        ...
