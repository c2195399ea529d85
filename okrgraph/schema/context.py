"""The typed request context: principal, one tenant-scoped transaction, loaders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.websockets import WebSocket

import okrgraph.schema.enums  # noqa: F401 - every type module imports this one: enums first
from okrgraph.domain.auth.tokens import Principal
from okrgraph.schema.loaders import Loaders


@dataclass
class Context:
    request: Request | WebSocket | None
    sessionmaker: async_sessionmaker[AsyncSession]
    principal: Principal | None
    queue: Any = None  # arq pool (ArqRedis) or None when Redis is unavailable
    # The operation's session, opened by `TransactionExtension`; use it through `db()`.
    session: AsyncSession | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    jobs_after_commit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    connection_params: dict[str, Any] | None = None  # graphql-transport-ws connection_init
    recalc_requested: bool = False  # set when the operation emitted a roll-up event
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The operation's session, one user at a time (resolvers run concurrently)."""
        if self.session is None:
            raise RuntimeError("no transaction is open for this operation")
        async with self.lock:
            yield self.session


Info = strawberry.Info[Context, None]
