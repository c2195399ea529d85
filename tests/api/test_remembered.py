"""Repeated requests answered from the compiled path's or the introspection cache's
remembered outcome (api/remembered.py): the same status, headers, bytes and round
trips as the first answer, without Strawberry's pipeline; anything else goes the
normal way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.seed import SeedResult, seed_demo
from okrgraph.schema import schema
from okrgraph.schema.compiled import extension as compiled_reads
from tests.api.statements import round_trips
from tests.api.test_fixed_cost import kind

READ = "query Teams($n: Int!) { organization { name teams(first: $n) { nodes { name } } } }"


@pytest.fixture
async def served(
    committed: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, SeedResult, AsyncEngine, list[str]]]:
    """A client over a committed database, and the operations Strawberry executed."""
    monkeypatch.setattr(compiled_reads, "store", compiled_reads.CompiledStore())
    executed: list[str] = []
    execute = schema.execute

    async def counted(query: str | None, *args: Any, **kwargs: Any) -> Any:
        executed.append(query or "")
        return await execute(query, *args, **kwargs)

    monkeypatch.setattr(schema, "execute", counted)
    demo = await seed_demo(committed)
    app = create_app(sessionmaker=committed, queue=None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.post(  # the token's first use is recorded: not in the round trips
                "/graphql", json={"query": "{ __typename }"}, headers=auth(demo)
            )
            executed.clear()
            yield client, demo, committed.kw["bind"], executed


def auth(demo: SeedResult, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.admin_token}", **headers}


async def sent(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine, list[str]],
    body: dict[str, Any],
    **headers: str,
) -> tuple[httpx.Response, list[str]]:
    client, demo, engine, _ = served
    with round_trips(engine) as seen:
        response = await client.post("/graphql", json=body, headers=auth(demo, **headers))
    return response, [kind(s) for s in seen]


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_a_repeated_read_is_answered_alike_without_the_pipeline(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine, list[str]], accept: str
) -> None:
    executed = served[3]
    body = {"query": READ, "variables": {"n": 2}}
    first, first_sent = await sent(served, body, accept=accept)
    assert executed == [READ]
    again, again_sent = await sent(served, body, accept=accept)
    assert executed == [READ]  # answered from the remembered statement
    assert first.json()["data"]["organization"]["name"] == "Acme Rockets"
    assert (again.status_code, again.headers.items(), again.content) == (
        first.status_code,
        first.headers.items(),
        first.content,
    )
    assert again_sent == first_sent == ["BEGIN", "authenticate+tenant", "compiled read", "COMMIT"]
    await sent(served, {"query": READ, "variables": {"n": 3}}, accept=accept)
    assert len(executed) == 2  # other variables: the normal way


async def test_repeated_introspection_is_answered_alike_and_a_bad_token_refused(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine, list[str]],
) -> None:
    client, _, _, executed = served
    body = {"query": "query Name { __typename }"}
    first, _ = await sent(served, body)
    again, again_sent = await sent(served, body)
    assert len(executed) == 1
    assert (again.headers.items(), again.content) == (first.headers.items(), first.content)
    assert again_sent == ["authenticate+tenant"]  # no transaction around it
    refused = await client.post("/graphql", json=body, headers={"Authorization": "Bearer okr_x"})
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    anonymous = await client.post("/graphql", json=body)
    assert anonymous.content == first.content
    assert len(executed) == 1


async def test_a_failing_remembered_read_runs_again_the_normal_way(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executed = served[3]
    body = {"query": READ, "variables": {"n": 1}}
    first, _ = await sent(served, body)
    run_compiled = compiled_reads.run_compiled
    failures: list[int] = []

    async def fails_once(*args: Any) -> Any:
        if not failures:
            failures.append(1)
            raise RuntimeError("statement timeout")
        return await run_compiled(*args)

    monkeypatch.setattr(compiled_reads, "run_compiled", fails_once)
    again, again_sent = await sent(served, body)
    assert again.content == first.content
    assert len(executed) == 2
    assert again_sent == [
        "BEGIN", "authenticate+tenant", "ROLLBACK",  # the remembered way, failed
        "BEGIN", "authenticate+tenant", "compiled read", "COMMIT",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": READ, "variables": {"n": 2}, "extensions": None}, 200),
        ({"query": READ, "variables": {"n": 2}, "operationName": "Other"}, 400),  # no such
    ],
)
async def test_anything_but_a_plain_repeat_goes_the_normal_way(
    served: tuple[httpx.AsyncClient, SeedResult, AsyncEngine, list[str]],
    body: dict[str, Any],
    status: int,
) -> None:
    executed = served[3]
    await sent(served, {"query": READ, "variables": {"n": 2}})
    response, _ = await sent(served, body)
    assert len(executed) == 2
    assert response.status_code == status
