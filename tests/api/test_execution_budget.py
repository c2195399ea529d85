"""What a request may spend after SQL (issue 12, findings 4 and 6): completed
values and time are budgeted inside execution, one request never holds the event
loop from the others, introspection is cached, and anonymous callers are
rate-limited."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from graphql import parse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.config import Settings
from okrgraph.domain.seed import SeedResult
from okrgraph.embedded import free_port
from okrgraph.schema import compiled, execution, schema
from okrgraph.schema.context import Context
from okrgraph.schema.introspection import introspection_only
from okrgraph.schema.limits import MAX_COST, query_cost
from tests.api.test_limits import codes, post
from tests.conftest import Servers

NOT_COMPILED = "{ objectives(first: 100) { nodes { title warnings { code } } } }"


async def test_completed_values_over_the_budget_are_one_typed_error(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "errors" not in (await post(client, demo.admin_token, NOT_COMPILED)).json()
    monkeypatch.setattr(execution, "MAX_RESPONSE_VALUES", 10)
    body = (await post(client, demo.admin_token, NOT_COMPILED)).json()
    assert "data" not in body
    assert codes(body) == {"RESPONSE_TOO_LARGE"}
    assert len(body["errors"]) == 1


async def test_execution_time_over_the_budget_is_a_typed_error(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execution, "MAX_EXECUTION_SECONDS", 0.0)
    body = (await post(client, demo.admin_token, NOT_COMPILED)).json()
    assert "data" not in body
    assert codes(body) == {"EXECUTION_TOO_LONG"}


async def test_a_compiled_response_over_its_bytes_is_a_typed_error(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = "{ objectives(first: 100) { nodes { title } } }"
    assert "errors" not in (await post(client, demo.admin_token, query)).json()
    monkeypatch.setattr(compiled.extension, "MAX_RESPONSE_BYTES", 10)
    body = (await post(client, demo.admin_token, query)).json()
    assert "data" not in body
    assert codes(body) == {"RESPONSE_TOO_LARGE"}


TYPE_REF = "name kind ofType { name kind ofType { name kind ofType { name kind } } }"
WALK = (
    "types { name kind description fields { name description isDeprecated deprecationReason "
    f"args {{ name description defaultValue type {{ {TYPE_REF} }} }} type {{ {TYPE_REF} }} }} "
    f"inputFields {{ name description type {{ {TYPE_REF} }} }} enumValues {{ name description }} }}"
)


def heavy_introspection() -> str:
    """An allowed query (just under MAX_COST, as many aliases as fit) that takes
    the executor seconds and no SQL: every value is completed synchronously.
    Unique, so never cached."""
    tag = "s" + uuid.uuid4().hex[:8]

    def query(aliases: int) -> str:
        spread = " ".join(f"{tag}{i}: __schema {{ ...W }}" for i in range(aliases))
        return f"{{ {spread} }} fragment W on __Schema {{ {WALK} }}"

    fitting = [n for n in range(1, 31) if query_cost(schema._schema, parse(query(n))) <= MAX_COST]
    return query(max(fitting))


@contextmanager
def uvicorn_in_a_thread(cfg: Settings) -> Iterator[str]:
    """The app under a real uvicorn server with an event loop of its own."""
    port = free_port()
    config = uvicorn.Config(
        create_app(cfg), host="127.0.0.1", port=port, lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)  # uvicorn has no event for "started" across threads
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


async def test_a_heavy_query_does_not_stall_the_others(servers: Servers, database_url: str) -> None:
    heavy = heavy_introspection()
    assert MAX_COST * 0.9 < query_cost(schema._schema, parse(heavy)) <= MAX_COST
    cfg = Settings(
        database_url=database_url,
        redis_url=servers.redis_url,
        anonymous_burst=10_000,
        anonymous_per_second=1_000,
    )
    with uvicorn_in_a_thread(cfg) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            running = [
                asyncio.ensure_future(client.post("/graphql", json={"query": heavy}))
                for _ in range(2)
            ]
            answered_meanwhile = 0
            while not all(task.done() for task in running):
                probe = client.post("/graphql", json={"query": "{ __typename }"})
                response = await asyncio.wait_for(probe, 1.0)  # the failure mode: a stall
                assert response.json() == {"data": {"__typename": "Query"}}
                answered_meanwhile += not all(task.done() for task in running)
            for task in running:
                body = (await task).json()
                assert "errors" not in body, body["errors"]
    assert answered_meanwhile >= 1


async def test_introspection_is_answered_from_the_cache() -> None:
    context = Context(request=None, sessionmaker=None, principal=None, queue=None)  # type: ignore[arg-type]
    query = "query($t: String!) { __type(name: $t) { name fields { name } } }"
    first = await schema.execute(query, {"t": "Objective"}, context_value=context)
    again = await schema.execute(query, {"t": "Objective"}, context_value=context)
    other = await schema.execute(query, {"t": "KeyResult"}, context_value=context)
    assert first.errors is None
    assert first.data is not None
    assert again.data is first.data  # the same answer, not computed again
    assert other.data is not None
    assert other.data["__type"]["name"] == "KeyResult"
    assert not introspection_only(parse("{ __typename viewer { scopes } }"), None)
    assert not introspection_only(parse("{ ...F } fragment F on Query { viewer { id } }"), None)
    meta_fragment = "{ ...F } fragment F on Query { __schema { __typename } }"
    assert introspection_only(parse(meta_fragment), None)


async def test_anonymous_callers_are_rate_limited(
    sessionmaker: async_sessionmaker[AsyncSession], demo: SeedResult
) -> None:
    cfg = Settings(anonymous_burst=2, anonymous_per_second=0.01)
    app = create_app(cfg, sessionmaker=sessionmaker, queue=None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            query = {"query": "{ __typename }"}
            for _ in range(2):
                assert (await client.post("/graphql", json=query)).status_code == 200
            refused = await client.post("/graphql", json=query)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            body = refused.json()
            assert codes(body) == {"RATE_LIMITED"}
            assert body["errors"][0]["extensions"]["retryAfter"] >= 1
            with_token = await post(client, demo.admin_token, "{ __typename }")
            assert with_token.json() == {"data": {"__typename": "Query"}}
