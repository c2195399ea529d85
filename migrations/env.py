"""Alembic environment (async). Runs as the schema owner, never as the app role.

The URL comes from `-x url=...`, else DATABASE_URL. A caller may also pass an
open sync connection in `config.attributes["connection"]` (tests do).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from okrgraph.domain.config import settings
from okrgraph.domain.db import async_url
from okrgraph.domain.models import Base

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(async_url(url))
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or settings.database_url
    if not url:
        raise SystemExit("DATABASE_URL is not set")
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `okr migrate`")
run_migrations_online()
