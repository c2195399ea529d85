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
from okrgraph.domain.auth.tokens import Principal, authenticate
from okrgraph.domain.db import set_tenant
from okrgraph.domain.live import LiveHub
from okrgraph.schema.loaders import Loaders


@dataclass
class Context:
    """One operation's context. Over a websocket the connection has one too, and
    each operation on it gets its own copy (`for_operation`): operations on one
    socket run concurrently and never share a transaction or loaders."""

    request: Request | WebSocket | None
    sessionmaker: async_sessionmaker[AsyncSession]
    principal: Principal | None
    queue: Any = None  # arq pool (ArqRedis) or None when Redis is unavailable
    live: LiveHub | None = None  # the process's pub/sub fan-out, for subscriptions
    # The bearer secret of a websocket connection, to authorise each operation as of now.
    credentials: str | None = None
    # The operation's session, set by `TransactionExtension`; use it through `db()`.
    session: AsyncSession | None = None
    # An HTTP request's session: its transaction begun by authentication, which scoped
    # it to the tenant; the operation runs in it, and the view closes it.
    request_session: AsyncSession | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connection_params: dict[str, Any] | None = None  # graphql-transport-ws connection_init
    # A subscription holds no transaction while it waits: each read made for one of
    # its events runs in a short tenant-scoped transaction of its own (`db()`).
    reads_per_use: bool = False
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self)

    def for_operation(self, principal: Principal) -> Context:
        """A fresh context for one operation of this websocket connection."""
        return Context(
            request=self.request,
            sessionmaker=self.sessionmaker,
            principal=principal,
            queue=self.queue,
            live=self.live,
            credentials=self.credentials,
            connection_params=self.connection_params,
        )

    async def reauthorise(self) -> Principal | None:
        """The connection's principal as of now (None once its token is revoked or
        expired, or its person archived); the principal itself without credentials."""
        if self.credentials is None:
            return self.principal
        return await authenticate(self.sessionmaker, self.credentials)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The operation's session, one user at a time (resolvers run concurrently);
        with `reads_per_use` and no session, a short read-only transaction of its own."""
        if self.session is None and self.reads_per_use and self.principal is not None:
            async with self.sessionmaker() as session:  # closing it rolls back: reads only
                await set_tenant(session, self.principal.org_id)
                yield session
            return
        if self.session is None:
            raise RuntimeError("no transaction is open for this operation")
        async with self.lock:
            yield self.session


Info = strawberry.Info[Context, None]
