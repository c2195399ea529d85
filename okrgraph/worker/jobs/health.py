"""A no-op job that proves the worker is connected to PostgreSQL and Redis."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text


async def health(ctx: dict[str, Any]) -> str:
    async with ctx["sessionmaker"]() as session:
        await session.execute(text("SELECT 1"))
    await ctx["redis"].ping()
    return "ok"
