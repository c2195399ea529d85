"""create_app(): the Starlette application around the GraphQL schema."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from okrgraph.api.graphql import OkrGraphQL
from okrgraph.api.routes import healthz, readyz
from okrgraph.domain.config import Settings, settings
from okrgraph.domain.db import create_engine, create_sessionmaker
from okrgraph.domain.live import LiveHub

log = logging.getLogger(__name__)


async def connect_queue(redis_url: str | None) -> ArqRedis | None:
    """The arq pool, or None when Redis is down: writes still land in the outbox."""
    if not redis_url:
        return None
    try:
        return await create_pool(RedisSettings.from_dsn(redis_url), retry=0)
    except Exception:
        log.warning("Redis unreachable at startup; jobs go through the outbox relay")
        return None


def live_hub(cfg: Settings, client: Any) -> LiveHub | None:
    """The process's pub/sub fan-out, on a client of its own (no read timeout: a
    subscription waits as long as it likes), or on the client the tests pass."""
    if client is not None:
        return LiveHub(client)
    if not cfg.redis_url:
        return None
    client = Redis.from_url(cfg.redis_url, socket_connect_timeout=2, socket_keepalive=True)
    return LiveHub(client, owns_client=True)


def create_app(
    cfg: Settings = settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    queue: Any = None,
) -> Starlette:
    """The ASGI app. Tests pass their own `sessionmaker` (inside a rolled-back
    transaction) and queue; production builds both from settings."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = None
        if sessionmaker is None:
            engine = create_engine(cfg=cfg)
            app.state.sessionmaker = create_sessionmaker(engine)
        else:
            app.state.sessionmaker = sessionmaker
        app.state.queue = queue if queue is not None else await connect_queue(cfg.redis_url)
        app.state.settings = cfg
        app.state.live = live_hub(cfg, queue)
        try:
            yield
        finally:
            if app.state.live is not None:
                await app.state.live.aclose()
            if queue is None and app.state.queue is not None:
                await app.state.queue.aclose()
            if engine is not None:
                await engine.dispose()

    graphql = OkrGraphQL(cfg)
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
