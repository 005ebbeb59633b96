"""Optional bearer-token auth: with a token configured, `/v1/*` and `/metrics` need
`Authorization: Bearer <token>`; `/healthz`, `/readyz` and `/openapi.json` stay open for probes."""

from __future__ import annotations

import hmac

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})


def authorized(headers: list[tuple[bytes, bytes]], token: bytes | None, path: str) -> bool:
    """True when no token is configured, the path is open, or the request carries the token."""
    if token is None or path in OPEN_PATHS:
        return True
    for name, value in headers:
        if name == b"authorization":
            scheme, _, given = value.partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)
    return False
