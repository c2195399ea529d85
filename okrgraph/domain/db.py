"""Engine, sessions and the tenant context.

The tenant is set per transaction with `set_config('app.org_id', ..., true)`:
a transaction-local setting cannot leak to the next user of a pooled
connection, and row-level security policies read it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from okrgraph.domain.config import Settings, settings


def async_url(url: str) -> str:
    """Accept `postgresql://` / `postgres://` URLs and use the asyncpg driver."""
    u = make_url(url.replace("postgres://", "postgresql://", 1))
    return u.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(
    url: str | None = None, *, app_role: str | None = None, cfg: Settings = settings, **kw: Any
) -> AsyncEngine:
    """The application's engine: every connection runs as the RLS-bound app role."""
    database_url = url or cfg.database_url
    if not database_url:
        raise RuntimeError("DATABASE_URL is not set (or run `okr dev` for embedded servers)")
    role = cfg.app_role if app_role is None else app_role
    kw.setdefault("pool_size", cfg.db_pool_size)
    # No JIT: it costs up to a second per statement for plans whose estimates look
    # big (roll-ups, compiled tree reads) and our statements are short.
    server_settings = {"statement_timeout": str(cfg.statement_timeout_ms), "jit": "off"}
    if role:
        # A startup parameter, not `SET ROLE` in a connect hook: the hook would run
        # inside a transaction that a rollback undoes, and RESET ALL would drop it.
        server_settings["role"] = role
    engine = create_async_engine(
        async_url(database_url), connect_args={"server_settings": server_settings}, **kw
    )
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def set_tenant(session: AsyncSession, org_id: uuid.UUID | None) -> None:
    """Scope the current transaction to one organisation (RLS reads `app.org_id`)."""
    await session.execute(
        text("SELECT set_config('app.org_id', :org, true)"),
        {"org": str(org_id) if org_id else ""},
    )


@asynccontextmanager
async def tenant_session(
    sessionmaker: async_sessionmaker[AsyncSession], org_id: uuid.UUID | None
) -> AsyncIterator[AsyncSession]:
    """One transaction scoped to `org_id`; commits on success, rolls back on error."""
    async with sessionmaker() as session, session.begin():
        await set_tenant(session, org_id)
        yield session
