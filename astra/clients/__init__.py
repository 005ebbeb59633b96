"""Features from Python: `Online` (in process, over an embedded store) and `Client` (over HTTP,
from `astra serve`), two implementations of one interface, `FeatureClient`, with the same frames
and the same typed errors (`ClientError` and its subclasses, one per family of error codes)."""

from astra.clients.errors import (
    BeforeHorizonError,
    ClientError,
    ConnectionFailedError,
    InvalidRequestError,
    NotFoundError,
    ReadOnlyError,
    RejectedRowsError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnauthorizedError,
)

# the implementations pull in polars, httpx and the store: imported on first use
_LAZY = {"Online": "astra.clients.inprocess", "Client": "astra.clients.http",
         "FeatureClient": "astra.clients.protocol", "PushAck": "astra.clients.codec",
         "DeprecatedServiceWarning": "astra.clients.codec"}

__all__ = ["BeforeHorizonError", "Client", "ClientError", "ConnectionFailedError", "DeprecatedServiceWarning",
           "FeatureClient",
           "InvalidRequestError", "NotFoundError", "Online", "PushAck", "ReadOnlyError", "RejectedRowsError",
           "RequestTimeoutError", "ServerError", "TransportError", "UnauthorizedError"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'astra.clients' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
