"""Typed errors of `astra.Online` and `astra.Client`: one class per family of the server's error codes.

Both implementations raise the same class with the same `code`, `message`, `location` and
`details` for the same bad request, because both check requests with the server's validator
(`astra.serve.validate`); `Client` rebuilds the error from the server's JSON answer
(`{"error": {"code", "message", "location"?, ...}}`).  Errors where no answer came back
(`TransportError`) carry codes of their own: `connection_failed` and `timeout`.
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """An error answer from the feature server (or the in-process store behind `Online`).

    `code` is the server's stable error code (`unknown_service`, `invalid_type`, ...), `message`
    its one-line explanation, `status` the HTTP status (the one the server would send, for
    `Online`), `location` where in the request it went wrong (`entities[3].user_id`), and
    `details` the answer's other fields (`available`, `horizon`, `errors`, ...)."""

    def __init__(self, code: str, message: str, *, status: int | None = None, location: str | None = None,
                 details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.location = code, message, status, location
        self.details = dict(details or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, status={self.status!r})"


class InvalidRequestError(ClientError):
    """The request is malformed or does not fit the service (400, 405, 413, 422): a mistyped or
    missing key, an unknown field or feature, a batch over the server's limit."""


class RejectedRowsError(InvalidRequestError):
    """A push whose rows do not match the source (`invalid_rows`): nothing was stored; `errors`
    lists each problem as `{"index", "location", "message"}`."""

    @property
    def errors(self) -> list[dict]:
        """Per problem: the row's index, where in it, and what is wrong."""
        return list(self.details.get("errors", ()))


class NotFoundError(ClientError):
    """Something named does not exist (404): `unknown_service`, `unknown_version`,
    `unknown_source`; `details["available"]` lists what does."""


class UnauthorizedError(ClientError):
    """The server wants a bearer token and got none, or a wrong one (401)."""


class ReadOnlyError(ClientError):
    """A push to a read-only server (403); push to the server that writes the state directory."""


class BeforeHorizonError(ClientError):
    """A query time before the store's horizon (409 `before_horizon`): the rows it needs were
    evicted; `horizon` is the earliest time answered (µs since the epoch)."""

    @property
    def horizon(self) -> int | None:
        """The earliest query time the store answers, µs since the epoch."""
        return self.details.get("horizon")


class ServerError(ClientError):
    """The server failed (5xx: `internal`, `store_failed`, `log_failed`, `not_ready`) or answered something
    that is not the API's JSON (`bad_response`)."""


class TransportError(ClientError):
    """No answer came back from the server."""


class ConnectionFailedError(TransportError):
    """The server could not be reached, or the connection broke before an answer (after the
    client's bounded retries, where retrying was safe)."""


class RequestTimeoutError(TransportError):
    """No answer within the client's timeout.  For a push, whether it was applied is unknown."""


_BY_CODE: dict[str, type[ClientError]] = {
    "invalid_rows": RejectedRowsError,
    "unknown_service": NotFoundError, "unknown_version": NotFoundError, "unknown_source": NotFoundError,
    "not_found": NotFoundError, "unauthorized": UnauthorizedError, "read_only": ReadOnlyError,
    "before_horizon": BeforeHorizonError,
}


def error_class(code: str, status: int | None) -> type[ClientError]:
    """The class for a server error code (by its HTTP status when the code is new to this client)."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls
    if status is None or 400 <= status < 500:
        return {401: UnauthorizedError, 403: ReadOnlyError, 404: NotFoundError,
                409: BeforeHorizonError}.get(status, InvalidRequestError)
    return ServerError


def from_answer(status: int, doc: object) -> ClientError:
    """The error for a non-2xx answer (`doc` is its parsed JSON, or None when it was not JSON)."""
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        return ServerError("bad_response", f"HTTP {status} without the API's JSON error body", status=status)
    details = {k: v for k, v in err.items() if k not in ("code", "message", "location")}
    code = err["code"]
    return error_class(code, status)(code, str(err.get("message", "")), status=status,
                                     location=err.get("location"), details=details)


__all__ = ["BeforeHorizonError", "ClientError", "ConnectionFailedError", "InvalidRequestError", "NotFoundError",
           "ReadOnlyError", "RejectedRowsError", "RequestTimeoutError", "ServerError", "TransportError",
           "UnauthorizedError"]
