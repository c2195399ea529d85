"""The `okr` command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from okrgraph.cli_checks import (
    CONNECT_TIMEOUT_S,
    check_database,
    check_port,
    check_redis,
    checked_database_url,
    configured_database_url,
    configured_redis_url,
    explain,
    fail,
    require,
    require_secret_keys,
    setup_logging,
    where,
)
from okrgraph.cli_operators import org_app, token_app
from okrgraph.devmode import say, seed_database

if TYPE_CHECKING:
    from starlette.applications import Starlette

# markdown: docstrings wrapped in the source re-flow in --help
app = typer.Typer(
    help="okrgraph: OKRs and KPIs as a goal graph over GraphQL.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(token_app, name="token")
app.add_typer(org_app, name="org")
webhooks_app = typer.Typer(
    help="Webhook endpoints (operators).", no_args_is_help=True, rich_markup_mode="markdown"
)
app.add_typer(webhooks_app, name="webhooks")


def main(args: list[str] | None = None) -> NoReturn:
    """The `okr` entry point: the one place where an expected failure (bad input,
    a setting that can't be used, a server that can't be reached, a refusal by
    the database) becomes one line on stderr and a non-zero exit, never a
    traceback. What `explain` does not know is a bug, and shows as one."""
    try:
        result = app(args=args, prog_name="okr", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:
        explained = explain(exc)
        if explained is None:
            raise
        message, code = explained
        say(f"okr: {message}", err=True)
        sys.exit(code)
    sys.exit(result if isinstance(result, int) else 0)


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option(help="Downgrade to REVISION instead.")] = False,
) -> None:
    """Apply the database migrations (as the schema owner in DATABASE_URL)."""
    from sqlalchemy.exc import SQLAlchemyError

    from okrgraph.domain.migrate import migrate as run

    url = configured_database_url()
    try:
        asyncio.run(run(url, revision, down=down))
    except (OSError, RuntimeError, SQLAlchemyError) as exc:
        fail(f"migration failed at {where(url)}: {getattr(exc, 'orig', None) or exc}")
    say(f"database {'downgraded' if down else 'migrated'} to {revision}")


@app.command()
def seed() -> None:
    """Create the demo organisation (once) and print its admin token."""
    url = configured_database_url()
    require(check_database(url))
    token = asyncio.run(seed_database(url))
    if token is None:
        say("demo organisation already exists; its admin token was shown when created")
    else:
        say(f"demo organisation created; admin token (shown once): {token}")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface (default: OKR_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: OKR_PORT, 8000).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Processes (default: OKR_WORKERS, 1)."),
    ] = None,
) -> None:
    """Run the API server (configured by the environment), in `--workers` processes
    sharing the port. Exits non-zero when PostgreSQL is unreachable; without Redis
    it starts (jobs wait in the outbox)."""
    from okrgraph.domain.config import settings

    setup_logging()
    require_secret_keys()
    host, port = host or settings.host, port or settings.port
    check_port(host, port, "--port or OKR_PORT", "--host or OKR_HOST")
    database_url = configured_database_url()
    redis_url = configured_redis_url()
    require(check_database(database_url))
    if redis_url and (problem := asyncio.run(check_redis(redis_url))):
        say(f"okr: warning: {problem}; jobs wait in the outbox until it is back", err=True)

    import uvicorn

    uvicorn.run(
        "okrgraph.cli:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        log_level="info",
        lifespan="on",
    )


def served_app() -> Starlette:
    """`okr serve`'s app, built in each worker process (uvicorn spawns them)."""
    from okrgraph.api.app import create_app
    from okrgraph.domain.config import settings

    setup_logging()  # a spawned worker starts without the parent's logging
    app = create_app(settings)
    tune_gc()
    return app


