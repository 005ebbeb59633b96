"""The API explorer at `/docs`: a page that reads the server's own `/openapi.json`, lets one pick
an endpoint, edit a JSON body, send it and see the answer.

Four static files shipped in the package (`astra/serve/explorer/`), read once when the app is
built and served from memory; nothing comes from a CDN and nothing is generated from user input.
The pages are open like `/openapi.json` (a browser cannot send a bearer token when it navigates);
the requests the page sends carry the token typed into it.  A Content-Security-Policy limits
the page to this server's own scripts, styles and endpoints.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent / "explorer"
ASSETS = {
    "/docs": ("index.html", "text/html; charset=utf-8"),
    "/docs/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
    "/docs/explorer.css": ("explorer.css", "text/css; charset=utf-8"),
    "/docs/favicon.svg": ("favicon.svg", "image/svg+xml"),  # else the browser asks for /favicon.ico: a 404
}
PATHS = frozenset(ASSETS)
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _handler(body: bytes, content_type: str):
    headers = [("content-security-policy", POLICY), ("x-content-type-options", "nosniff"),
               ("cache-control", "no-cache")]

    def handle(_request_body: bytes):
        return 200, body, content_type, "-", headers

    return handle


def routes() -> dict[str, tuple[str, object, str]]:
    """The explorer's routes in the app's form: path -> (method, handler, endpoint label)."""
    return {path: ("GET", _handler((HERE / name).read_bytes(), ctype), "docs")
            for path, (name, ctype) in ASSETS.items()}
