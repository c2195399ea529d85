"""GraphQL over HTTP: methods, media types, status codes, error shapes, masking."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from okrgraph.api import transaction
from okrgraph.api.app import create_app
from okrgraph.domain import errors as domain
from okrgraph.domain.config import Settings
from okrgraph.domain.organizations import queries as org_queries
from okrgraph.domain.seed import SeedResult
from okrgraph.schema import extensions as schema_extensions
from okrgraph.schema.compiled import extension as compiled_reads
from okrgraph.schema.limits import MAX_REQUEST_BYTES
from tests.api.statements import statements_after_auth

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
QUERY = "{ organization { name } }"
# `pageInfo` keeps the query off the compiled path (okrgraph/schema/compiled), so
# the `organization` resolver runs and a patched domain function is called.
RESOLVED_QUERY = "{ organization { name teams { pageInfo { hasNextPage } } } }"
SECRET = "secret detail"


def auth(token: str | None, accept: str | None = None) -> dict[str, str]:
    """Headers with `token`: the demo's admin token, which a fresh seed always returns."""
    assert token is not None, "no token: seed_demo returns it only when it creates the demo"
    headers = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        headers["Accept"] = accept
    return headers


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0]


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


async def test_get_runs_a_query(client: httpx.AsyncClient, demo: SeedResult) -> None:
    response = await client.get(
        "/graphql", params={"query": QUERY}, headers=auth(demo.admin_token, JSON)
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"organization": {"name": "Acme Rockets"}}}


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_get_refuses_mutations_with_405(
    client: httpx.AsyncClient,
    demo: SeedResult,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    accept: str,
) -> None:
    mutation = 'mutation { createTeam(input: {name: "Via GET"}) { __typename } }'
    with statements_after_auth(app_engine, monkeypatch) as sql:
        response = await client.get(
            "/graphql", params={"query": mutation}, headers=auth(demo.admin_token, accept)
        )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert media_type(response) == accept
    assert codes(response) == ["METHOD_NOT_ALLOWED"]
    assert "data" not in response.json()
    assert sql == []


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_subscriptions_over_http_are_refused(
    client: httpx.AsyncClient, demo: SeedResult, method: str
) -> None:
    subscription = "subscription { progressChanged { __typename } }"
    response = await client.request(
        method,
        "/graphql",
        params={"query": subscription} if method == "GET" else None,
        json={"query": subscription} if method == "POST" else None,
        headers=auth(demo.admin_token, GRAPHQL_RESPONSE),
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "Subscriptions run over WebSocket (graphql-transport-ws) at /graphql.",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (JSON, JSON),
        (None, JSON),
        ("*/*", JSON),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
    ],
)
async def test_content_negotiation(
    client: httpx.AsyncClient, demo: SeedResult, accept: str | None, expected: str
) -> None:
    response = await client.post(
        "/graphql", json={"query": QUERY}, headers=auth(demo.admin_token, accept)
    )
    assert response.status_code == 200
    assert media_type(response) == expected
    assert response.headers["content-type"].endswith("charset=utf-8")
    assert response.json()["data"] == {"organization": {"name": "Acme Rockets"}}


REQUEST_ERRORS = [
    ("{ organization { name }", None, "GRAPHQL_PARSE_FAILED"),
    ("{ organization { nope } }", None, "GRAPHQL_VALIDATION_FAILED"),
    (
        "query($n: Int) { objectives(first: $n) { nodes { title } } }",
        {"n": "many"},
        "BAD_REQUEST",
    ),
]


@pytest.mark.parametrize(("query", "variables", "code"), REQUEST_ERRORS)
async def test_request_errors_are_400_for_graphql_response_json(
    client: httpx.AsyncClient,
    demo: SeedResult,
    query: str,
    variables: dict[str, Any] | None,
    code: str,
) -> None:
    payload = {"query": query, "variables": variables}
    response = await client.post(
        "/graphql", json=payload, headers=auth(demo.admin_token, GRAPHQL_RESPONSE)
    )
    assert response.status_code == 400
    assert media_type(response) == GRAPHQL_RESPONSE
    assert "data" not in response.json()
    assert codes(response) == [code]

    legacy = await client.post("/graphql", json=payload, headers=auth(demo.admin_token, JSON))
    assert legacy.status_code == 200
    assert media_type(legacy) == JSON
    assert "data" not in legacy.json()
    assert codes(legacy) == [code]