def tune_gc() -> None:
    """The cyclic GC's settings for the API, once the long-lived objects (modules,
    the schema) exist. The company tree (bench/fixed_cost.py, 30 runs each, load
    ~5.5, in-process): defaults p95 303 ms, 55.9 ms CPU per request, 690
    collections; gc.freeze() 241 ms, 38.2 ms; thresholds (50,000, 50, 100) 254 ms,
    38.5 ms, no collection; both 225 ms, 39.3 ms. Freezing moves ~178k objects out
    of every full collection's walk; the raised first threshold makes collections
    rare (a request allocates tens of thousands of objects, nearly all freed by
    reference counting)."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


@app.command()
def worker(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Don't run a worker: exit 0 when a worker on this host refreshed its "
            "health key in Redis within the last few seconds, else 1 (the compose "
            "healthcheck). Needs only REDIS_URL.",
        ),
    ] = False,
) -> None:
    """Run the jobs worker (configured by the environment). Exits non-zero when
    PostgreSQL or Redis is unreachable at start; a Redis lost later is retried
    with backoff (logged) and the worker carries on when it is back. While it
    runs it refreshes its health key every few seconds (`okr worker --check`)."""
    from redis.exceptions import RedisError

    redis_url = configured_redis_url(default="redis://127.0.0.1:6379/0")
    assert redis_url is not None
    if check:
        require(_check_worker_health(redis_url))
        say("worker healthy")
        return
    setup_logging()
    require_secret_keys()
    require(check_database(configured_database_url()))
    require(check_redis(redis_url))

    from okrgraph.worker.reconnect import run
    from okrgraph.worker.settings import WorkerSettings, redis_settings

    try:  # a Redis lost while running is waited for (worker.reconnect), not fatal
        run(WorkerSettings, redis_settings=redis_settings())
    except (RedisError, OSError) as exc:
        fail(f"worker stopped: Redis at {where(redis_url)}: {exc}")


async def _check_worker_health(redis_url: str) -> str | None:
    """None when this host's worker refreshed its health key lately, else why not."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from okrgraph.worker.settings import HEALTH_CHECK_INTERVAL_S, health_check_key

    key = health_check_key()
    client = aioredis.Redis.from_url(
        redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
    )
    try:
        ttl_ms = await client.pttl(key)
    except (RedisError, OSError) as exc:
        return f"cannot connect to Redis at {where(redis_url)}: {str(exc).rstrip('.')}"
    finally:
        await client.aclose()
    # The worker sets the key with a lifetime of one interval plus a second, so a
    # key that exists was written within that; -1 (no expiry) is not the worker's.
    if ttl_ms < 0 or ttl_ms > (HEALTH_CHECK_INTERVAL_S + 1) * 1000:
        return (
            f"no live worker: its health key {key} in Redis at {where(redis_url)} was "
            f"not refreshed in the last {HEALTH_CHECK_INTERVAL_S + 1:g} s"
        )
    return None


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for OKR_SECRET_KEYS (which encrypts webhook secrets at rest).
    To rotate: put the new key first (`OKR_SECRET_KEYS=new,old`), restart, run
    `okr webhooks reseal`, then drop the old key."""
    from okrgraph.domain.webhooks.secrets import new_key

    say(new_key())


@webhooks_app.command("reseal")
def webhooks_reseal() -> None:
    """Re-encrypt every webhook secret (and Slack webhook URL) under the newest key of
    OKR_SECRET_KEYS, so older keys can be dropped. Safe to run again."""
    from okrgraph.domain.db import create_engine, create_sessionmaker
    from okrgraph.domain.webhooks.operations import Resealed, reseal_all
    from okrgraph.domain.webhooks.secrets import SecretKeyMissing, keyring

    try:
        ring = keyring()
    except SecretKeyMissing as exc:
        fail(str(exc), 2)
    url = configured_database_url()
    require(check_database(url))

    async def run() -> Resealed:
        engine = create_engine(url, pool_size=1)
        try:
            return await reseal_all(create_sessionmaker(engine), ring)
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    say(f"resealed {done.resealed} secret(s); {done.current} already under key {ring.current_id}")
    if done.unreadable:
        ids = ", ".join(map(str, done.unreadable))
        fail(
            f"no configured key opens {len(done.unreadable)} secret(s); rotate them "
            f"(an organisation's id: set its Slack webhook again): {ids}"
        )


def _default_data_dir() -> str:
    import platformdirs

    return str(platformdirs.user_data_dir("okrgraph"))


@app.command()
def dev(
    port: Annotated[int, typer.Option(min=1, max=65535, help="API port.")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help=f"Where the embedded servers keep their data (default: {_default_data_dir()})."
        ),
    ] = None,
) -> None:
    """Run everything locally: embedded PostgreSQL and Redis (unless DATABASE_URL /
    REDIS_URL are set), migrations, the demo organisation, the API and the worker.
    Ctrl-C (or SIGTERM) stops it all; a second run reuses the data."""
    from okrgraph.devmode import Supervisor, run_dev
    from okrgraph.domain.config import settings
    from okrgraph.embedded import DataDirBusy, DataDirLock

    data_dir = (data_dir or Path(_default_data_dir())).expanduser().resolve()
    check_port(settings.host, port, "--port", "OKR_HOST")
    if settings.database_url:
        checked_database_url(settings.database_url)
    configured_redis_url()
    try:
        with DataDirLock(data_dir), Supervisor() as sup:
            code = run_dev(sup, settings.host, port, data_dir)
    except DataDirBusy as exc:
        fail(f"{exc}; stop it first or pass another --data-dir")
    raise typer.Exit(code)


if __name__ == "__main__":
    main()
