"""The app: a thin shell of routing, limits, auth, request ids and access logs around `Engine`.

A raw callable rather than a framework: the hot path is read body -> orjson -> validate ->
store -> orjson, and a framework's request/response objects would cost more than the lookup.
`App.respond` handles one request whatever the protocol; two small adapters feed it: RSGI,
granian's native interface (the default: no per-message dicts, a third less server overhead
per request than ASGI on the same server), and ASGI (uvicorn, or `--interface asgi`).
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
from typing import NoReturn

import orjson

from astra.plan import experiments as plan_experiments
from astra.serve import allocator, explorer, neighbors, openapi
from astra.serve.auth import authorized
from astra.serve.batch import Batcher
from astra.serve.config import ServeConfig
from astra.serve.deadlines import BodyDeadlines, BodyTimeout
from astra.serve.engine import Engine
from astra.serve.metrics import CONTENT_TYPE
from astra.serve.validate import ApiError, parse_json

JSON = "application/json"


class _Disconnected(Exception):
    pass


# An over-limit body is read and dropped up to this many bytes before the 413 is sent: a client
# that writes its whole body before reading (most do) would otherwise see the connection reset
# under its write and never read the answer.  Past it the server answers at once, and so it does
# to a client that sent `Expect: 100-continue` (reading would make the server invite the body).
DRAIN_MAX = 64 * 2**20


def _too_large(limit: int, declared: int | None) -> ApiError:
    msg = (f"the body is {declared} bytes; the limit is {limit} (--max-body)" if declared is not None
           else f"the body is over the {limit} byte limit (--max-body)")
    return ApiError(413, "body_too_large", msg, limit=limit)


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
        self.openapi_body = openapi.dumps(engine.plan, config.max_batch, config.max_push_rows)
        self.experiments_body = orjson.dumps(plan_experiments.document(engine.plan))
        self.routes = {
            "/v1/features": ("POST", self.features, "features"),
            "/v1/push": ("POST", self.push, "push"),
            "/v1/registry": ("GET", self.registry, "registry"),
            "/v1/experiments": ("GET", self.experiments, "experiments"),
            "/v1/neighbors": ("POST", neighbors.handler(engine), "neighbors"),
            "/healthz": ("GET", self.healthz, "healthz"),
            "/readyz": ("GET", self.readyz, "readyz"),
            "/metrics": ("GET", self.metrics, "metrics"),
            "/openapi.json": ("GET", self.openapi, "openapi"),
            **explorer.routes(),  # /docs: the API explorer's page and its two assets
        }
        self.id_prefix = f"{os.getpid():x}-{int(time.time()) & 0xFFFFFF:x}"
        self.counter = 0
        self.inflight = 0  # requests started and not yet answered (the batcher's concurrency signal)
        self.stopping = False
        self._ticker: asyncio.Task | None = None
        self.deadlines = BodyDeadlines(config.body_timeout)
        self._sweeper: asyncio.Task | None = None

    # ------------------------------------------------------------------ ASGI (uvicorn, or granian --interface asgi)
    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            await self.asgi_http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive, send):
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self.start(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def asgi_http(self, scope, receive, send):
        rid = auth = None
        clen, waits = -1, False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value
            elif name == b"content-length":
                clen = int(value) if value.isdigit() else -1
            elif name == b"authorization":
                auth = value
            elif name == b"expect":
                waits = value.lower() == b"100-continue"

        async def read(limit: int) -> bytes:
            chunks, size = [], 0
            if clen <= DRAIN_MAX and not (waits and clen > limit):  # else answer without reading
                while True:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        raise _Disconnected
                    b = msg.get("body", b"")
                    size += len(b)
                    if size <= limit:
                        chunks.append(b)
                    if not msg.get("more_body") or size > DRAIN_MAX:
                        break
            if size > limit or clen > limit:
                raise _too_large(limit, clen if clen > limit else None)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

        client = scope.get("client")
        out = await self.respond(scope["method"], scope["path"], rid, auth, read, client[0] if client else None)
        if out is None:
            return
        status, payload, headers = out
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", b"%d" % len(payload)),
                                *((k.encode(), v.encode()) for k, v in headers)]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})

    # ------------------------------------------------------------------ RSGI (granian's native interface)
    def __rsgi_init__(self, loop):
        self.start(loop)

    def __rsgi_del__(self, loop):
        self.shutdown()

    async def __rsgi__(self, scope, proto):
        if scope.proto != "http":  # websockets are off; nothing else reaches here
            return
        h = scope.headers
        rid, clen, auth = h.get("x-request-id"), h.get("content-length"), h.get("authorization")

        declared = int(clen) if clen is not None and clen.isdigit() else -1
        waits = (h.get("expect") or "").lower() == "100-continue"

        async def read(limit: int) -> bytes:
            chunks, size = [], 0
            try:
                if 0 <= declared <= limit:  # declared and within the limit: one read
                    body = await proto()
                    size = len(body)
                    chunks.append(body)
                elif declared <= DRAIN_MAX and not (waits and declared > limit):
                    # streamed, or over the limit and read only to be dropped
                    async for b in proto:
                        size += len(b)
                        if size <= limit:
                            chunks.append(b)
                        elif size > DRAIN_MAX:
                            break
            except RuntimeError as exc:  # granian's RSGIProtocolError/Closed: the client went away
                raise _Disconnected from exc
            if size > limit or declared > limit:
                raise _too_large(limit, declared if declared > limit else None)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

        out = await self.respond(scope.method, scope.path, rid.encode() if rid else None,
                                 auth.encode() if auth else None, read, scope.client.rpartition(":")[0] or None)
        if out is not None:
            status, payload, headers = out
            with contextlib.suppress(RuntimeError):  # granian's RSGIProtocolClosed: the client went away
                proto.response_bytes(status, headers, payload)

    # ------------------------------------------------------------------ both: one request, start to finish
    def start(self, loop) -> None:
        self.engine.attach(loop)
        self._ticker = loop.create_task(self._tick())
        self._sweeper = loop.create_task(self.deadlines.run())

    def shutdown(self) -> None:
        """Stop the ticker, snapshot, close the log, flush the access log (idempotent)."""
        if self.stopping:
            return
        self.stopping = True
        for task in (self._ticker, self._sweeper):
            if task is not None:
                task.cancel()
        try:
            self.engine.close()
        finally:
            self.access.flush()

    async def _tick(self):
        cfg = self.config
        if cfg.read_only:
            every = cfg.follow_interval
        else:
            every = min(1.0, cfg.fsync_interval) if cfg.fsync == "interval" else 1.0
        flushed = time.monotonic()
        while True:
            await asyncio.sleep(every)
            try:
                await self.engine.tick_async()
            except Exception:
                traceback.print_exc()
            if time.monotonic() - flushed >= 1.0:
                self.access.flush()
                flushed = time.monotonic()

    async def respond(self, method: str, path: str, rid: bytes | None, auth: bytes | None,
                      read, client: str | None) -> tuple[int, bytes, list[tuple[str, str]]] | None:
        """(status, body, headers) for one request, or None when the client went away.

        `read(limit)` returns the body, or raises `ApiError` 413 for a body declared or sent beyond
        `limit` bytes after reading it to the end (up to `DRAIN_MAX`); the adapters above turn ASGI
        and RSGI requests into these arguments."""
        t0 = time.perf_counter()
        self.inflight += 1
        self.counter += 1
        if rid is not None and 0 < len(rid) <= 128 and rid.isascii():
            rid = rid.decode("ascii")
        else:
            rid = f"{self.id_prefix}-{self.counter:x}"
        route = self.routes.get(path)
        endpoint, service = (route[2] if route else "other"), "-"
        headers = [("content-type", JSON), ("x-request-id", rid)]
        try:
            if route is None:
                raise ApiError(404, "not_found", f"no endpoint {path}; endpoints: {', '.join(self.routes)}")
            want, handler, _ = route
            if method != want and not (want == "GET" and method == "HEAD"):
                headers.append(("allow", want))
                raise ApiError(405, "method_not_allowed", f"{path} takes {want}, not {method}")
            if not authorized(auth, self.token, path):
                headers.append(("www-authenticate", 'Bearer realm="astra"'))
                raise ApiError(401, "unauthorized", "send `Authorization: Bearer <token>` (the server's --token)")
            if want == "POST":
                try:  # a client trickling its body must not hold a connection (and its buffers) forever
                    body = await self.deadlines.read(read, self.config.max_body)
                except BodyTimeout:
                    headers.append(("connection", "close"))
                    raise ApiError(408, "body_timeout", f"the request body did not arrive within "
                                   f"{self.config.body_timeout:g} s (--body-timeout)") from None
            else:
                body = b""
            if endpoint == "features":
                status, payload, ctype, service, more = await self.features_async(body)
            elif endpoint == "push":
                status, payload, ctype, service, more = await self.push_async(body)
            else:
                status, payload, ctype, service, more = handler(body)
            headers[0] = ("content-type", ctype)
            headers.extend(more)
        except ApiError as exc:
            status, payload = exc.status, orjson.dumps(exc.body())
        except _Disconnected:
            return None
        except Exception:
            print(f"astra serve: request {rid} {method} {path} failed:\n{traceback.format_exc()}", file=sys.stderr)
            status = 500
            msg = f"internal error; the server log has the details under request id {rid}"
            payload = orjson.dumps({"error": {"code": "internal", "message": msg}})
        finally:
            self.inflight -= 1
        dt = time.perf_counter() - t0
        self.engine.metrics.observe(endpoint, service, status, dt)
        if self.access.f is not None:
            self.access.write({"ts": round(time.time(), 6), "id": rid, "method": method, "path": path,
                               "status": status, "ms": round(dt * 1e3, 3), "bytes": len(payload),
                               "service": service, "client": client})
        return status, payload, headers

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
            note = info.deprecated.encode("ascii", "replace").decode("ascii").replace('"', "'")
            extra = [("deprecation", "true"), ("warning", f'299 astra "{note}"')]
        return 200, answer, JSON, info.id, extra

    def push(self, body: bytes):
        ack = self.engine.push(parse_json(body))
        return 200, orjson.dumps(ack), JSON, ack["source"], []

    async def push_async(self, body: bytes):
        ack = await self.engine.push_async(parse_json(body))
        return 200, orjson.dumps(ack), JSON, ack["source"], []

    def registry(self, body: bytes):
        return 200, self.engine.registry_body, JSON, "-", []

    def experiments(self, body: bytes):
        return 200, self.experiments_body, JSON, "-", []

    def healthz(self, body: bytes):
        return 200, b'{"status":"ok"}', JSON, "-", []

    def readyz(self, body: bytes):
        eng = self.engine
        why = "shutting down" if self.stopping else eng.not_ready()
        if why:
            raise ApiError(503, "not_ready", why)
        body = {"status": "ready", "watermark": eng.store.watermark, "read_only": eng.log is None}
        if eng.follower is not None:  # how far into the writer's log this server has applied
            body["following"] = {"segment": eng.follower.segment, "offset": eng.follower.offset}
        return 200, orjson.dumps(body), JSON, "-", []

    def metrics(self, body: bytes):
        return 200, self.engine.metrics.render(), CONTENT_TYPE, "-", []

    def openapi(self, body: bytes):
        return 200, self.openapi_body, JSON, "-", []


def create_app(config: ServeConfig | None = None) -> App:
    """Build the app: load the project, restore the store (snapshot + log), open the log.

    With no `config`, the settings come from `ASTRA_SERVE_CONFIG` (how `astra serve` hands them
    to the ASGI server's worker processes)."""
    from astra.project import Project

    if config is None:
        config = ServeConfig.from_env()
        _die_with_parent()  # a worker of `astra serve`'s supervisor (granian's, or uvicorn's multiprocess one)
    allocator.settle()  # before the store is restored: its arrays then get their own mappings
    try:
        plan = Project.load(config.project, allow_unlocked=config.allow_unlocked).plan
        engine = Engine(plan, config, log=lambda m: print(m, file=sys.stderr, flush=True))
    except Exception as exc:
        _cannot_start(exc)
    app = App(engine, config)
    # the plan, the compiled services and the restored store live as long as the process: move them
    # out of the collector's generations so gen-2 passes do not walk them on the request path
    gc.collect()
    gc.freeze()
    allocator.trim()  # what loading left free
    return app


def _cannot_start(exc: Exception) -> NoReturn:
    """End a worker that could not restore its store: one clear line (a traceback too for an
    unexpected error), then exit 1 (`server.START_FAILED`), which ends the whole server: the
    supervisor respawns a worker that dies, but not one that could not start (it would fail
    again), so never a live port in front of a dead worker."""
    from astra.offline.errors import BackfillError
    from astra.online import OnlineError
    from astra.project import ProjectError
    from astra.serve.wal import WalError

    if not isinstance(exc, WalError | OSError | BackfillError | OnlineError | ProjectError):
        traceback.print_exc()
    print(f"astra serve: cannot start: {str(exc).strip(chr(39))}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


def _die_with_parent() -> None:
    """A worker must not outlive its (killed) supervisor and keep the state directory's lock."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
