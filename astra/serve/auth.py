"""Optional bearer-token auth: with a token configured, `/v1/*` and `/metrics` need
`Authorization: Bearer <token>`; `/healthz`, `/readyz` and `/openapi.json` stay open for probes,
and so does the explorer's static page at `/docs` (its requests carry the token typed into it)."""

from __future__ import annotations

import hmac

from astra.serve.explorer import PATHS as EXPLORER_PATHS

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"}) | EXPLORER_PATHS  # a browser sends no token


def authorized(header: bytes | None, token: bytes | None, path: str) -> bool:
    """True when no token is configured, the path is open, or the `Authorization` header value
    (None when absent) carries the token."""
    if token is None or path in OPEN_PATHS:
        return True
    if header is None:
        return False
    scheme, _, given = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)
