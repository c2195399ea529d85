"""A request's fixed cost in round trips to PostgreSQL, pinned (issue 11): one
transaction, begun when the token is checked, whose first statement both checks it and
sets the tenant; the operation runs in it. Over a committed database, so that BEGIN and
COMMIT are real (the `client` fixture's requests are savepoints of one transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.auth.tokens import hash_secret
from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import ApiToken
from okrgraph.domain.seed import SeedResult, seed_demo
from tests.api.statements import round_trips

AUTHENTICATE = "SELECT a.*, set_config('app.org_id', a.org_id::text, true) AS tenant"


def admin_token_of(demo: SeedResult) -> ColumnElement[bool]:
    assert demo.admin_token is not None
    return ApiToken.token_hash == hash_secret(demo.admin_token)


def kind(sent: str) -> str:
    """BEGIN/COMMIT/ROLLBACK, or what a statement is for."""
    if sent.startswith(AUTHENTICATE):
        return "authenticate+tenant"
    if sent.startswith("SELECT json_build_object("):
        return "compiled read"
    if "set_config" in sent:
        return "tenant"
    if sent.startswith("UPDATE api_tokens"):
        return "token used"
    return sent


@pytest.fixture
async def served(
    committed: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[httpx.AsyncClient, SeedResult, AsyncEngine]]:
    demo = await seed_demo(committed)
    engine = committed.kw["bind"]
    app = create_app(sessionmaker=committed, queue=None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, demo, engine


async def sent_by(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine],
    query: str,
    token: str | None = None,
) -> tuple[httpx.Response, list[str]]:
    client, demo, engine = served
    headers = {"Authorization": f"Bearer {token or demo.admin_token}"}
    with round_trips(engine) as seen:
        response = await client.post("/graphql", json={"query": query}, headers=headers)
    return response, [kind(s) for s in seen]


async def test_a_read_is_one_transaction_of_two_statements(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine],
) -> None:
    await sent_by(served, "{ __typename }")  # the token's first use is recorded (below)
    response, sent = await sent_by(served, "{ organization { name } }")
    assert response.json() == {"data": {"organization": {"name": "Acme Rockets"}}}
    assert sent == ["BEGIN", "authenticate+tenant", "compiled read", "COMMIT"]


async def test_repeated_introspection_needs_only_the_token_check(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine],
) -> None:
    await sent_by(served, "{ __typename }")  # the token's first use is recorded
    response, sent = await sent_by(served, "{ query: __typename }")
    assert response.json() == {"data": {"query": "Query"}}
    assert sent == ["BEGIN", "authenticate+tenant", "ROLLBACK"]
    for _ in range(2):  # answered from the introspection cache: only the token's check
        response, sent = await sent_by(served, "{ query: __typename }")
        assert response.json() == {"data": {"query": "Query"}}
        assert sent == ["authenticate+tenant"]


async def test_a_refused_token_runs_nothing_after_its_check(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine],
    committed: async_sessionmaker[AsyncSession],
) -> None:
    _, demo, _ = served
    async with tenant_session(committed, demo.org_id) as session:
        await session.execute(
            update(ApiToken).where(admin_token_of(demo)).values(revoked_at=datetime.now(UTC))
        )
    for token in (demo.admin_token, "okr_unknown"):
        response, sent = await sent_by(served, "{ organization { name } }", token)
        assert response.status_code == 401
        assert sent == ["BEGIN", "authenticate+tenant", "ROLLBACK"]


async def test_a_stale_last_use_is_recorded_after_the_transaction(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine],
    committed: async_sessionmaker[AsyncSession],
) -> None:
    """Once a minute at most, in a transaction of its own once the request's has
    ended: a request never holds two connections, nor a lock on its token's row."""
    _, demo, _ = served
    response, sent = await sent_by(served, "{ organization { name } }")
    assert response.status_code == 200
    assert sent == [
        "BEGIN", "authenticate+tenant", "compiled read", "COMMIT",
        "BEGIN", "tenant", "token used", "COMMIT",
    ]  # fmt: skip
    async with tenant_session(committed, demo.org_id) as session:
        used = await session.scalar(select(ApiToken.last_used_at).where(admin_token_of(demo)))
    assert used is not None
    _, again = await sent_by(served, "{ organization { name } }")
    assert "token used" not in again
