"""API tests that need commits: a fresh database seen through the app role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.db import create_engine, create_sessionmaker

POOL_SIZE = 20  # enough connections for a test's concurrent requests


@pytest.fixture
async def committed(
    fresh_database: Callable[[], AbstractAsyncContextManager[str]],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker over a fresh, migrated database: each request its own transaction."""
    async with fresh_database() as url:
        engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=5)
        try:
            yield create_sessionmaker(engine)
        finally:
            await engine.dispose()
