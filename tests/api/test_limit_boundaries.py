"""Every limit at its boundary (the number itself is allowed, one more is refused),
the statement timeout as the client sees it, and the status table of docs/limits.md
for both media types. Costs are worked out by hand from the documented model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from okrgraph.domain.db import async_url
from okrgraph.domain.models.enums import OrgRole
from okrgraph.domain.seed import SeedResult
from okrgraph.schema import extensions as schema_extensions
from okrgraph.schema.compiled import extension as compiled_reads
from okrgraph.schema.limits import MAX_COST, MAX_DOCUMENT_BYTES, MAX_NODES, MAX_PAGE_SIZE
from okrgraph.schema.node import to_global_id
from tests.api.statements import statements_after_auth
from tests.factories import make_org, make_token

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


async def post(
    client: httpx.AsyncClient,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    accept: str | None = GRAPHQL_RESPONSE,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if accept:
        headers["Accept"] = accept
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_the_numbers_are_the_documented_ones() -> None:
    assert (MAX_COST, MAX_PAGE_SIZE, MAX_NODES, MAX_DOCUMENT_BYTES) == (
        250_000, 100, 100, 100_000,
    )  # fmt: skip


# organization 1 + teams 1 + nodes A + objectives A + nodes AB + keyResults AB + nodes ABC
# + title ABC = 2 + 2A + 2AB + 2ABC; A = 49, B = C = 50: 2 + 98 + 4,900 + 245,000 = 250,000.
AT_COST = (
    "{ organization { teams(first: 49) { nodes { objectives(first: 50) { nodes {"
    " keyResults(first: 50) { nodes { title } } } } } } } }"
)


async def test_cost_at_the_limit_runs_and_one_more_is_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = await post(client, demo.admin_token, AT_COST)
    assert (at.status_code, codes(at.json())) == (200, []), at.text
    assert at.json()["data"]["organization"]["teams"]["nodes"]
    over = AT_COST.replace("{ organization", "{ __typename organization", 1)  # + 1
    with statements_after_auth(app_engine, monkeypatch) as sql:
        response = await post(client, demo.admin_token, over)
    assert response.status_code == 400
    assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]
    assert response.json()["errors"][0]["message"].startswith(
        "The operation could return up to 250,001 fields; the maximum is 250,000."
    )
    assert sql == []


@pytest.mark.parametrize("inline", [True, False])
async def test_page_size_100_runs_and_101_is_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    inline: bool,
) -> None:
    def query(n: int) -> tuple[str, dict[str, Any] | None]:
        if inline:
            return f"{{ objectives(first: {n}) {{ nodes {{ title }} }} }}", None
        return "query($n: Int) { objectives(first: $n) { nodes { title } } }", {"n": n}

    at = await post(client, demo.admin_token, *query(100))
    assert (at.status_code, codes(at.json())) == (200, [])
    with statements_after_auth(app_engine, monkeypatch) as sql:
        over = await post(client, demo.admin_token, *query(101))
    assert over.status_code == 400
    assert codes(over.json()) == ["PAGE_SIZE_TOO_LARGE"]
    assert over.json()["errors"][0]["extensions"]["maxPageSize"] == 100
    assert sql == []


async def test_a_document_of_exactly_the_limit_runs_one_byte_more_is_refused(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    """Bytes, not characters: the comment's "é" is two bytes in UTF-8."""
    head = "{ organization { name } } #é"
    at = head + "x" * (MAX_DOCUMENT_BYTES - len(head.encode()))
    assert (len(at.encode()), len(at)) == (100_000, 99_999)
    response = await post(client, demo.admin_token, at)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"organization": {"name": "Acme Rockets"}}}
    over = await post(client, demo.admin_token, at + "x")  # 100,000 characters, 100,001 bytes
    assert over.status_code == 400
    assert codes(over.json()) == ["DOCUMENT_TOO_LARGE"]


NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename } }"


