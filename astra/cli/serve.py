"""`astra serve`: versioned feature serving over HTTP (see docs/serving.md)."""

from __future__ import annotations

from pathlib import Path

import click

from astra.cli.common import ALLOW_UNLOCKED, PROJECT, fail, load, project_dir, writable_parent
from astra.cli.options import Duration


@click.command("serve")
@PROJECT
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told)")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--state", default="build/serve", show_default=True, type=click.Path(),
              help="State directory: snapshots and the push log (nothing is written outside it)")
@click.option("--store", "store", default=None, metavar="URL",
              help="Keep the rows in a shared Redis (redis://host:port/db) instead of --state: every server on "
                   "the same URL sees every push at once; an empty one is loaded from --data-root")
@click.option("--data-root", default=None, type=click.Path(path_type=Path),
              help="Materialize the sources from here when the state directory is new "
                   "[default: none, the new store starts empty]")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Worker processes; more than 1 needs --read-only")
@click.option("--read-only", is_flag=True,
              help="Serve reads from a state directory, following its writer's log; refuse pushes")
@click.option("--follow-interval", default=0.05, show_default=True, type=float,
              help="Seconds between reads of the writer's log (with --read-only)")
@click.option("--server", type=click.Choice(["granian", "uvicorn"]), default="granian", show_default=True)
@click.option("--interface", type=click.Choice(["rsgi", "asgi"]), default=None,
              help="Protocol between server and app [default: rsgi on granian, asgi on uvicorn]")
@click.option("--token", envvar="ASTRA_TOKEN", default=None,
              help="Require `Authorization: Bearer TOKEN` on /v1/* and /metrics (env ASTRA_TOKEN)")
@click.option("--fsync", type=click.Choice(["always", "interval", "never"]), default="always", show_default=True,
              help="always: a push is acknowledged once on disk; interval: fsync every --fsync-interval s")
@click.option("--fsync-interval", default=0.05, show_default=True, type=float, help="Seconds (with --fsync interval)")
@click.option("--snapshot-interval", default=300.0, show_default=True, type=float,
              help="Seconds between snapshots while pushes arrive (0: only at shutdown and by log size)")
@click.option("--snapshot-mib", default=256, show_default=True, type=int,
              help="Snapshot once the log since the last snapshot is this large")
@click.option("--allowed-lateness", default="0s", show_default=True, type=Duration(),
              help="For a new store, as in .feat files (e.g. 10m)")
@click.option("--max-future", default="5m", show_default=True, type=Duration(),
              help="Refuse pushed rows (and source files holding rows) later than the clock plus this")
@click.option("--cache-size", default=100_000, show_default=True, type=int, help="Cached entity answers (0: off)")
@click.option("--cache-ttl", default=1.0, show_default=True, type=float,
              help="Seconds; `now` queries are answered as of the start of their TTL bucket")
@click.option("--max-body", default=4 * 2**20, show_default=True, type=int, help="Request body limit, bytes")
@click.option("--max-batch", default=1000, show_default=True, type=int, help="Entities per /v1/features request")
@click.option("--max-push-rows", default=10_000, show_default=True, type=int, help="Rows per /v1/push request")
@click.option("--body-timeout", default="30s", show_default=True, type=Duration(),
              help="Time to receive a request body (e.g. 10s); a slower one gets a 408 and the connection closed")
@click.option("--access-log", default="-", show_default=True, help="JSON access log: '-' (stdout), 'off' or a file")
@ALLOW_UNLOCKED
def serve(project, **options):
    """Serve PROJECT's services (default: ./features) over HTTP from a durable online store.

    Exit status: 1 for a project that does not compile or a missing path, 2 for bad options."""
    from astra.serve.config import ServeConfig
    from astra.serve.server import ConfigError, check, run

    # every option is a ServeConfig field of the same name, but these two
    options["snapshot_bytes"] = options.pop("snapshot_mib") * 2**20
    options["token"] = options["token"] or None
    options["body_timeout"] = options["body_timeout"] / 1e6  # µs -> s
    root = project_dir(project)
    if options["store"] is not None:
        from astra.online.redis_store import parse_url

        try:
            parse_url(options["store"])
        except ValueError as exc:
            fail(f"--store: {exc}", 2)
        if options["read_only"]:
            fail("--store: a Redis store is shared by every server; --read-only applies to --state only", 2)
    elif not options["read_only"]:
        writable_parent(Path(options["state"]), "--state")
    if options["data_root"] is not None:
        if not options["data_root"].is_dir():
            fail(f"--data-root `{options['data_root']}` is not a directory")
        options["data_root"] = str(options["data_root"])
    config = ServeConfig(project=str(root), **options)
    try:
        check(config)
    except ConfigError as exc:
        fail(exc, 2)
    load(root, config.allow_unlocked)  # compile and lock errors are reported here, once, not by every worker
    if config.host not in ("127.0.0.1", "::1", "localhost") and not config.token:
        click.echo(f"warning: serving on {config.host} without --token; anyone who can reach it can push rows",
                   err=True)
    run(config)
