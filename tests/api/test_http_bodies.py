"""Malformed GraphQL-over-HTTP requests, over POST and GET: a 400 with a
GraphQL-shaped error, never a 500 or a traceback (issue 12, finding 9)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from okrgraph.api.graphql import MAX_JSON_DEPTH
from okrgraph.domain.seed import SeedResult

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
QUERY = "query($v: String!) { __type(name: $v) { name } }"


def nested(depth: int) -> str:
    """A JSON array `depth` levels deep."""
    return "[" * depth + "]" * depth


# POST bodies: (id, raw body)
BODIES: list[tuple[str, str | bytes]] = [
    ("null", "null"),
    ("a number", "123"),
    ("a string", '"x"'),
    ("true", "true"),
    ("an empty array", "[]"),
    ("a batch", json.dumps([{"query": "{ __typename }"}])),
    ("query a number", '{"query": 1}'),
    ("query an object", '{"query": {"a": 1}}'),
    ("query a list", '{"query": ["{ __typename }"]}'),
    ("variables a string", json.dumps({"query": QUERY, "variables": "{}"})),
    ("variables a list", json.dumps({"query": QUERY, "variables": []})),
    ("variables a number", json.dumps({"query": QUERY, "variables": 5})),
    ("operationName a number", json.dumps({"query": QUERY, "operationName": 5})),
    ("operationName an object", json.dumps({"query": QUERY, "operationName": {}})),
    ("operationName a list", json.dumps({"query": QUERY, "operationName": ["a"]})),
    ("extensions a string", json.dumps({"query": QUERY, "extensions": "x"})),
    ("extensions a list", json.dumps({"query": QUERY, "extensions": [1]})),
    ("variables 1,000 deep", f'{{"query": "{QUERY}", "variables": {{"v": {nested(1000)}}}}}'),
    ("variables 100,000 deep", f'{{"query": "{QUERY}", "variables": {{"v": {nested(100_000)}}}}}'),
    (
        "variables one past the bound",
        f'{{"query": "{QUERY}", "variables": {{"v": {nested(MAX_JSON_DEPTH - 1)}}}}}',
    ),
    ("extensions 1,000 deep", f'{{"query": "{QUERY}", "extensions": {{"e": {nested(1000)}}}}}'),
    ("a body 1,000 deep", nested(1000)),
    ("not JSON", '{"query": '),
    ("not UTF-8", b'{"query": "\xff"}'),
    ("a lone surrogate", '{"query": "\\ud800"}'),
]
# GET parameters: (id, params)
PARAMS: list[tuple[str, dict[str, str]]] = [
    ("no query", {}),
    ("variables null-ish junk", {"query": QUERY, "variables": "nul"}),
    ("variables a number", {"query": QUERY, "variables": "123"}),
    ("variables a string", {"query": QUERY, "variables": '"x"'}),
    ("variables a list", {"query": QUERY, "variables": "[1]"}),
    ("variables 1,000 deep", {"query": QUERY, "variables": f'{{"v": {nested(1000)}}}'}),
    (
        "variables past the bound",
        {"query": QUERY, "variables": f'{{"v": {nested(MAX_JSON_DEPTH)}}}'},
    ),
    ("extensions a number", {"query": QUERY, "extensions": "5"}),
    ("extensions 1,000 deep", {"query": QUERY, "extensions": f'{{"e": {nested(1000)}}}'}),
]


def assert_graphql_400(response: httpx.Response, accept: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(accept)
    body: dict[str, Any] = response.json()
    assert set(body) == {"errors"}, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "Traceback" not in response.text
    assert "Internal" not in error["message"]


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize("body", [b for _, b in BODIES], ids=[i for i, _ in BODIES])
async def test_malformed_post_bodies_are_400(
    client: httpx.AsyncClient, demo: SeedResult, body: str | bytes, accept: str
) -> None:
    headers = {"content-type": JSON, "accept": accept}
    if demo.admin_token:
        headers["authorization"] = f"Bearer {demo.admin_token}"
    content = body if isinstance(body, bytes) else body.encode()
    response = await client.post("/graphql", content=content, headers=headers)
    assert_graphql_400(response, accept)


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize("params", [p for _, p in PARAMS], ids=[i for i, _ in PARAMS])
async def test_malformed_get_parameters_are_400(
    client: httpx.AsyncClient, demo: SeedResult, params: dict[str, str], accept: str
) -> None:
    headers = {"accept": accept, "authorization": f"Bearer {demo.admin_token}"}
    response = await client.get("/graphql", params=params, headers=headers)
    assert_graphql_400(response, accept)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_variables_at_the_depth_bound_reach_graphql(
    client: httpx.AsyncClient, demo: SeedResult, method: str
) -> None:
    """At the bound the request is GraphQL's to judge: here a list is no String."""
    headers = {"accept": GRAPHQL_RESPONSE, "authorization": f"Bearer {demo.admin_token}"}
    depth = MAX_JSON_DEPTH - 2 if method == "POST" else MAX_JSON_DEPTH - 1  # the body nests too
    variables = f'{{"v": {nested(depth)}}}'
    if method == "GET":
        response = await client.get(
            "/graphql", params={"query": QUERY, "variables": variables}, headers=headers
        )
    else:
        body = f'{{"query": "{QUERY}", "variables": {variables}}}'
        response = await client.post(
            "/graphql", content=body, headers={**headers, "content-type": JSON}
        )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert "Variable '$v'" in error["message"], error


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_well_formed_requests_still_run(
    client: httpx.AsyncClient, demo: SeedResult, method: str
) -> None:
    request: dict[str, Any] = {
        "query": QUERY,
        "variables": {"v": "Query"},
        "operationName": None,
        "extensions": {},
    }
    headers = {"accept": GRAPHQL_RESPONSE, "authorization": f"Bearer {demo.admin_token}"}
    if method == "GET":
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in request.items() if v}
        response = await client.get("/graphql", params=params, headers=headers)
    else:
        response = await client.post("/graphql", json=request, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__type": {"name": "Query"}}}
