"""Request limits: each refused before execution, with a clear error and its code."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query, parse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from okrgraph.domain.config import settings
from okrgraph.domain.seed import SeedResult
from okrgraph.schema import schema
from okrgraph.schema.limits import (
    DEFAULT_PAGE_SIZE,
    MAX_ALIASES,
    MAX_COST,
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_PAGE_SIZE,
    MAX_TOKENS,
    query_cost,
)
from tests.api.statements import statements_after_auth

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def post(
    client: httpx.AsyncClient,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    accept: str = GRAPHQL_RESPONSE,
) -> httpx.Response:
    # Called with the demo's admin token, which a fresh seed (the test's own) always returns.
    assert token is not None, "no token: seed_demo returns it only when it creates the demo"
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}", "Accept": accept},
    )


def teams_tree(levels: int, leaf: str = "name") -> str:
    """organization > teams > `levels` x children: depth 3 + 2 * levels (+1 per leaf object)."""
    inner = "children(first: 1) { nodes { " * levels + leaf + " } }" * levels
    return "{ organization { teams(first: 1) { nodes { " + inner + " } } } }"


async def refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sends `query`; asserts a request error that ran no SQL past authentication."""
    with statements_after_auth(engine, monkeypatch) as sql:
        response = await post(client, demo.admin_token, query, variables)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body: dict[str, Any] = response.json()
    assert "data" not in body
    assert sql == []
    return body


def codes(body: dict[str, Any]) -> set[str]:
    return {error["extensions"]["code"] for error in body["errors"]}


async def accepted(client: httpx.AsyncClient, demo: SeedResult, query: str) -> dict[str, Any]:
    response = await post(client, demo.admin_token, query)
    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    return body


async def test_a_query_within_the_limits_runs_sql(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control for `sql == []` in the refusals below."""
    with statements_after_auth(app_engine, monkeypatch) as sql:
        await accepted(client, demo, "{ organization { name } }")
    assert any("organizations" in statement for statement in sql)


async def test_deep_query_is_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert MAX_DEPTH == 20
    await accepted(client, demo, teams_tree(8, leaf="parent { name }"))  # depth 20
    body = await refused(client, demo, app_engine, monkeypatch, teams_tree(9))  # depth 21
    assert codes(body) == {"QUERY_TOO_DEEP"}
    assert body["errors"][0]["message"] == "The operation is 21 levels deep; the maximum is 20."
    assert body["errors"][0]["extensions"]["maxDepth"] == MAX_DEPTH


async def test_alias_flood_is_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def aliases(n: int) -> str:
        return "{ " + " ".join(f"a{i}: organization {{ name }}" for i in range(n)) + " }"

    await accepted(client, demo, aliases(MAX_ALIASES))
    body = await refused(client, demo, app_engine, monkeypatch, aliases(MAX_ALIASES + 1))
    assert codes(body) == {"TOO_MANY_ALIASES"}
    assert body["errors"][0]["message"] == "The operation uses 31 aliases; the maximum is 30."


async def test_huge_document_is_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    query = "{ organization { name } } #" + "x" * MAX_DOCUMENT_BYTES
    body = await refused(client, demo, app_engine, monkeypatch, query)
    assert codes(body) == {"DOCUMENT_TOO_LARGE"}
    assert body["errors"][0]["message"] == "The document is over 100,000 bytes."


async def test_too_many_tokens_are_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    introspection = get_introspection_query(descriptions=True, input_value_deprecation=True)
    assert (await accepted(client, demo, introspection))["data"]["__schema"]["types"]
    query = "{ " + "__typename " * MAX_TOKENS + "}"
    assert len(query) < MAX_DOCUMENT_BYTES / 4
    body = await refused(client, demo, app_engine, monkeypatch, query)
    assert codes(body) == {"TOO_MANY_TOKENS"}
    assert "more than 2000 tokens" in body["errors"][0]["message"]


@pytest.mark.parametrize("inline", [True, False])
async def test_page_size_over_the_cap_is_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    inline: bool,
) -> None:
    await accepted(
        client, demo, f"{{ objectives(first: {MAX_PAGE_SIZE}) {{ nodes {{ title }} }} }}"
    )
    if inline:
        query, variables = "{ objectives(first: 1000) { nodes { title } } }", None
    else:
        query = "query($n: Int) { objectives(first: $n) { nodes { title } } }"
        variables = {"n": 1000}
    body = await refused(client, demo, app_engine, monkeypatch, query, variables)
    assert codes(body) == {"PAGE_SIZE_TOO_LARGE"}
    assert body["errors"][0]["message"] == (
        "`first: 1000` on 'objectives' is over the maximum page size of 100."
    )
    assert body["errors"][0]["extensions"]["maxPageSize"] == 100


async def test_costly_nested_query_is_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    query = """{ organization { teams(first: 100) { nodes { objectives(first: 100) { nodes {
        keyResults(first: 100) { nodes { title score } } } } } } } }"""
    assert query_cost(schema._schema, parse(query)) == 1 + 1 + 100 * (2 + 100 * (2 + 100 * 3))
    body = await refused(client, demo, app_engine, monkeypatch, query)
    assert codes(body) == {"QUERY_TOO_COMPLEX"}
    assert body["errors"][0]["message"].startswith(
        "The operation could return up to 3,020,202 fields; the maximum is 250,000."
    )
    assert body["errors"][0]["extensions"]["maxCost"] == MAX_COST


async def test_fragments_spreading_fragments_are_measured_once(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2^100 aliased fields in 1 KB: refused at once, not walked spread by spread."""
    levels = 100
    fragments = "".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }} " for i in range(levels)
    )
    query = "{ ...F0 } " + fragments + f"fragment F{levels} on Query {{ a: __typename }}"
    # a walk spread by spread would never end: fail instead of hanging
    body = await asyncio.wait_for(refused(client, demo, app_engine, monkeypatch, query), 10)
    assert codes(body) == {"TOO_MANY_ALIASES", "QUERY_TOO_COMPLEX"}
    assert "uses over a billion aliases" in body["errors"][0]["message"]


async def test_refusals_keep_status_200_for_application_json(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    response = await post(client, demo.admin_token, teams_tree(9), accept="application/json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "data" not in body
    assert codes(body) == {"QUERY_TOO_DEEP"}


def test_cost_counts_fields_times_pages() -> None:
    nested = """{ objectives(first: 10) { nodes { title
        keyResults(first: 5) { nodes { title } } } } }"""
    # objectives 1 + nodes 10 + (title, keyResults) 10 each + (nodes, title) 50 each
    assert query_cost(schema._schema, parse(nested)) == 1 + 10 + 20 + 100
    defaulted = "{ objectives { nodes { title } } }"
    assert query_cost(schema._schema, parse(defaulted)) == 1 + 2 * DEFAULT_PAGE_SIZE
    with_fragment = """query { objectives(first: 10) { nodes { ...O } } }
        fragment O on Objective { title keyResults(first: 5) { nodes { title } } }"""
    assert query_cost(schema._schema, parse(with_fragment)) == 131
    with_variable = "query($n: Int = 7) { objectives(first: $n) { nodes { title } } }"
    assert query_cost(schema._schema, parse(with_variable)) == 1 + 2 * 7
    assert query_cost(schema._schema, parse(with_variable), {"n": 3}) == 1 + 2 * 3


async def test_statements_time_out(db: AsyncSession) -> None:
    """The app role's connections carry the statement timeout."""
    setting = await db.scalar(
        text("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
    )
    assert setting == str(settings.statement_timeout_ms) == "5000"
