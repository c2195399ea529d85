"""A stalled or absent Redis never holds a committed write (issue 12, finding 7).

A redis-server of the test's own (the embedded one) is stopped with SIGSTOP: its
sockets accept and then never answer, the way a hung Redis does. Every Redis call
on the request path is bounded, so the write answers with its committed result and
the outbox keeps the event for the worker's relay. The bound of the requests below
is the failure mode: without the timeouts they wait forever.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from okrgraph.api.app import create_app
from okrgraph.domain.config import Settings
from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import CheckIn, OutboxEvent
from okrgraph.domain.seed import SeedResult, seed_demo
from okrgraph.embedded import EmbeddedRedis, free_port
from tests.gql import data, gql

BOUND_S = 15.0  # far above the 1 s timeouts; without them the requests never end
CHECK_IN = """mutation($input: CheckInInput!) {
  checkIn(input: $input) {
    __typename
    ... on CheckInSuccess { checkIn { id value } }
  }
}"""
KR = "Raise customer NPS from 30 to 60"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own; resumed (if stopped) and ended at teardown."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


@asynccontextmanager
async def serving(
    app: Starlette,
) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def key_result_id(client: httpx.AsyncClient, token: str) -> str:
    query = "{ objectives(first: 50) { nodes { keyResults { nodes { id title } } } } }"
    found = await data(client, token, query)
    return next(
        str(kr["id"])
        for o in found["objectives"]["nodes"]
        for kr in o["keyResults"]["nodes"]
        if kr["title"] == KR
    )


async def check_in(client: httpx.AsyncClient, token: str, kr: str, value: float) -> Any:
    body = await asyncio.wait_for(
        gql(client, token, CHECK_IN, input={"keyResultId": kr, "value": value}), BOUND_S
    )
    return body["data"]["checkIn"]


async def stored(sm: async_sessionmaker[AsyncSession], demo: SeedResult) -> tuple[int, int]:
    """(check-ins, outbox events) of the demo organisation."""
    async with tenant_session(sm, demo.org_id) as session:
        check_ins = await session.scalar(select(func.count()).select_from(CheckIn))
        events = await session.scalar(select(func.count()).select_from(OutboxEvent))
    return int(check_ins or 0), int(events or 0)


async def test_a_stalled_redis_does_not_hold_committed_writes(
    committed: async_sessionmaker[AsyncSession], redis_server: EmbeddedRedis
) -> None:
    demo = await seed_demo(committed)
    assert demo.admin_token is not None
    app = create_app(Settings(redis_url=redis_server.url), sessionmaker=committed)
    async with serving(app) as client:
        assert app.state.queue is not None  # connected while Redis answered
        kr = await key_result_id(client, demo.admin_token)
        before = await stored(committed, demo)
        assert redis_server.process is not None
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            first = await check_in(client, demo.admin_token, kr, 44)
            second = await check_in(client, demo.admin_token, kr, 45)
            ready = await asyncio.wait_for(client.get("/readyz"), BOUND_S)
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
    assert first["__typename"] == second["__typename"] == "CheckInSuccess"
    assert (first["checkIn"]["value"], second["checkIn"]["value"]) == (44, 45)
    check_ins, events = await stored(committed, demo)
    assert check_ins == before[0] + 2  # committed, answered
    assert events > before[1]  # and in the outbox for the relay
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("unavailable")


async def test_the_api_reconnects_to_a_redis_that_was_down_at_startup(
    committed: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    demo = await seed_demo(committed)
    assert demo.admin_token is not None
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    app = create_app(Settings(redis_url=server.url), sessionmaker=committed)
    try:
        async with serving(app) as client:
            assert app.state.queue is None  # nothing listens there yet
            kr = await key_result_id(client, demo.admin_token)
            assert (await check_in(client, demo.admin_token, kr, 40))["__typename"] == (
                "CheckInSuccess"
            )
            server.start()
            await asyncio.wait_for(app.state.queue_connected.wait(), 60)
            assert app.state.queue is not None
            assert (await check_in(client, demo.admin_token, kr, 41))["__typename"] == (
                "CheckInSuccess"
            )
            queued = await app.state.queue.zcard("arq:queue")
            ready = await client.get("/readyz")
    finally:
        server.stop()
    assert queued >= 1  # the second check-in's roll-up went straight to Redis
    assert ready.status_code == 200
