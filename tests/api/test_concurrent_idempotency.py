"""Concurrent duplicates of one idempotent mutation: one row, every caller the first
call's result (issue 12, finding 11).

The requests run at once against the app over a committed database (each in its own
transaction), unlike the `client` fixture, whose requests share one transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import CheckIn
from okrgraph.domain.seed import SeedResult, seed_demo
from okrgraph.schema.node import from_global_id
from tests.gql import data, gql

CALLERS = 20  # within the `committed` fixture's pool
CHECK_IN = """mutation($input: CheckInInput!, $key: String) {
  checkIn(input: $input, idempotencyKey: $key) {
    __typename
    ... on UserError { message }
    ... on CheckInSuccess { checkIn { id value } }
  }
}"""
KR = "Raise customer NPS from 30 to 60"


async def key_result_id(client: httpx.AsyncClient, token: str) -> str:
    query = "{ objectives(first: 50) { nodes { keyResults { nodes { id title } } } } }"
    found = await data(client, token, query)
    return next(
        str(kr["id"])
        for o in found["objectives"]["nodes"]
        for kr in o["keyResults"]["nodes"]
        if kr["title"] == KR
    )


async def test_concurrent_duplicates_wait_for_the_first_and_replay_it(
    committed: async_sessionmaker[AsyncSession],
) -> None:
    demo: SeedResult = await seed_demo(committed)
    assert demo.admin_token is not None
    app = create_app(sessionmaker=committed, queue=None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            kr = await key_result_id(client, demo.admin_token)
            variables: dict[str, Any] = {
                "input": {"keyResultId": kr, "value": 41.5, "comment": "once"},
                "key": "concurrent-1",
            }
            bodies = await asyncio.gather(
                *(gql(client, demo.admin_token, CHECK_IN, **variables) for _ in range(CALLERS))
            )
    results = [b.get("data", {}).get("checkIn") if "errors" not in b else b for b in bodies]
    assert [r["__typename"] for r in results] == ["CheckInSuccess"] * CALLERS, results
    assert len({r["checkIn"]["id"] for r in results}) == 1
    parsed = from_global_id(kr)
    assert parsed is not None
    async with tenant_session(committed, demo.org_id) as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(CheckIn)
            .where(CheckIn.key_result_id == parsed[1], CheckIn.value == 41.5)
        )
    assert stored == 1
