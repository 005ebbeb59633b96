"""Run the app on a production server: granian (default; RSGI, or ASGI with `--interface asgi`)
or uvicorn[standard] (the ASGI fallback).

Both start worker processes that build the app with `create_app()` from the settings in
`ASTRA_SERVE_CONFIG`.  The settings are checked here first, so a bad configuration is refused
with a message before any worker starts.

This process supervises the workers and holds the listening socket: a worker that dies (kill -9,
a crash, the OOM killer) is started again, restoring the store from the state directory as a
restart would, while connections wait in the socket's backlog.  A worker that exits with
`START_FAILED` could not restore its store; starting it again would fail the same way, so the
whole server ends instead (never a live port in front of no worker).  Each new worker finds the
number of respawns so far in `ASTRA_SERVE_RESPAWNS` (`astra_worker_respawns_total`).

A worker stopped on its own by SIGTERM or SIGINT (an orchestrator stopping one process) finishes
its requests, writes its snapshot and exits; it is started again too, but counted apart
(`ASTRA_SERVE_STOPPED`, `astra_worker_respawns_total{reason="stopped"}`) and never taken for a
crash loop.  A stop of the server itself always wins: a worker that ends while the server is
stopping is not replaced, and a worker still restoring its store when the stop arrives ends at
once (it has acknowledged nothing yet; the next start restores the same state).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import sys
import time

from astra.serve.config import ENV, ServeConfig
from astra.serve.wal import FSYNC_POLICIES

SERVERS = ("granian", "uvicorn")
RESPAWNS_ENV = "ASTRA_SERVE_RESPAWNS"
STOPPED_ENV = "ASTRA_SERVE_STOPPED"
# how a worker stopped by a signal of its own ends: granian's exits 0 after its graceful stop,
# uvicorn's re-raises the signal it caught once it has shut down
STOPPED_EXITS = (0, -signal.SIGTERM, -signal.SIGINT)
START_FAILED = 1  # the exit status of a worker that could not restore its store (`app._cannot_start`)
CRASH_LOOP = 5.5  # seconds: a worker dying again this soon after its respawn ends the server (as granian does)
INTERFACES = {"granian": ("rsgi", "asgi"), "uvicorn": ("asgi",)}  # the first is the default


class ConfigError(Exception):
    """A configuration `astra serve` refuses; the message says what to do instead."""


def check(config: ServeConfig) -> None:
    """Refuse configurations that would silently misbehave."""
    if config.server not in SERVERS:
        raise ConfigError(f"--server must be one of {', '.join(SERVERS)}, got {config.server!r}")
    if config.interface is not None and config.interface not in INTERFACES[config.server]:
        raise ConfigError(f"--server {config.server} speaks {' or '.join(INTERFACES[config.server])}, "
                          f"not {config.interface}")
    if config.fsync not in FSYNC_POLICIES:
        raise ConfigError(f"--fsync must be one of {', '.join(FSYNC_POLICIES)}")
    if config.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if config.workers > 1 and not config.read_only and config.store is None:
        raise ConfigError(
            f"--workers {config.workers} would give every worker process its own copy of the store: a push "
            f"reaching one worker would be missing from the others, and their answers would diverge. Serve "
            f"pushes and reads with --workers 1, and scale reads with --read-only --workers {config.workers} "
            f"on the same --state directory (each worker follows the writer's log; pushes are refused).")
    if config.read_only and not os.path.isdir(config.state):
        raise ConfigError(f"--read-only needs an existing --state directory; {config.state} does not exist")
    if not config.read_only and config.store is None and os.path.isdir(config.state):
        from astra.serve.wal import StateDir, WalError

        try:
            os.close(StateDir(config.state).lock(exclusive=True))  # probe only: the worker takes it for good
        except WalError as exc:
            raise ConfigError(str(exc)) from None
    if not config.body_timeout > 0:
        raise ConfigError("--body-timeout must be positive")
    for name in ("max_body", "max_batch", "max_push_rows"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")


class StartError(Exception):
    """The store cannot be restored or built from what is on disk; the message says why."""


def preflight(config: ServeConfig, read_files: bool = True) -> str | None:
    """What a writer's worker would do first, checked before any worker starts, so a problem is a
    one-line error rather than a dead worker: restoring the newest snapshot needs this plan, or a
    migration to it (`astra.online.persist.plan_migration`); a new state directory is materialized
    from `--data-root`, whose files must read as the engines read them.  Returns a note on a
    migration to come, or None; without `read_files`, `READ_FILES` when the check needs them."""
    if config.read_only:
        return None
    if config.store is not None:
        return _preflight_redis(config, read_files)
    from astra.offline.errors import BackfillError
    from astra.online import OnlineError, Store, persist
    from astra.plan.serialize import from_data
    from astra.project import Project, ProjectError
    from astra.serve.wal import StateDir, pushed_records

    path = None
    try:
        plan = Project.load(config.project, allow_unlocked=getattr(config, "allow_unlocked", False)).plan
        state = StateDir(config.state)
        snaps = state.snapshots() if state.root.is_dir() else []
        if snaps:
            path = state.snapshot(snaps[-1])
            if from_data(persist.read_manifest(path)["plan"]) == plan:
                return None
            if not read_files and config.data_root is not None:
                return READ_FILES
            persist.plan_migration(Store, path, plan, config.data_root, lambda: pushed_records(state))
            return f"{path} was saved for another plan: it will be migrated"
        if config.data_root is not None:
            if not read_files:
                return READ_FILES
            store = Store(plan, config.allowed_lateness, max_future=config.max_future)
            for src in plan.sources:
                store.read_source(src, config.data_root)
    except persist.MigrationError as exc:
        raise StartError(f"cannot migrate {path} to this project's plan: {exc}; nothing was changed") from None
    except (ProjectError, BackfillError, OnlineError, ValueError, KeyError, OSError) as exc:
        raise StartError(str(exc).strip("'\"")) from None
    return None


READ_FILES = "read the files"


def _preflight_redis(config: ServeConfig, read_files: bool) -> str | None:
    """--store redis://: Redis must answer; an empty namespace is materialized from --data-root
    here, once, before any worker starts (every worker then serves what Redis holds)."""
    from astra.offline.errors import BackfillError
    from astra.online import OnlineError
    from astra.online.redis_store import RedisStore
    from astra.project import Project, ProjectError

    try:
        plan = Project.load(config.project, allow_unlocked=getattr(config, "allow_unlocked", False)).plan
        store = RedisStore(plan, config.store, config.allowed_lateness, max_future=config.max_future)
        try:
            if config.data_root is None or not store.is_empty():
                return None
            if not read_files:
                return READ_FILES
            counts = store.materialize(config.data_root)
            return f"materialized {sum(c.rows for c in counts.values())} rows into {config.store}"
        finally:
            store.close()
    except (ProjectError, BackfillError, OnlineError, ValueError, KeyError, OSError) as exc:
        raise StartError(str(exc).strip("'\"")) from None


def run(config: ServeConfig) -> None:
    """Serve until interrupted (SIGINT/SIGTERM give a clean shutdown: snapshot, close the log).
    A store that cannot be restored or built is a one-line error and exit status 1."""
    check(config)
    try:
        note = preflight(config, read_files=False)
        if note == READ_FILES:  # in a process of its own: reading files starts Polars' thread pool,
            # which must not exist in the process granian forks its workers from (a copy deadlocks)
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
                note = pool.submit(preflight, config).result()
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    if note:
        print(f"astra serve: {note}", file=sys.stderr, flush=True)
    os.environ[ENV] = config.to_env()
    os.environ[RESPAWNS_ENV] = os.environ[STOPPED_ENV] = "0"
    serve = _serve_granian if config.server == "granian" else _serve_uvicorn
    if serve(config):
        print("astra serve: stopped: a worker could not start, or kept dying (see above)", file=sys.stderr, flush=True)
        sys.exit(1)


def respawns(env: str = RESPAWNS_ENV) -> int:
    """Workers this server started again after one died (crashed), up to the start of the calling
    worker; with `env=STOPPED_ENV`, after one was stopped by a signal of its own."""
    try:
        return int(os.environ.get(env, "0"))
    except ValueError:
        return 0


def _respawned(count: int) -> None:
    os.environ[RESPAWNS_ENV] = str(count)  # inherited by the worker started next
    print(f"astra serve: a worker died; starting another (respawn {count}), which restores the store "
          f"from the state directory", file=sys.stderr, flush=True)


def _restarted(count: int) -> None:
    os.environ[STOPPED_ENV] = str(count)
    print(f"astra serve: a worker was stopped by a signal (stop {count}); starting another, which restores "
          f"the store from the state directory", file=sys.stderr, flush=True)


TARGET = "astra.serve.app:create_app"


def _serve_granian(config: ServeConfig) -> bool:
    """Run granian until stopped; True when a worker could not start."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    interface = Interfaces.ASGI if config.interface == "asgi" else Interfaces.RSGI
    cls = _granian_supervisor(Granian)
    server = cls(TARGET, address=config.host, port=config.port, interface=interface, workers=config.workers,
                 loop=Loops.uvloop, factory=True, log_access=False, websockets=False, backlog=2048,
                 respawn_failed_workers=True)
    server.serve()
    return getattr(server, "start_failed", False)


