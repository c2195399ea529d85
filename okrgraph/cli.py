"""The `okr` command line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from okrgraph.devmode import say as _say
from okrgraph.devmode import seed_database

# markdown: docstrings wrapped in the source re-flow in --help
app = typer.Typer(
    help="okrgraph: OKRs and KPIs as a goal graph over GraphQL.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(token_app, name="token")
webhooks_app = typer.Typer(
    help="Webhook endpoints (operators).", no_args_is_help=True, rich_markup_mode="markdown"
)
app.add_typer(webhooks_app, name="webhooks")

CONNECT_TIMEOUT_S = 10.0


def _fail(message: str, code: int = 1) -> NoReturn:
    _say(f"okr: {message}", err=True)
    raise typer.Exit(code)


def _setup_logging() -> None:
    # arq and okrgraph log through the root logger; uvicorn configures its own.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _where(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:
        return "the configured URL"
    host = u.host or u.query.get("host") or "localhost"
    return f"{host}{f':{u.port}' if u.port else ''}{f'/{u.database}' if u.database else ''}"


def _database_url() -> str:
    from okrgraph.domain.config import settings

    if not settings.database_url:
        _fail("DATABASE_URL is not set (or run `okr dev` for embedded servers)", 2)
    return settings.database_url


async def _check_database(url: str) -> str | None:
    """None when the app role can connect to a migrated database, else why not."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from okrgraph.domain.config import settings
    from okrgraph.domain.db import create_engine

    engine = create_engine(url, pool_size=1)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S), engine.connect() as conn:
            migrated = await conn.scalar(text("SELECT to_regclass('alembic_version')"))
    except TimeoutError:
        return f"PostgreSQL at {_where(url)} did not answer within {CONNECT_TIMEOUT_S:.0f} s"
    except (OSError, SQLAlchemyError) as exc:
        detail = str(getattr(exc, "orig", None) or exc)
        hint = ""
        if settings.app_role and f'role "{settings.app_role}" does not exist' in detail:
            hint = "; run `okr migrate` first"
        return f"cannot connect to PostgreSQL at {_where(url)}: {detail}{hint}"
    finally:
        await engine.dispose()
    if migrated is None:
        return f"the database at {_where(url)} is not migrated; run `okr migrate` first"
    return None


async def _check_redis(url: str) -> str | None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
    )
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return f"cannot connect to Redis at {_where(url)}: {str(exc).rstrip('.')}"
    finally:
        await client.aclose()
    return None


def _require(check: Coroutine[Any, Any, str | None]) -> None:
    problem = asyncio.run(check)
    if problem:
        _fail(problem)


def _require_secret_keys() -> None:
    """serve and worker refuse to start without a usable OKR_SECRET_KEYS: webhook
    secrets can be neither stored nor used without one (`okr dev` makes its own)."""
    from okrgraph.domain.webhooks.secrets import SecretKeyMissing, keyring

    try:
        keyring()
    except SecretKeyMissing as exc:
        _fail(str(exc), 2)


def _check_port(host: str, port: int, option: str) -> None:
    from okrgraph.embedded import port_in_use

    if port_in_use(host, port):
        _fail(f"port {port} on {host} is already in use; choose another with {option}")


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option(help="Downgrade to REVISION instead.")] = False,
) -> None:
    """Apply the database migrations (as the schema owner in DATABASE_URL)."""
    from sqlalchemy.exc import SQLAlchemyError

    from okrgraph.domain.migrate import migrate as run

    url = _database_url()
    try:
        asyncio.run(run(url, revision, down=down))
    except (OSError, RuntimeError, SQLAlchemyError) as exc:
        _fail(f"migration failed at {_where(url)}: {getattr(exc, 'orig', None) or exc}")
    _say(f"database {'downgraded' if down else 'migrated'} to {revision}")