async def test_field_errors_keep_200_with_data(client: httpx.AsyncClient, demo: SeedResult) -> None:
    query = "{ organization { name } objectives(first: -1) { nodes { title } } }"
    response = await client.post(
        "/graphql", json={"query": query}, headers=auth(demo.admin_token, GRAPHQL_RESPONSE)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None  # `objectives` is non-null, so the error reaches the root
    assert body["errors"][0]["path"] == ["objectives"]
    assert body["errors"][0]["message"] == "`first` must be between 0 and 100."
    assert codes(response) == ["BAD_PAGE_ARGUMENTS"]


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_bad_token_is_a_graphql_shaped_401(
    client: httpx.AsyncClient, demo: SeedResult, accept: str
) -> None:
    response = await client.post(
        "/graphql", json={"query": QUERY}, headers=auth("okr_nope", accept)
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert media_type(response) == accept
    assert response.json() == {
        "errors": [
            {
                "message": "Invalid, expired or revoked API token.",
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ]
    }


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b'{"query": ', {"content-type": JSON}, 400, "BAD_REQUEST"),
        (b"{}", {"content-type": JSON}, 400, "BAD_REQUEST"),
        (b"query=%7B__typename%7D", {"content-type": "text/plain"}, 400, "BAD_REQUEST"),
        (b'[{"query": "{ __typename }"}]', {"content-type": JSON}, 400, "BAD_REQUEST"),
        (b" " * (MAX_REQUEST_BYTES + 1), {"content-type": JSON}, 413, "REQUEST_TOO_LARGE"),
    ],
    ids=["bad-json", "no-query", "not-json", "batch", "too-large"],
)
async def test_malformed_requests_get_graphql_shaped_errors(
    client: httpx.AsyncClient,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={**headers, "accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == status
    assert media_type(response) == GRAPHQL_RESPONSE
    assert "data" not in response.json()
    assert codes(response) == [code]


async def test_streamed_body_over_the_cap_is_refused(client: httpx.AsyncClient) -> None:
    """Without Content-Length (chunked), the body is counted while read."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_REQUEST_BYTES // 65536 + 2):
            yield b" " * 65536

    response = await client.post("/graphql", content=chunks(), headers={"content-type": JSON})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_graphiql_for_browsers(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert "graphiql" in response.text.lower()


async def test_unexpected_resolver_error_is_masked(
    client: httpx.AsyncClient,
    demo: SeedResult,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(org_queries, "current_organization", broken)
    with caplog.at_level(logging.ERROR):
        response = await client.post(
            "/graphql",
            json={"query": RESOLVED_QUERY},
            headers=auth(demo.admin_token, GRAPHQL_RESPONSE),
        )
    assert response.status_code == 200  # a field error: execution ran
    assert SECRET not in response.text
    assert "RuntimeError" not in response.text
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {"code": "INTERNAL"}
    assert error["path"] == ["organization"]
    logged = [r for r in caplog.records if r.exc_info and SECRET in str(r.exc_info[1])]
    assert logged, "the original error is logged with its traceback"


async def test_domain_errors_pass_through_with_a_code(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def missing(*_: Any) -> Any:
        raise domain.NotFound("Organization", "x")

    monkeypatch.setattr(org_queries, "current_organization", missing)
    response = await client.post(
        "/graphql", json={"query": RESOLVED_QUERY}, headers=auth(demo.admin_token)
    )
    error = response.json()["errors"][0]
    assert error["message"] == "Organization x not found"
    assert error["extensions"] == {"code": "NOT_FOUND", "userErrorCode": "NOT_FOUND"}


async def test_error_before_execution_is_masked_and_500(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension failing (here: opening the tenant transaction) is a request error."""

    @asynccontextmanager
    async def broken(*_: Any) -> AsyncIterator[None]:
        raise RuntimeError(SECRET)
        yield

    monkeypatch.setattr(schema_extensions, "operation_session", broken)
    monkeypatch.setattr(compiled_reads, "store", compiled_reads.CompiledStore())  # not remembered
    response = await client.post(
        "/graphql", json={"query": QUERY}, headers=auth(demo.admin_token, GRAPHQL_RESPONSE)
    )
    assert response.status_code == 500
    assert SECRET not in response.text
    assert response.json() == {
        "errors": [{"message": "Internal server error", "extensions": {"code": "INTERNAL"}}]
    }


async def test_error_in_the_http_layer_is_masked_and_500(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> None:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(transaction, "authenticate_in", broken)
    response = await client.post("/graphql", json={"query": QUERY}, headers=auth(demo.admin_token))
    assert response.status_code == 500
    assert SECRET not in response.text
    assert codes(response) == ["INTERNAL"]


@pytest.fixture
def app_client(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """A client over an app built with the given settings."""

    @asynccontextmanager
    async def build(cfg: Settings) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(cfg, sessionmaker=sessionmaker, queue=None)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                yield c

    return build


TYPOS = [
    ("{ organizaton { name } }", "Did you mean 'organization'?"),
    ("{ objectives(frist: 1) { nodes { title } } }", "Did you mean 'first'?"),
]


@pytest.mark.parametrize("dev", [False, True])
async def test_field_suggestions_only_in_dev_mode(
    app_client: Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]],
    demo: SeedResult,
    dev: bool,
) -> None:
    async with app_client(Settings(dev=dev)) as client:
        for query, hint in TYPOS:
            response = await client.post(
                "/graphql", json={"query": query}, headers=auth(demo.admin_token)
            )
            messages = json.dumps(response.json()["errors"])
            assert "Cannot query field" in messages or "Unknown argument" in messages
            assert (hint in messages) is dev
            assert ("Did you mean" in messages) is dev
