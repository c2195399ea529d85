"""Real PostgreSQL and Redis for every test.

`TEST_DATABASE_URL` / `TEST_REDIS_URL` point at running servers; without them
the embedded servers of `okr dev` start under a temporary directory. Each
test session migrates a database of its own; each test runs in a transaction
that is rolled back (`db`), or in a fresh database when commits matter
(`fresh_database`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from okrgraph.api.app import create_app
from okrgraph.domain import clock
from okrgraph.domain.config import settings
from okrgraph.domain.db import async_url, create_engine
from okrgraph.domain.migrate import migrate
from okrgraph.domain.seed import SeedResult, seed_demo
from okrgraph.embedded import EmbeddedPostgres, EmbeddedRedis

# The key that seals webhook secrets in tests, here and in every `okr` child (which
# inherits the environment); `okr serve` and `okr worker` refuse to start without one.
TEST_SECRET_KEYS = "YxspJG_v5NnNxba5EwSNLVNGQW6gtP6-K125snmfiDg"
os.environ["OKR_SECRET_KEYS"] = TEST_SECRET_KEYS
os.environ.pop("OKR_SECRET_KEY", None)
settings.secret_keys = TEST_SECRET_KEYS


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-at",
        default=None,
        help=(
            "Run as if it were this instant (ISO date or datetime, UTC unless it says): "
            "moves okrgraph.domain.clock here and in every `okr` child process through "
            "OKR_CLOCK_OFFSET_SECONDS. The CI runs the date-sensitive tests on a "
            "quarter's first and last day with it."
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    at = config.getoption("--clock-at")
    if at is None:
        return
    instant = datetime.fromisoformat(at)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    offset = (instant - datetime.now(UTC)).total_seconds()
    settings.clock_offset_seconds = offset
    os.environ["OKR_CLOCK_OFFSET_SECONDS"] = repr(offset)


def pytest_report_header(config: pytest.Config) -> str | None:
    at = config.getoption("--clock-at")
    if at is None:
        return None
    return f"okrgraph clock moved to {at} (now reads {clock.now():%Y-%m-%d %H:%M} UTC)"


@dataclass(frozen=True)
class Servers:
    postgres_url: str  # a role that may create databases (owner of what it creates)
    redis_url: str


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    pg_url = os.environ.get("TEST_DATABASE_URL")
    if not pg_url:
        # Not under tmp_path: as root, PostgreSQL runs as another user that must traverse
        # the parents, and every pytest run resets its basetemp root to mode 0700.
        pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="okr-test-pg-")))
        pg_url = pg.start()
        started.append(pg)
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        rd = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis")))
        redis_url = rd.start()
        started.append(rd)
    yield Servers(pg_url, redis_url)
    for server in reversed(started):
        server.stop()
        if isinstance(server, EmbeddedPostgres):
            shutil.rmtree(server.data_dir, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@asynccontextmanager
async def new_database(server_url: str, *, migrated: bool = True) -> AsyncIterator[str]:
    """A database of its own, migrated to head, dropped afterwards."""
    name = f"okr_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = with_database(server_url, name)
    try:
        if migrated:
            await migrate(url)
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session")
async def database_url(servers: Servers) -> AsyncIterator[str]:
    """The session's migrated database (owner URL)."""
    async with new_database(servers.postgres_url) as url:
        yield url


@pytest.fixture(scope="session")
async def app_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Engine as the application role: row-level security applies."""
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_connection(app_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with app_engine.connect() as conn:
        trans = await conn.begin()
        yield conn
        await trans.rollback()


@pytest.fixture
def sessionmaker(db_connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions inside the test's transaction: `session.begin()` makes a savepoint."""
    return async_sessionmaker(
        bind=db_connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def db(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in a transaction rolled back after the test."""
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def fresh_database(servers: Servers) -> Callable[[], AbstractAsyncContextManager[str]]:
    """For tests whose commits matter (worker, e2e): `async with fresh_database() as url`."""
    return lambda: new_database(servers.postgres_url)


@pytest.fixture
async def redis_client(servers: Servers) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(servers.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def demo(sessionmaker: async_sessionmaker[AsyncSession]) -> SeedResult:
    """The demo organisation (inside the test's transaction) and its admin token."""
    return await seed_demo(sessionmaker)


@pytest.fixture
async def client(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    """The full ASGI app over HTTP, sharing the test's rolled-back transaction."""
    app = create_app(sessionmaker=sessionmaker, queue=None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c
