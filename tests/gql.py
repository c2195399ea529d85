"""Calling the GraphQL endpoint from tests."""

from __future__ import annotations

from typing import Any

import httpx


async def gql(
    client: httpx.AsyncClient, token: str | None, query: str, **variables: Any
) -> dict[str, Any]:
    """POST a GraphQL request; returns the JSON body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body: dict[str, Any] = response.json()
    return body


async def data(
    client: httpx.AsyncClient, token: str | None, query: str, **variables: Any
) -> dict[str, Any]:
    """The `data` of a request that must not fail."""
    body = await gql(client, token, query, **variables)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result