def _granian_supervisor(base):
    """granian's process supervisor, respawning a dead worker unless it failed to start.  (granian
    itself gives up when a worker dies again within 5.5 s of its respawn: a crash loop.)"""
    try:
        from granian.server import MPServer
    except ImportError:  # pragma: no cover - a granian without the multiprocess server
        return base
    if not issubclass(base, MPServer):  # a free-threaded build runs workers as threads
        return base

    class Supervisor(base):
        respawned = stopped = 0
        start_failed = False

        def signal_handler_interrupt(self, *args, **kwargs):
            if os.getpid() != self.pid:
                # a forked worker that has not yet replaced the handlers it inherited from this
                # process (granian does so once the store is restored and it starts serving):
                # without this, the stop would only set a flag in the worker's copy of this object,
                # the worker would go on to serve, and this process would wait for it for ever.
                # It has acknowledged nothing yet, so it can end at once.
                os._exit(0)
            super().signal_handler_interrupt(*args, **kwargs)

        def _respawn_workers(self, workers, spawn_target, target_loader, delay: float = 0):
            dead = [idx for idx in workers if self.wrks[idx].inner.exitcode is not None]
            if any(self.wrks[idx].inner.exitcode == START_FAILED for idx in dead):
                self.start_failed = self.interrupt_signal = True  # stop, as granian does without respawns
                self.main_loop_interrupt.set()
                return None
            if dead and self.interrupt_signal:  # the whole server is stopping (SIGTERM to its process group)
                self.main_loop_interrupt.set()
                return None
            stops = [idx for idx in dead if self.wrks[idx].inner.exitcode in STOPPED_EXITS]
            if len(stops) < len(dead):  # not a reload or a lifetime/memory recycle of live workers
                self.respawned += len(dead) - len(stops)
                _respawned(self.respawned)
            if stops:
                self.stopped += len(stops)
                _restarted(self.stopped)
            out = super()._respawn_workers(workers, spawn_target, target_loader, delay)
            for idx in stops:  # a stop is no crash: the next death of this worker is not a crash loop
                self.respawned_wrks.pop(idx, None)
            return out

        def shutdown(self, exit_code=0):
            if self.interrupt_signal and not self.start_failed:
                # a worker that ended cleanly on the same stop (SIGTERM to the process group) before
                # this process told it to is no failure: granian would make the exit status 1
                self.interrupt_children = [idx for idx in self.interrupt_children
                                           if self.wrks[idx].inner.exitcode not in STOPPED_EXITS]
            return super().shutdown(exit_code)

    return Supervisor


