import httpx

from okrgraph.domain.seed import SeedResult

QUERY = "{ organization { name slug } viewer { person { email orgRole } scopes } }"


async def test_organization_and_viewer(client: httpx.AsyncClient, demo: SeedResult) -> None:
    response = await client.post(
        "/graphql",
        json={"query": QUERY},
        headers={"Authorization": f"Bearer {demo.admin_token}"},
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["organization"] == {"name": "Acme Rockets", "slug": "demo"}
    assert data["viewer"]["person"] == {"email": "ada@acme.example", "orgRole": "ADMIN"}
    assert data["viewer"]["scopes"] == ["admin", "read", "write"]


async def test_bad_token_is_refused(client: httpx.AsyncClient, demo: SeedResult) -> None:
    response = await client.post(
        "/graphql", json={"query": QUERY}, headers={"Authorization": "Bearer okr_nope"}
    )
    assert response.status_code == 401


async def test_no_token_gets_no_data(client: httpx.AsyncClient, demo: SeedResult) -> None:
    response = await client.post("/graphql", json={"query": QUERY})
    assert response.status_code == 401  # as for a bad token (tests/api/test_http_clients.py)
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}
