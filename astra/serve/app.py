"""The ASGI app: a thin shell of routing, limits, auth, request ids and access logs around `Engine`.

A raw ASGI callable rather than a framework: the hot path is read body -> orjson -> validate ->
store -> orjson, and a framework's request/response objects would cost more than the lookup.
Every error is JSON (`{"error": {"code", "message", "location"?, ...}}`); an unexpected
exception is logged with its traceback and answered with a 500 that carries only the request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
import traceback

import orjson

from astra.serve import openapi
from astra.serve.auth import authorized
from astra.serve.batch import Batcher
from astra.serve.config import ServeConfig
from astra.serve.engine import Engine
from astra.serve.metrics import CONTENT_TYPE
from astra.serve.validate import ApiError, parse_json

JSON = b"application/json"


class _Disconnected(Exception):
    pass


class AccessLog:
    """One JSON line per request, buffered and flushed about once a second (and at shutdown)."""

    def __init__(self, target: str):
        if target == "off":
            self.f = None
        elif target == "-":
            self.f = sys.stdout.buffer
        else:
            self.f = open(target, "ab")  # noqa: SIM115 - kept open for the server's lifetime

    def write(self, rec: dict) -> None:
        if self.f is not None:
            self.f.write(orjson.dumps(rec) + b"\n")

    def flush(self) -> None:
        if self.f is not None:
            with contextlib.suppress(OSError, ValueError):
                self.f.flush()


class App:
    """The ASGI application for one engine."""

    def __init__(self, engine: Engine, config: ServeConfig):
        self.engine, self.config = engine, config
        self.token = config.token.encode() if config.token else None
        self.access = AccessLog(config.access_log)
        self.batcher = engine.metrics.batcher = Batcher(engine)
        self.openapi_body = openapi.dumps()
        self.routes = {
            "/v1/features": ("POST", self.features, "features"),
            "/v1/push": ("POST", self.push, "push"),
            "/v1/registry": ("GET", self.registry, "registry"),
            "/healthz": ("GET", self.healthz, "healthz"),
            "/readyz": ("GET", self.readyz, "readyz"),
            "/metrics": ("GET", self.metrics, "metrics"),
            "/openapi.json": ("GET", self.openapi, "openapi"),
        }
        self.id_prefix = f"{os.getpid():x}-{int(time.time()) & 0xFFFFFF:x}"
        self.counter = 0
        self.inflight = 0  # requests started and not yet answered (the batcher's concurrency signal)
        self.stopping = False
        self._ticker: asyncio.Task | None = None

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive, send):
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self._ticker = asyncio.get_running_loop().create_task(self._tick())
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def shutdown(self) -> None:
        """Stop the ticker, snapshot, close the log, flush the access log (idempotent)."""
        if self.stopping:
            return
        self.stopping = True
        if self._ticker is not None:
            self._ticker.cancel()
        try:
            self.engine.close()
        finally:
            self.access.flush()

    async def _tick(self):
        while True:
            await asyncio.sleep(min(1.0, self.config.fsync_interval) if self.config.fsync == "interval" else 1.0)
            try:
                self.engine.tick()
            except Exception:
                traceback.print_exc()
            self.access.flush()

    async def http(self, scope, receive, send):
        self.inflight += 1
        try:
            await self._http(scope, receive, send)
        finally:
            self.inflight -= 1

    async def _http(self, scope, receive, send):
        t0 = time.perf_counter()
        self.counter += 1
        headers = scope["headers"]
        rid = None
        clen = -1
        for name, value in headers:
            if name == b"x-request-id" and 0 < len(value) <= 128 and value.isascii():
                rid = value.decode("ascii", "replace")
            elif name == b"content-length" and value.isdigit():
                clen = int(value)
        if rid is None:
            rid = f"{self.id_prefix}-{self.counter:x}"
        path, method = scope["path"], scope["method"]
        route = self.routes.get(path)
        endpoint, service = (route[2] if route else "other"), "-"
        extra: list[tuple[bytes, bytes]] = []
        ctype = JSON
        try:
            if route is None:
                raise ApiError(404, "not_found", f"no endpoint {path}; endpoints: {', '.join(self.routes)}")
            want, handler, _ = route
            if method != want and not (want == "GET" and method == "HEAD"):
                extra.append((b"allow", want.encode()))
                raise ApiError(405, "method_not_allowed", f"{path} takes {want}, not {method}")
            if not authorized(headers, self.token, path):
                extra.append((b"www-authenticate", b'Bearer realm="astra"'))
                raise ApiError(401, "unauthorized", "send `Authorization: Bearer <token>` (the server's --token)")
            body = await self._body(receive, clen) if want == "POST" else b""
            if endpoint == "features":
                status, payload, ctype, service, more = await self.features_async(body)
            else:
                status, payload, ctype, service, more = handler(body)
            extra.extend(more)
        except ApiError as exc:
            status, payload = exc.status, orjson.dumps(exc.body())
        except _Disconnected:
            return
        except Exception:
            print(f"astra serve: request {rid} {method} {path} failed:\n{traceback.format_exc()}", file=sys.stderr)
            status = 500
            msg = f"internal error; the server log has the details under request id {rid}"
            payload = orjson.dumps({"error": {"code": "internal", "message": msg}})
        hdrs = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", rid.encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
        dt = time.perf_counter() - t0
        self.engine.metrics.observe(endpoint, service, status, dt)
        if self.access.f is not None:
            client = scope.get("client")
            self.access.write({"ts": round(time.time(), 6), "id": rid, "method": method, "path": path,
                               "status": status, "ms": round(dt * 1e3, 3), "bytes": len(payload),
                               "service": service, "client": client[0] if client else None})

    async def _body(self, receive, declared: int) -> bytes:
        limit = self.config.max_body
        if declared > limit:
            raise ApiError(413, "body_too_large", f"the body is {declared} bytes; the limit is {limit} (--max-body)",
                           limit=limit)
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Disconnected
            b = msg.get("body", b"")
            size += len(b)
            if size > limit:
                raise ApiError(413, "body_too_large", f"the body is over the {limit} byte limit (--max-body)",
                               limit=limit)
            chunks.append(b)
            if not msg.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # ------------------------------------------------------------------ handlers: body -> response
    async def features_async(self, body: bytes):
        answer, info = await self.batcher.features(parse_json(body), self.inflight)
        return self._features_response(answer, info)

    def features(self, body: bytes):
        return self._features_response(*self.engine.features(parse_json(body)))

    def _features_response(self, answer: bytes, info):
        extra = []
        if info.deprecated:
            self.engine.metrics.deprecated.labels(info.id).inc()
            note = info.deprecated.encode("ascii", "replace").replace(b'"', b"'")
            extra = [(b"deprecation", b"true"), (b"warning", b'299 astra "' + note + b'"')]
        return 200, answer, JSON, info.id, extra

    def push(self, body: bytes):
        ack = self.engine.push(parse_json(body))
        return 200, orjson.dumps(ack), JSON, ack["source"], []

    def registry(self, body: bytes):
        return 200, self.engine.registry_body, JSON, "-", []

    def healthz(self, body: bytes):
        return 200, b'{"status":"ok"}', JSON, "-", []

    def readyz(self, body: bytes):
        eng = self.engine
        if eng.failed or self.stopping:
            raise ApiError(503, "not_ready", eng.failed or "shutting down")
        return 200, orjson.dumps({"status": "ready", "watermark": eng.store.watermark,
                                  "read_only": eng.log is None}), JSON, "-", []

    def metrics(self, body: bytes):
        return 200, self.engine.metrics.render(), CONTENT_TYPE.encode(), "-", []

    def openapi(self, body: bytes):
        return 200, self.openapi_body, JSON, "-", []


def create_app(config: ServeConfig | None = None) -> App:
    """Build the app: load the project, restore the store (snapshot + log), open the log.

    With no `config`, the settings come from `ASTRA_SERVE_CONFIG` (how `astra serve` hands them
    to the ASGI server's worker processes)."""
    from astra.project import Project

    if config is None:
        config = ServeConfig.from_env()
        if config.server == "granian":
            _die_with_parent()
    plan = Project.load(config.project).plan
    engine = Engine(plan, config, log=lambda m: print(m, file=sys.stderr, flush=True))
    app = App(engine, config)
    # the plan, the compiled services and the restored store live as long as the process: move them
    # out of the collector's generations so gen-2 passes do not walk them on the request path
    gc.collect()
    gc.freeze()
    return app


def _die_with_parent() -> None:
    """A granian worker must not outlive its (killed) parent and keep the state directory's lock."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
