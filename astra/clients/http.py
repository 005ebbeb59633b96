"""`astra.Client`: the `FeatureClient` interface over `astra serve`'s HTTP API, with httpx.

One connection pool per client, reused by every call (keep-alive); a timeout on every request;
bounded retries, only where repeating cannot apply anything twice: a connection that could not
be opened (nothing was sent) is retried for any call, a connection that broke before the answer
only for reads (`get`, `registry`), never for a push whose body may have reached the server.
An HTTP error answer is never retried: it becomes the `astra.ClientError` subclass of its code.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import orjson

from astra.clients import errors
from astra.clients.codec import PushAck, answer_frame, features_body, rows_of, service_keys, warn_deprecated

# nothing reached the server: safe to repeat any request
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# the connection broke after (part of) the request was written: repeat only what applies nothing
_BROKEN = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.CloseError)
BACKOFF_CAP = 2.0  # seconds, the longest pause between two attempts


class Client:
    """Features from a running `astra serve`.

        with astra.Client("http://127.0.0.1:8000", token="...") as client:
            client.get("fraud_model@v1", [{"user_id": 10}])  # a polars DataFrame

    `token` (default: the `ASTRA_TOKEN` environment variable) is sent as a bearer token;
    `timeout` (seconds, or an `httpx.Timeout`) bounds every request; `retries` is how many times
    a request is repeated after a connection failure (pausing `backoff`, then twice as long, ...),
    where repeating is safe (see the module docstring).  Errors are `astra.ClientError`
    subclasses carrying the server's code, message, location and details."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float | httpx.Timeout = 5.0,
                 retries: int = 2, backoff: float = 0.05, headers: dict[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None):
        if retries < 0:
            raise ValueError(f"retries: expected 0 or more, got {retries}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected http://host:port or https://host:port, got {url!r}")
        token = token if token is not None else os.environ.get("ASTRA_TOKEN") or None
        hdrs = {"content-type": "application/json", "accept": "application/json", **(headers or {})}
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        self.url, self.retries, self.backoff = url.rstrip("/"), retries, backoff
        self._http = httpx.Client(base_url=self.url, headers=hdrs, timeout=timeout, transport=transport)
        self._registry: dict | None = None
        self._max_batch: int | None = None  # the server's --max-batch, once it said so

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # ------------------------------------------------------------------ the interface
    def get(self, service: str, entities: Any, at: Any = None, *, request: Any = None, features: Any = None,
            version: int | None = None, status: bool = False):
        """The features of `service` (`name@vN`, or `name` with `version`) for each entity at `at`:
        `POST /v1/features`.  Arguments and result as `astra.Online.get`; with `at=None` the
        server answers as of its "now" (quantised to its cache TTL).  More entities than the
        server's `--max-batch` are sent as several requests of at most that many."""
        body = features_body(service, entities, at, request=request, features=features, version=version)
        ents = body["entities"]
        if self._max_batch is not None and len(ents) > self._max_batch:
            return self._get_batched(body, status)
        try:
            answer = self._call("POST", "/v1/features", body, repeatable=True)
        except errors.InvalidRequestError as err:
            limit = err.details.get("limit")
            if err.code != "batch_too_large" or err.location != "entities" or not isinstance(limit, int) or limit < 1:
                raise
            self._max_batch = limit  # the server's --max-batch: later calls split at once
            return self._get_batched(body, status)
        return self._frame(answer, ents, status)

    def _get_batched(self, body: dict, status: bool):
        """A read larger than the server's --max-batch, as consecutive requests of at most that many
        entities (reads apply nothing, so splitting changes no answer; with `at=None` each part is
        answered as of the server's "now" when it arrives)."""
        import polars as pl

        ents, n = body["entities"], self._max_batch
        parts = [{**body, "entities": ents[i:i + n]} for i in range(0, len(ents), n)]
        return pl.concat([self._frame(self._call("POST", "/v1/features", part, repeatable=True), part["entities"],
                                      status) for part in parts])

    def _frame(self, answer: dict, ents: list[dict], status: bool):
        warn_deprecated(answer)
        name, ver = answer["service"], answer["version"]
        keys = service_keys(self._registry, name, ver) if self._registry is not None else None
        if keys is None:  # first call, or a server restarted with a newer project
            keys = service_keys(self.registry(), name, ver)
        if keys is None:
            raise errors.ServerError("bad_response", f"the server answered for `{name}@v{ver}`, which its "
                                     f"registry does not list")
        return answer_frame(answer, keys, ents, status)

    def push(self, source: str, rows: Any) -> PushAck:
        """Append rows (dicts, or a Polars/pandas DataFrame) to `source`: `POST /v1/push`.

        Never repeated once the body may have been sent: a connection lost then raises
        `ConnectionFailedError` (and a timeout `RequestTimeoutError`) saying the push may or may
        not have been applied."""
        body = {"source": source, "rows": rows_of(rows, "rows")}
        return PushAck.from_answer(self._call("POST", "/v1/push", body, repeatable=False))

    def neighbors(self, index: str, vector: Any = None, *, key: Any = None, k: int = 10, filter: dict | None = None,
                  at: Any = None, version: int | None = None) -> dict:
        """The k nearest keys of a declared vector index (`name@vN`, or the name with `version`;
        `POST /v1/neighbors`; see `astra.Online.neighbors`)."""
        from astra.serve.neighbors import request_body
        from astra.serve.validate import ApiError

        try:
            body = request_body(index, vector, key, k, filter, at, version)
        except ApiError as exc:
            raise errors.from_answer(exc.status, exc.body()) from None
        return self._call("POST", "/v1/neighbors", body, repeatable=True)

    def registry(self) -> dict:
        """The server's registry document (`GET /v1/registry`)."""
        self._registry = self._call("GET", "/v1/registry", None, repeatable=True)
        return self._registry

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ transport
    def _call(self, method: str, path: str, body: dict | None, *, repeatable: bool) -> Any:
        content = None if body is None else orjson.dumps(body)
        attempt = 0
        while True:
            try:
                resp = self._http.request(method, path, content=content)
                break
            except httpx.TransportError as exc:
                not_sent = isinstance(exc, _NOT_SENT)
                if (not_sent or (repeatable and isinstance(exc, _BROKEN))) and attempt < self.retries:
                    attempt = self._pause(attempt)
                    continue
                unreachable = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                timed_out = isinstance(exc, httpx.TimeoutException) and not unreachable
                cls, code = ((errors.RequestTimeoutError, "timeout") if timed_out
                             else (errors.ConnectionFailedError, "connection_failed"))
                raise self._transport_error(cls, code, method, path, exc, attempt, sent=not not_sent,
                                            repeatable=repeatable) from None
        try:
            doc = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            doc = None
        if resp.is_success:
            if not isinstance(doc, dict):
                raise errors.ServerError("bad_response", f"{method} {path}: HTTP {resp.status_code} with a body "
                                         f"that is not a JSON object", status=resp.status_code)
            return doc
        raise errors.from_answer(resp.status_code, doc)

    def _pause(self, attempt: int) -> int:
        time.sleep(min(self.backoff * 2**attempt, BACKOFF_CAP))
        return attempt + 1

    def _transport_error(self, cls, code: str, method: str, path: str, exc: Exception, attempt: int, *,
                         sent: bool, repeatable: bool) -> errors.ClientError:
        what = str(exc) or type(exc).__name__
        tries = f" after {attempt + 1} attempts" if attempt else ""
        msg = f"{method} {self.url}{path}: {what}{tries}"
        if sent and not repeatable:
            msg += "; the request may or may not have been applied (not repeated)"
        return cls(code, msg, details={"attempts": attempt + 1, "reason": type(exc).__name__})
