"""create_app(): the Starlette application around the GraphQL schema."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from okrgraph.api.graphiql import ASSETS_PATH
from okrgraph.api.graphql import OkrGraphQL
from okrgraph.api.routes import healthz, readyz
from okrgraph.domain.config import Settings, settings
from okrgraph.domain.db import create_engine, create_sessionmaker
from okrgraph.domain.live import LiveHub

log = logging.getLogger(__name__)


# The arq pool serves the request path (enqueues after commit, /readyz), so every call
# on it is bounded: connecting, and each read and write on its sockets (issue 12).
REDIS_TIMEOUT_S = 1.0
# Seconds between attempts to reach a Redis that was down when the API started.
RECONNECT_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)


async def connect_queue(redis_url: str | None) -> ArqRedis | None:
    """The arq pool, or None when Redis does not answer within REDIS_TIMEOUT_S:
    writes still land in the outbox, and the worker's relay enqueues them."""
    if not redis_url:
        return None
    pool = ArqRedis(
        ConnectionPool.from_url(
            redis_url,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_keepalive=True,
        )
    )
    try:
        await asyncio.wait_for(pool.ping(), REDIS_TIMEOUT_S)
    except Exception:
        await pool.aclose()
        return None
    return pool


async def keep_connecting(app: Starlette, redis_url: str) -> None:
    """Try until Redis answers, then give the app its queue (`app.state.queue`, read by
    each request) and set `app.state.queue_connected`."""
    for attempt in itertools.count():
        await asyncio.sleep(RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)])
        pool = await connect_queue(redis_url)
        if pool is not None:
            app.state.queue = pool
            app.state.queue_connected.set()
            log.warning("Redis reachable; jobs are enqueued directly again")
            return


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
        app.state.queue_connected = asyncio.Event()
        reconnecting = None
        if app.state.queue is not None:
            app.state.queue_connected.set()
        elif cfg.redis_url:
            log.warning(
                "Redis unreachable at startup; jobs go through the outbox relay until it is"
            )
            reconnecting = asyncio.create_task(keep_connecting(app, cfg.redis_url))
        app.state.settings = cfg
        app.state.live = live_hub(cfg, queue)
        try:
            yield
        finally:
            if reconnecting is not None:
                reconnecting.cancel()
            if app.state.live is not None:
                await app.state.live.aclose()
            if queue is None and app.state.queue is not None:
                await app.state.queue.aclose()
            if engine is not None:
                await engine.dispose()

    graphql = OkrGraphQL(cfg)
    return App(
        graphql,
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Mount(ASSETS_PATH, StaticFiles(packages=[("okrgraph.api", "static")]), name="static"),
        ],
        middleware=[cors(cfg)],
        lifespan=lifespan,
    )


class App(Starlette):
    """Starlette, but a `/graphql` GET or POST without an Origin header (no browser's
    cross-origin call, which CORS answers) goes straight to the view: the error,
    CORS and exception middlewares and the router do nothing for it (the view answers
    every error itself) and cost ~0.04 ms of a request's ~1-2 (issue 11)."""

    def __init__(self, graphql: OkrGraphQL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/graphql"
            and not scope.get("root_path")
            and scope["method"] in ("GET", "POST")
            and all(name != b"origin" for name, _ in scope["headers"])
        ):
            scope["app"] = self
            await self.graphql(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def cors(cfg: Settings) -> Middleware:
    """Browser apps on the allowed origins (`OKR_CORS_ORIGINS`) may call /graphql: the
    preflight is answered, and responses carry Access-Control-Allow-Origin. Tokens go
    in the Authorization header, never in cookies, so credentials stay off. The
    websocket's Origin is checked by the GraphQL view (CORS does not cover it)."""
    origins, pattern = cfg.allowed_origins()
    return Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_origin_regex=pattern,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Accept"],
        expose_headers=["WWW-Authenticate", "Retry-After"],
        max_age=600,
    )
