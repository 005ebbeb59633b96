"""The server's settings, shared by the CLI, the app factory and every worker process.

Workers are separate processes started by the ASGI server, so the settings travel to them as
JSON in the `ASTRA_SERVE_CONFIG` environment variable.
"""

from __future__ import annotations

import json
import os

import attrs

ENV = "ASTRA_SERVE_CONFIG"


@attrs.frozen(kw_only=True)
class ServeConfig:
    """Every `astra serve` option; see `astra serve --help` and docs/serving.md."""

    project: str
    state: str = "build/serve"
    store: str | None = None  # redis://host:port/db: the rows live in a shared Redis (no --state)
    data_root: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    server: str = "granian"  # or "uvicorn"
    interface: str | None = None  # "rsgi" | "asgi"; None: the server's own (granian: rsgi, uvicorn: asgi)
    read_only: bool = False
    follow_interval: float = 0.05  # seconds between reads of the writer's log, when read-only
    token: str | None = None
    fsync: str = "always"  # "always" | "interval" | "never"
    fsync_interval: float = 0.05  # seconds, with fsync="interval"
    snapshot_interval: float = 300.0  # seconds between snapshots when pushes arrived; 0: only at shutdown
    snapshot_bytes: int = 256 * 2**20  # snapshot sooner once the log since the last one is this big
    allowed_lateness: int = 0  # µs, for a store bootstrapped here
    max_future: int = 5 * 60 * 10**6  # µs: pushed rows later than the clock plus this are refused
    cache_size: int = 100_000  # entries; 0 disables the cache
    cache_ttl: float = 1.0  # seconds; "now" is quantised to this when the cache is on
    max_body: int = 4 * 2**20  # bytes
    max_batch: int = 1000  # entities per /v1/features request
    max_push_rows: int = 10_000  # rows per /v1/push request
    body_timeout: float = 30.0  # seconds to receive a request body; then 408 and the connection is closed
    access_log: str = "-"  # "-" (stdout), "off", or a file path
    allow_unlocked: bool = False  # development: run versions whose logic differs from astra.lock

    def to_env(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(ENV)
        if not raw:
            raise RuntimeError(f"{ENV} is not set; start the server with `astra serve`")
        return cls(**json.loads(raw))