def _serve_uvicorn(config: ServeConfig) -> bool:
    """Run uvicorn's multi-process supervisor (even for one worker: the supervisor respawns it)
    until stopped; True when a worker could not start."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        respawned = stopped = 0
        start_failed = False
        last_respawn = float("-inf")

        def keep_subprocess_alive(self) -> None:
            # liveness is the process's, not uvicorn's ping: a worker busy restoring a large store
            # (numpy holding the GIL for seconds) is not hung
            if self.should_exit.is_set():
                return
            for idx, process in enumerate(self.processes):
                if process.process.is_alive():
                    continue
                process.join()
                if process.exitcode in (START_FAILED, STARTUP_FAILURE):
                    self.start_failed = True
                    self.should_exit.set()
                    return
                if {signal.SIGINT, signal.SIGTERM} & set(self.signal_queue):  # the server is stopping: no new worker
                    return
                if process.exitcode in STOPPED_EXITS:
                    self.stopped += 1
                    _restarted(self.stopped)
                    self.processes[idx] = new = type(process)(self.config, self.sockets)
                    new.start()
                    continue
                if time.monotonic() - self.last_respawn <= CRASH_LOOP:
                    print("astra serve: the worker died again right after its respawn (a crash loop); stopping",
                          file=sys.stderr, flush=True)
                    self.start_failed = True
                    self.should_exit.set()
                    return
                self.last_respawn = time.monotonic()
                self.respawned += 1
                _respawned(self.respawned)
                new = type(process)(self.config, self.sockets)
                new.start()
                self.processes[idx] = new

    uconfig = uvicorn.Config(TARGET, host=config.host, port=config.port, workers=config.workers, factory=True,
                             access_log=False, loop="uvloop", http="httptools", lifespan="on", log_level="warning",
                             backlog=2048)
    sock = uconfig.bind_socket()
    supervisor = Supervisor(uconfig, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
    return supervisor.start_failed