async def test_nodes_takes_100_ids_and_refuses_101(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    ids = [to_global_id("Objective", uuid.uuid4()) for _ in range(101)]
    at = await post(client, demo.admin_token, NODES, {"ids": ids[:100]})
    assert at.status_code == 200
    assert at.json() == {"data": {"nodes": [None] * 100}}  # unknown ids: null, in order
    over = await post(client, demo.admin_token, NODES, {"ids": ids})
    body = over.json()
    assert body.get("data") is None
    assert codes(body) == ["BAD_REQUEST"]
    assert "100" in body["errors"][0]["message"]


@pytest.fixture
async def owner_connection(database_url: str) -> AsyncIterator[AsyncSession]:
    """Another connection to the test database (owner role), outside the test's transaction."""
    engine = create_async_engine(async_url(database_url))
    try:
        async with AsyncSession(engine) as session:
            yield session
    finally:
        await engine.dispose()


async def test_a_statement_timeout_reaches_the_client_as_a_typed_error(
    client: httpx.AsyncClient, db: AsyncSession, owner_connection: AsyncSession
) -> None:
    """A read stuck behind a lock past the statement timeout (lowered to 200 ms for
    this transaction) is cancelled by PostgreSQL; the client gets the typed error
    the README lists, no data and nothing of the SQL."""
    org = await make_org(db)
    _, token = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read"])
    read = "{ objectives(first: 1) { nodes { title } } }"
    await db.execute(text("SET LOCAL statement_timeout = '200ms'"))
    await db.flush()
    await owner_connection.execute(text("SET LOCAL lock_timeout = '5s'"))
    await owner_connection.execute(text("LOCK TABLE objectives IN ACCESS EXCLUSIVE MODE"))
    try:
        response = await post(client, token, read)
    finally:
        await owner_connection.rollback()
    assert response.status_code == 503  # the service could not answer in time, no fault
    body = response.json()
    assert "data" not in body or body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["STATEMENT_TIMEOUT"]
    assert "statement timeout" in body["errors"][0]["message"]
    assert "objectives" not in body["errors"][0]["message"]  # nothing of the SQL


# docs/limits.md, "Errors and status codes": (graphql-response+json, application/json)
async def _unexpected(monkeypatch: pytest.MonkeyPatch) -> None:
    @asynccontextmanager
    async def broken(*_: Any) -> AsyncIterator[None]:
        raise RuntimeError("boom")
        yield

    monkeypatch.setattr(schema_extensions, "operation_session", broken)
    monkeypatch.setattr(compiled_reads, "store", compiled_reads.CompiledStore())  # not remembered


ORG = "{ organization { name } }"
FIELD_ERROR = "{ organization { name } objectives(first: -1) { nodes { title } } }"
BAD_VARIABLE = "query($n: Int) { objectives(first: $n) { nodes { title } } }"
STATUS_TABLE: list[tuple[str, dict[str, Any], tuple[int, int]]] = [
    ("success", {"query": ORG}, (200, 200)),
    ("field error", {"query": FIELD_ERROR}, (200, 200)),
    ("parse error", {"query": "{ organization { name }"}, (400, 200)),
    ("validation error", {"query": "{ organization { nope } }"}, (400, 200)),
    ("a limit", {"query": "{ objectives(first: 101) { nodes { title } } }"}, (400, 200)),
    ("bad variables", {"query": BAD_VARIABLE, "variables": {"n": "x"}}, (400, 200)),
    ("unexpected failure before execution", {"query": ORG, "unexpected": True}, (500, 200)),
    ("bad token", {"query": ORG, "token": "okr_nope"}, (401, 401)),
    ("no token", {"query": ORG, "token": None}, (401, 401)),
    ("not acceptable", {"query": ORG, "accept": "text/plain"}, (406, 406)),
    ("not JSON", {"body": b"{nope"}, (400, 400)),
    ("a batch", {"body": b'[{"query": "{ __typename }"}]'}, (400, 400)),
    ("mutation over GET", {"get": "mutation { __typename }"}, (405, 405)),
]  # fmt: skip


@pytest.mark.parametrize("column", [0, 1], ids=["graphql-response+json", "application/json"])
@pytest.mark.parametrize(
    ("situation", "case", "statuses"), STATUS_TABLE, ids=[r[0] for r in STATUS_TABLE]
)
async def test_the_status_table(
    client: httpx.AsyncClient,
    demo: SeedResult,
    monkeypatch: pytest.MonkeyPatch,
    situation: str,
    case: dict[str, Any],
    statuses: tuple[int, int],
    column: int,
) -> None:
    accept = case.get("accept") or (GRAPHQL_RESPONSE, JSON)[column]
    token = case.get("token", demo.admin_token)
    headers = {"Accept": accept, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if case.get("unexpected"):
        await _unexpected(monkeypatch)
    if "body" in case:
        response = await client.post("/graphql", content=case["body"], headers=headers)
    elif "get" in case:
        response = await client.get("/graphql", params={"query": case["get"]}, headers=headers)
    else:
        payload = {"query": case["query"], "variables": case.get("variables")}
        response = await client.post("/graphql", json=payload, headers=headers)
    assert response.status_code == statuses[column], (situation, response.text)
    body = response.json()
    assert body.get("errors") or body.get("data"), body  # GraphQL-shaped either way
    if statuses[column] >= 400 or situation in {"parse error", "validation error", "a limit"}:
        assert "data" not in body or situation == "field error"
