"""What browsers and other outside clients meet at /graphql (issue 7): CORS for
allowed and refused origins, the websocket's Origin check, GraphiQL's page and
assets served from the package, 406 for an Accept nothing satisfies, and one
answer (401) for a missing token and a bad one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from okrgraph.api.app import create_app
from okrgraph.api.graphiql import ASSETS
from okrgraph.domain.config import Settings
from okrgraph.domain.seed import SeedResult
from tests.ws import received, serving

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
APP = "https://app.example"
EVIL = "https://evil.example"
Client = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app_client(sessionmaker: async_sessionmaker[AsyncSession]) -> Client:
    @asynccontextmanager
    async def build(cfg: Settings) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(cfg, sessionmaker=sessionmaker, queue=None)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                yield c

    return build


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


# --- CORS -----------------------------------------------------------------------


async def test_an_allowed_origin_is_answered_and_a_refused_one_is_not(
    app_client: Client, demo: SeedResult
) -> None:
    async with app_client(Settings(cors_origins=f"{APP}, http://localhost:5173")) as client:
        ok = await client.options("/graphql", headers=preflight(APP))
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == APP
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in ok.headers  # bearer tokens, no cookies

        refused = await client.options("/graphql", headers=preflight(EVIL))
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        headers = {"Authorization": f"Bearer {demo.admin_token}"}
        actual = await client.post(
            "/graphql", json={"query": "{ viewer { scopes } }"}, headers={**headers, "Origin": APP}
        )
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == APP
        assert "www-authenticate" in actual.headers["access-control-expose-headers"].lower()
        elsewhere = await client.post(
            "/graphql", json={"query": "{ viewer { scopes } }"}, headers={**headers, "Origin": EVIL}
        )
        assert "access-control-allow-origin" not in elsewhere.headers  # the browser blocks it


async def test_production_allows_no_origin_by_default_and_dev_allows_localhost(
    app_client: Client,
) -> None:
    async with app_client(Settings(cors_origins="", dev=False)) as client:
        for origin in (APP, "http://localhost:5173"):
            response = await client.options("/graphql", headers=preflight(origin))
            assert response.status_code == 400, origin
            assert "access-control-allow-origin" not in response.headers
    async with app_client(Settings(cors_origins="", dev=True)) as client:
        for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8080"):
            response = await client.options("/graphql", headers=preflight(origin))
            assert response.status_code == 200, origin
            assert response.headers["access-control-allow-origin"] == origin
        for origin in (EVIL, "http://localhost.evil.example", "http://localhost:5173.evil.example"):
            response = await client.options("/graphql", headers=preflight(origin))
            assert response.status_code == 400, origin


async def test_websocket_upgrades_from_a_refused_origin_are_refused(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    demo: SeedResult,
) -> None:
    """CORS does not cover websockets: the view checks the Origin itself. The API's
    own origin (GraphiQL) and clients that send none (not browsers) are allowed."""
    app = create_app(Settings(cors_origins=APP), sessionmaker=sessionmaker, queue=redis_client)
    async with serving(app) as url:
        own = url.replace("ws://", "http://").removesuffix("/graphql")
        for origin in (APP, own, None):
            async with connect(
                url,
                subprotocols=[Subprotocol("graphql-transport-ws")],
                origin=Origin(origin) if origin else None,
            ) as ws:
                await ws.send('{"type": "connection_init", "payload": '
                              f'{{"Authorization": "Bearer {demo.admin_token}"}}}}')  # fmt: skip
                assert await received(ws) == {"type": "connection_ack"}, origin
        for origin in (EVIL, "http://localhost:5173"):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(
                    url, subprotocols=[Subprotocol("graphql-transport-ws")], origin=Origin(origin)
                ):
                    pass
            assert refused.value.response.status_code == 403, origin


# --- GraphiQL --------------------------------------------------------------------


async def test_graphiql_and_its_assets_come_from_the_package(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "unpkg.com" not in html
    assert "jsdelivr" not in html
    assert "https://" not in html
    for asset in ASSETS:
        assert f"/static/graphiql/{asset}" in html, asset
        response = await client.get(f"/static/graphiql/{asset}")
        assert response.status_code == 200, asset
        kind = "css" if asset.endswith(".css") else "javascript"
        assert kind in response.headers["content-type"], asset
        assert len(response.content) > 500, asset


# --- Accept ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "accept"),
    [
        ("POST", "text/plain"),
        ("GET", "text/plain"),
        ("POST", "text/html"),  # GraphiQL is a GET page only
        ("POST", f"{JSON};q=0, text/plain"),
        ("GET", "image/png, text/csv"),
    ],
)
async def test_an_accept_header_nothing_satisfies_is_406(
    client: httpx.AsyncClient, demo: SeedResult, method: str, accept: str
) -> None:
    headers = {"Accept": accept, "Authorization": f"Bearer {demo.admin_token}"}
    query = "{ __typename }"
    if method == "GET":
        response = await client.get("/graphql", params={"query": query}, headers=headers)
    else:
        response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"


@pytest.mark.parametrize(
    "accept", [None, "", "*/*", "application/*", JSON, GRAPHQL_RESPONSE, f"text/plain, {JSON}"]
)
async def test_acceptable_media_types_are_served(
    client: httpx.AsyncClient, demo: SeedResult, accept: str | None
) -> None:
    headers = {"Authorization": f"Bearer {demo.admin_token}"}
    if accept is not None:
        headers["Accept"] = accept
    response = await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


# --- a missing token and a bad one ------------------------------------------------


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("token", [None, "okr_nope"], ids=["missing", "bad"])
@pytest.mark.parametrize("query", ["{ organization { name } }", "{ __typename viewer { scopes } }"])
async def test_a_missing_token_is_answered_like_a_bad_one(
    client: httpx.AsyncClient,
    demo: SeedResult,
    accept: str,
    method: str,
    token: str | None,
    query: str,
) -> None:
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if method == "GET":
        response = await client.get("/graphql", params={"query": query}, headers=headers)
    else:
        response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].split(";")[0] == accept
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_a_mutation_without_a_token_is_401_and_writes_nothing(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    mutation = 'mutation { createTeam(input: {name: "Nobody\'s"}) { __typename } }'
    response = await client.post("/graphql", json={"query": mutation})
    assert response.status_code == 401
    teams = "{ organization { teams(all: true, first: 50) { nodes { name } } } }"
    listed = await client.post(
        "/graphql", json={"query": teams}, headers={"Authorization": f"Bearer {demo.admin_token}"}
    )
    names = [t["name"] for t in listed.json()["data"]["organization"]["teams"]["nodes"]]
    assert "Nobody's" not in names


@pytest.mark.parametrize(
    "query",
    ["{ __typename }", "{ __schema { queryType { name } } }", '{ __type(name: "Kpi") { name } }'],
)
async def test_introspection_needs_no_token(client: httpx.AsyncClient, query: str) -> None:
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200
    assert "errors" not in response.json()
