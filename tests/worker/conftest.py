"""Worker tests: committed data in a fresh database, an isolated Redis database."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Function
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from okrgraph.domain.db import create_engine, create_sessionmaker, tenant_session
from okrgraph.domain.models.enums import KeyResultKind, ObjectiveDriver
from okrgraph.domain.scores.service import full_recalculation
from tests.webhook_receiver import Receiver, serving
from tests.worker.graphs import GraphBuilder


@dataclass
class Committed:
    url: str  # owner URL of the fresh database
    engine: AsyncEngine  # as the app role
    sessionmaker: async_sessionmaker[AsyncSession]


@pytest.fixture
async def committed(
    fresh_database: Callable[[], AbstractAsyncContextManager[str]],
) -> AsyncIterator[Committed]:
    async with fresh_database() as url:
        engine = create_engine(url, pool_size=5)
        try:
            yield Committed(url, engine, create_sessionmaker(engine))
        finally:
            await engine.dispose()


@pytest.fixture
async def worker_redis_url(servers: Any) -> AsyncIterator[str]:
    """A Redis database of its own (1..15): no other test's worker takes these jobs."""
    url = make_url(servers.redis_url).set(database=str(random.randint(1, 15)))
    rendered = url.render_as_string(hide_password=False)
    pool = await create_pool(RedisSettings.from_dsn(rendered))
    await pool.flushdb()
    yield rendered
    await pool.flushdb()
    await pool.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (tests/webhook_receiver.py)."""
    async with serving() as r:
        yield r


@pytest.fixture
async def arq_pool(worker_redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(worker_redis_url))
    yield pool
    await pool.aclose()


async def run_burst(
    pool: ArqRedis, functions: list[Function | WorkerCoroutine], **ctx: Any
) -> None:
    """A real arq worker over `pool` running `functions` with `ctx`, until the queue
    is empty (burst), polling every 10 ms."""
    worker = Worker(
        functions=functions,
        redis_pool=pool,
        burst=True,
        poll_delay=0.01,
        handle_signals=False,
        ctx=ctx,
    )
    await worker.main()


@dataclass
class Company:
    """company (BOTH) <- team (BOTH, weight 2) <- person, and person -> company too.

    With person KRs at scores p, team KR t and company KR c:
    person = mean(p); team = (t + person) / 2; company = (c + 2 team + person) / 4.
    """

    org_id: uuid.UUID
    company: uuid.UUID
    team: uuid.UUID
    person: uuid.UUID
    company_kr: uuid.UUID
    team_kr: uuid.UUID
    person_krs: list[uuid.UUID]


async def build_company(sm: async_sessionmaker[AsyncSession], person_krs: int = 2) -> Company:
    org_id = uuid.uuid4()
    async with tenant_session(sm, org_id) as session:
        g = await GraphBuilder.create(session, org_id=org_id)
        company = await g.objective(ObjectiveDriver.BOTH)
        team = await g.objective(ObjectiveDriver.BOTH)
        person = await g.objective()
        company_kr = await g.kr(company, KeyResultKind.INCREASE)
        team_kr = await g.kr(team)
        krs = [await g.kr(person) for _ in range(person_krs)]
        await g.align(team, parent_objective=company, weight=2)
        await g.align(person, parent_objective=team)
        await g.align(person, parent_objective=company)  # many-to-many
        await full_recalculation(session, org_id)  # a consistent start: statuses by pace
    return Company(org_id, company, team, person, company_kr, team_kr, krs)
