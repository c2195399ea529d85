"""What the `okr` commands check before they run, and how an expected failure
becomes one line: `CliError` and `explain` (used by `okrgraph.cli.main`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, NoReturn

CONNECT_TIMEOUT_S = 10.0
USAGE = 2  # exit code for bad input (an option, a setting); 1 for a failure to run


class CliError(Exception):
    """An expected failure: printed as one line (`okr: <message>`), exit `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    raise CliError(message, code)


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(one line, exit code) for an expected failure; None for anything else."""
    import typer

    try:  # typer >= 0.20 vendors click; older ones raise click's own classes
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover
        import click  # type: ignore[no-redef]
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError

    from okrgraph.domain.errors import DomainError, ValidationFailed
    from okrgraph.embedded import DataDirBusy, NoDevDatabase

    if isinstance(exc, CliError):
        return exc.message, exc.code
    if isinstance(exc, click.UsageError):  # a bad or missing option or argument
        path = exc.ctx.command_path if exc.ctx else "okr"
        where = path.removeprefix("okr").strip()
        message = exc.format_message().rstrip(".")
        return f"{where + ': ' if where else ''}{message}; see `{path} --help`", USAGE
    if isinstance(exc, typer.Abort | KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(exc, click.ClickException):
        return exc.format_message(), exc.exit_code
    if isinstance(exc, ValidationError):  # a setting from the environment (Settings)
        lines = []
        for err in exc.errors():
            name = "OKR_" + str(err["loc"][0]).upper() if err["loc"] else "a setting"
            lines.append(f"{name}: {err['msg']}")
        return "; ".join(lines), USAGE
    if isinstance(exc, ValidationFailed):
        return f"{exc.field}: {exc.message.rstrip('.')}", USAGE
    if isinstance(exc, DomainError):
        return exc.message, 1
    if isinstance(exc, LookupError):
        return str(exc.args[0] if exc.args else exc), 1
    if isinstance(exc, NoDevDatabase | DataDirBusy):
        return str(exc), 1
    if isinstance(exc, DBAPIError):  # never the statement or its parameters
        return f"the database refused it: {_db_reason(exc)}", 1
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}", 1
    return None


def _db_reason(exc: Any) -> str:
    """The server's one-line reason, without the driver's class prefix."""
    orig = getattr(exc, "orig", None) or exc
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if reason.startswith("<class '") and ">: " in reason:
        reason = reason.split(">: ", 1)[1]
    return reason


def setup_logging() -> None:
    # arq and okrgraph log through the root logger; uvicorn configures its own.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def where(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:
        return "the configured URL"
    host = u.host or u.query.get("host") or "localhost"
    return f"{host}{f':{u.port}' if u.port else ''}{f'/{u.database}' if u.database else ''}"


def configured_database_url() -> str:
    from okrgraph.domain.config import settings

    if not settings.database_url:
        fail(
            "DATABASE_URL is not set (or give --data-dir of an `okr dev`, "
            "or run `okr dev` for embedded servers)",
            USAGE,
        )
    return checked_database_url(settings.database_url)


def checked_database_url(url: str, name: str = "DATABASE_URL") -> str:
    """`url` when it is a PostgreSQL URL okrgraph can use, else a CliError
    naming the setting (never echoing the URL: it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url.replace("postgres://", "postgresql://", 1))
        port = u.port
    except (ArgumentError, ValueError):
        fail(f"{name} is not a URL; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE", USAGE)
    if u.get_backend_name() != "postgresql":
        fail(
            f"{name} is a {u.get_backend_name()}:// URL; okrgraph needs PostgreSQL "
            "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE)",
            USAGE,
        )
    if port is not None and not 1 <= port <= 65535:
        fail(f"{name}: port {port} is not a TCP port (1-65535)", USAGE)
    return url


def checked_redis_url(url: str, name: str = "REDIS_URL") -> str:
    """`url` when it is a Redis URL, else a CliError naming the setting."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port out of range or not a number
    except ValueError as exc:
        fail(f"{name} is not a usable URL ({exc}); expected redis://HOST:PORT/DB", USAGE)
    if parts.scheme not in ("redis", "rediss", "unix"):
        what = f"a {parts.scheme}:// URL" if parts.scheme else "not a URL"
        fail(f"{name} is {what}; expected redis://HOST:PORT/DB (or rediss://, unix://)", USAGE)
    return url


def configured_redis_url(default: str | None = None) -> str | None:
    from okrgraph.domain.config import settings

    url = settings.redis_url or default
    return None if url is None else checked_redis_url(url)


async def check_database(url: str) -> str | None:
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
        return f"PostgreSQL at {where(url)} did not answer within {CONNECT_TIMEOUT_S:.0f} s"
    except (OSError, SQLAlchemyError) as exc:
        detail = str(getattr(exc, "orig", None) or exc)
        hint = ""
        if settings.app_role and f'role "{settings.app_role}" does not exist' in detail:
            hint = "; run `okr migrate` first"
        return f"cannot connect to PostgreSQL at {where(url)}: {detail}{hint}"
    finally:
        await engine.dispose()
    if migrated is None:
        return f"the database at {where(url)} is not migrated; run `okr migrate` first"
    return None


async def check_redis(url: str) -> str | None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
    )
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return f"cannot connect to Redis at {where(url)}: {str(exc).rstrip('.')}"
    finally:
        await client.aclose()
    return None


def require(check: Coroutine[Any, Any, str | None]) -> None:
    problem = asyncio.run(check)
    if problem:
        fail(problem)


def require_secret_keys() -> None:
    """serve and worker refuse to start without a usable OKR_SECRET_KEYS: webhook
    secrets can be neither stored nor used without one (`okr dev` makes its own)."""
    from okrgraph.domain.webhooks.secrets import SecretKeyMissing, keyring

    try:
        keyring()
    except SecretKeyMissing as exc:
        fail(str(exc), 2)


def check_port(host: str, port: int, port_option: str, host_option: str) -> None:
    """One line naming the option when the server could not listen there."""
    from okrgraph.embedded import bind_problem

    problem = bind_problem(host, port)
    if problem is None:
        return
    if "in use" in problem or "privileges" in problem:
        fail(f"{problem}; choose another with {port_option}")
    if problem.startswith("port "):
        fail(f"{port_option}: {problem}", USAGE)
    fail(f"{host_option}: {problem}", USAGE)