@app.command()
def seed() -> None:
    """Create the demo organisation (once) and print its admin token."""
    url = _database_url()
    _require(_check_database(url))
    token = asyncio.run(seed_database(url))
    if token is None:
        _say("demo organisation already exists; its admin token was shown when created")
    else:
        _say(f"demo organisation created; admin token (shown once): {token}")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface (default: OKR_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: OKR_PORT, 8000).")] = None,
) -> None:
    """Run the API server (configured by the environment). Exits non-zero when
    PostgreSQL is unreachable; without Redis it starts (jobs wait in the outbox)."""
    from okrgraph.domain.config import settings

    _setup_logging()
    _require_secret_keys()
    host, port = host or settings.host, port or settings.port
    _check_port(host, port, "--port or OKR_PORT")
    _require(_check_database(_database_url()))
    if settings.redis_url and (problem := asyncio.run(_check_redis(settings.redis_url))):
        _say(f"okr: warning: {problem}; jobs wait in the outbox until it is back", err=True)

    import uvicorn

    from okrgraph.api.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", lifespan="on")


@app.command()
def worker() -> None:
    """Run the jobs worker (configured by the environment). Exits non-zero when
    PostgreSQL or Redis is unreachable at start; a Redis lost later is retried
    with backoff (logged) and the worker carries on when it is back."""
    from redis.exceptions import RedisError

    from okrgraph.domain.config import settings

    _setup_logging()
    _require_secret_keys()
    _require(_check_database(_database_url()))
    redis_url = settings.redis_url or "redis://127.0.0.1:6379/0"
    _require(_check_redis(redis_url))

    from okrgraph.worker.reconnect import run
    from okrgraph.worker.settings import WorkerSettings, redis_settings

    try:  # a Redis lost while running is waited for (worker.reconnect), not fatal
        run(WorkerSettings, redis_settings=redis_settings())
    except (RedisError, OSError) as exc:
        _fail(f"worker stopped: Redis at {_where(redis_url)}: {exc}")


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    name: Annotated[str, typer.Option(help="What the token is for.")],
    person: Annotated[str | None, typer.Option(help="E-mail of the person it acts as.")] = None,
    integration: Annotated[str | None, typer.Option(help="Or the integration's name.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="read, write, admin (repeat).")] = None,
) -> None:
    """Create an API token and print its secret (shown once)."""
    from okrgraph.domain.auth.operations import create_token_for

    if (person is None) == (integration is None):
        _fail("give exactly one of --person or --integration", 2)
    url = _database_url()
    _require(_check_database(url))
    try:
        secret = asyncio.run(
            create_token_for(
                url,
                org,
                name,
                scope or ["read"],
                person_email=person,
                integration_name=integration,
            )
        )
    except LookupError as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(str(exc), 2)
    _say(secret)


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for OKR_SECRET_KEYS (which encrypts webhook secrets at rest).
    To rotate: put the new key first (`OKR_SECRET_KEYS=new,old`), restart, run
    `okr webhooks reseal`, then drop the old key."""
    from okrgraph.domain.webhooks.secrets import new_key

    _say(new_key())


@webhooks_app.command("reseal")
def webhooks_reseal() -> None:
    """Re-encrypt every webhook secret under the newest key of OKR_SECRET_KEYS, so
    older keys can be dropped. Safe to run again."""
    from okrgraph.domain.db import create_engine, create_sessionmaker
    from okrgraph.domain.webhooks.operations import Resealed, reseal_all
    from okrgraph.domain.webhooks.secrets import SecretKeyMissing, keyring

    try:
        ring = keyring()
    except SecretKeyMissing as exc:
        _fail(str(exc), 2)
    url = _database_url()
    _require(_check_database(url))

    async def run() -> Resealed:
        engine = create_engine(url, pool_size=1)
        try:
            return await reseal_all(create_sessionmaker(engine), ring)
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    _say(f"resealed {done.resealed} secret(s); {done.current} already under key {ring.current_id}")
    if done.unreadable:
        ids = ", ".join(map(str, done.unreadable))
        _fail(f"no configured key opens {len(done.unreadable)} secret(s); rotate them: {ids}")


def _default_data_dir() -> str:
    import platformdirs

    return str(platformdirs.user_data_dir("okrgraph"))


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
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
    _check_port(settings.host, port, "--port")
    try:
        with DataDirLock(data_dir), Supervisor() as sup:
            code = run_dev(sup, settings.host, port, data_dir)
    except DataDirBusy as exc:
        _fail(f"{exc}; stop it first or pass another --data-dir")
    raise typer.Exit(code)
