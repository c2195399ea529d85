"""Webhook endpoints over GraphQL: admins only, the secret shown once, the delivery
log, bad input changes nothing, another organisation sees nothing."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import WebhookEndpoint
from okrgraph.domain.models.enums import DeliveryStatus
from okrgraph.domain.seed import SeedResult
from okrgraph.domain.webhooks.catalog import signing_secret
from okrgraph.schema.node import to_global_id
from tests.api.roles import Cast, cast, column, count, other_org
from tests.factories import make_token, make_webhook_delivery, make_webhook_endpoint
from tests.gql import data, gql

ENDPOINT = "endpoint { id url description eventTypes enabled failureCount disabledAt }"
CREATE = f"""mutation($input: CreateWebhookEndpointInput!, $key: String) {{
  createWebhookEndpoint(input: $input, idempotencyKey: $key) {{
    __typename
    ... on WebhookSecretSuccess {{ secret {ENDPOINT} }}
    ... on UserError {{ message }}
    ... on ValidationError {{ field }}
  }}
}}"""
UPDATE = f"""mutation($input: UpdateWebhookEndpointInput!) {{
  updateWebhookEndpoint(input: $input) {{
    __typename
    ... on WebhookEndpointSuccess {{ {ENDPOINT} }}
    ... on UserError {{ message }}
    ... on ValidationError {{ field }}
  }}
}}"""
ROTATE = """mutation($id: ID!, $key: String) {
  rotateWebhookSecret(id: $id, idempotencyKey: $key) {
    __typename ... on WebhookSecretSuccess { secret endpoint { id } } ... on UserError { message }
  }
}"""
LIST = """query($status: DeliveryStatus) { webhookEndpoints(first: 50) { nodes {
  id url enabled
  deliveries(first: 10, status: $status) {
    nodes { eventType status attempts responseStatus lastError nextAttemptAt deliveredAt }
    pageInfo { hasNextPage } }
} } }"""

ADMIN_ONLY = ["admin", "lead", "member", "viewer", "read_only_admin", "integration"]


@pytest.fixture
async def people(db: AsyncSession, demo: SeedResult) -> Cast:
    assert demo.admin_token is not None
    return await cast(db, demo.org_id, demo.admin_token)


def gid(type_name: str, id: uuid.UUID) -> str:
    return str(to_global_id(type_name, id))


async def call(
    client: httpx.AsyncClient, token: str, query: str, name: str, **variables: Any
) -> dict[str, Any]:
    result: dict[str, Any] = (await data(client, token, query, **variables))[name]
    return result


def check_secret(secret: str) -> None:
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24


def assert_sealed(endpoint: WebhookEndpoint, secret: str) -> None:
    """Stored sealed: neither the secret nor its key part is in the column; it opens."""
    sealed = endpoint.secret_sealed
    assert sealed is not None
    assert secret not in sealed
    assert secret.removeprefix("whsec_") not in sealed
    assert signing_secret(endpoint) == secret


@pytest.mark.parametrize("role", ADMIN_ONLY)
async def test_only_admins_create_endpoints(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    before = await count(db, people.org_id, WebhookEndpoint)
    result = await call(
        client,
        people.tokens[role],
        CREATE,
        "createWebhookEndpoint",
        input={"url": "https://hooks.example.test/a", "eventTypes": ["kpi.*", "kpi.*"]},
    )
    if role != "admin":
        assert result["__typename"] == "Forbidden"
        assert await count(db, people.org_id, WebhookEndpoint) == before
        return
    assert result["__typename"] == "WebhookSecretSuccess"
    check_secret(result["secret"])
    assert result["endpoint"]["eventTypes"] == ["kpi.*"]
    assert result["endpoint"]["enabled"] is True
    [stored] = (
        await db.execute(select(WebhookEndpoint).where(WebhookEndpoint.url.endswith("/a")))
    ).scalars()
    assert_sealed(stored, result["secret"])
    assert await count(db, people.org_id, WebhookEndpoint) == before + 1


async def test_an_admin_integration_may_manage_endpoints(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    _, ops = await make_token(db, people.org_id, integration_name="ops", scopes=["admin"])
    result = await call(
        client, ops, CREATE, "createWebhookEndpoint", input={"url": "http://hooks.example.test"}
    )
    assert result["__typename"] == "WebhookSecretSuccess"


async def test_bad_endpoint_input_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    before = await count(db, people.org_id, WebhookEndpoint)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"url": "ftp://hooks.example.test"}, "input.url"),
        ({"url": "hooks.example.test/x"}, "input.url"),
        ({"url": "https://"}, "input.url"),
        ({"url": "javascript:alert(1)"}, "input.url"),
        ({"url": "https://user:pw@hooks.example.test"}, "input.url"),
        ({"url": "https://hooks.example.test/a b"}, "input.url"),
        ({"url": "https://h.example.test/" + "x" * 2000}, "input.url"),
        ({"url": "https://h.example.test", "eventTypes": ["Kpi Measured"]}, "input.eventTypes.0"),
        ({"url": "https://h.example.test", "eventTypes": ["ok", "x" * 65]}, "input.eventTypes.1"),
        (
            {"url": "https://h.example.test", "eventTypes": [f"e{i}" for i in range(51)]},
            "input.eventTypes",
        ),
        ({"url": "https://h.example.test", "description": "d" * 2001}, "input.description"),
    ]
    for input, field in cases:
        result = await call(
            client, people.tokens["admin"], CREATE, "createWebhookEndpoint", input=input
        )
        assert result["__typename"] == "ValidationError", (input, result)
        assert result["field"] == field
    assert await count(db, people.org_id, WebhookEndpoint) == before


async def test_create_is_idempotent_and_the_replay_has_no_secret(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    before = await count(db, people.org_id, WebhookEndpoint)
    input = {"url": "https://hooks.example.test/once"}
    first = await call(
        client, people.tokens["admin"], CREATE, "createWebhookEndpoint", input=input, key="w1"
    )
    again = await call(
        client, people.tokens["admin"], CREATE, "createWebhookEndpoint", input=input, key="w1"
    )
    check_secret(first["secret"])
    assert again["secret"] is None
    assert again["endpoint"] == first["endpoint"]
    assert await count(db, people.org_id, WebhookEndpoint) == before + 1


@pytest.mark.parametrize("role", ADMIN_ONLY)
async def test_only_admins_update_endpoints(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    await set_tenant(db, people.org_id)
    endpoint = await make_webhook_endpoint(db, people.org_id, url="https://old.example.test")
    result = await call(
        client,
        people.tokens[role],
        UPDATE,
        "updateWebhookEndpoint",
        input={"id": gid("WebhookEndpoint", endpoint.id), "url": "https://new.example.test"},
    )
    url = await column(db, people.org_id, WebhookEndpoint.url, WebhookEndpoint.id == endpoint.id)
    if role == "admin":
        assert result["__typename"] == "WebhookEndpointSuccess"
        assert url == "https://new.example.test"
    else:
        assert result["__typename"] == "Forbidden"
        assert url == "https://old.example.test"


async def test_disable_and_enable(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    endpoint = await make_webhook_endpoint(
        db, people.org_id, enabled=False, failure_count=7, disabled_at=datetime.now(UTC)
    )
    id = gid("WebhookEndpoint", endpoint.id)
    admin = people.tokens["admin"]
    enabled = await call(
        client, admin, UPDATE, "updateWebhookEndpoint", input={"id": id, "enabled": True}
    )
    assert enabled["endpoint"]["enabled"] is True
    assert enabled["endpoint"]["failureCount"] == 0
    assert enabled["endpoint"]["disabledAt"] is None
    disabled = await call(
        client,
        admin,
        UPDATE,
        "updateWebhookEndpoint",
        input={"id": id, "enabled": False, "eventTypes": []},
    )
    assert disabled["endpoint"]["enabled"] is False
    assert disabled["endpoint"]["disabledAt"] is not None
    assert disabled["endpoint"]["eventTypes"] == []
    bad = await call(
        client, admin, UPDATE, "updateWebhookEndpoint", input={"id": id, "url": "gopher://x"}
    )
    assert bad["__typename"] == "ValidationError"
    assert (
        await column(db, people.org_id, WebhookEndpoint.enabled, WebhookEndpoint.id == endpoint.id)
        is False
    )


@pytest.mark.parametrize("role", ADMIN_ONLY)
async def test_only_admins_rotate_secrets(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    await set_tenant(db, people.org_id)
    endpoint = await make_webhook_endpoint(db, people.org_id, secret="whsec_old")
    id = gid("WebhookEndpoint", endpoint.id)
    result = await call(client, people.tokens[role], ROTATE, "rotateWebhookSecret", id=id)
    await db.refresh(endpoint)
    if role == "admin":
        check_secret(result["secret"])
        assert_sealed(endpoint, result["secret"])
    else:
        assert result["__typename"] == "Forbidden"
        assert_sealed(endpoint, "whsec_old")


async def test_admins_read_endpoints_with_their_delivery_log(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    endpoint = await make_webhook_endpoint(db, people.org_id, url="https://log.example.test")
    for status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.FAILED):
        await make_webhook_delivery(
            db,
            people.org_id,
            endpoint_id=endpoint.id,
            status=status,
            attempts=2,
            response_status=500 if status is DeliveryStatus.FAILED else 204,
            last_error="HTTP 500" if status is DeliveryStatus.FAILED else None,
        )
    listed = await data(client, people.tokens["admin"], LIST)
    [found] = [e for e in listed["webhookEndpoints"]["nodes"] if e["url"].startswith("https://log")]
    deliveries = found["deliveries"]["nodes"]
    assert len(deliveries) == 3
    assert sorted(d["responseStatus"] for d in deliveries) == [204, 500, 500]
    assert {d["nextAttemptAt"] is None for d in deliveries if d["status"] == "SUCCEEDED"} == {True}
    failed = await data(client, people.tokens["admin"], LIST, status="FAILED")
    [found] = [e for e in failed["webhookEndpoints"]["nodes"] if e["url"].startswith("https://log")]
    assert [d["lastError"] for d in found["deliveries"]["nodes"]] == ["HTTP 500", "HTTP 500"]
    assert "secret" not in str(listed).lower()


@pytest.mark.parametrize("role", ["lead", "member", "viewer", "read_only_admin", "integration"])
async def test_non_admins_cannot_read_endpoints(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    await set_tenant(db, people.org_id)
    endpoint = await make_webhook_endpoint(db, people.org_id)
    body = await gql(client, people.tokens[role], LIST)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = await data(
        client,
        people.tokens[role],
        "query($id: ID!) { node(id: $id) { id } }",
        id=gid("WebhookEndpoint", endpoint.id),
    )
    assert node["node"] is None


async def test_another_org_cannot_touch_our_endpoints(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    ours = await make_webhook_endpoint(db, people.org_id, url="https://ours.example.test")
    id = gid("WebhookEndpoint", ours.id)
    _, attacker = await other_org(db)
    update = await call(
        client,
        attacker,
        UPDATE,
        "updateWebhookEndpoint",
        input={"id": id, "url": "https://evil.example.test", "enabled": False},
    )
    assert update["__typename"] == "NotFound"
    rotate = await call(client, attacker, ROTATE, "rotateWebhookSecret", id=id)
    assert rotate["__typename"] == "NotFound"
    listed = await data(client, attacker, LIST)
    assert listed["webhookEndpoints"]["nodes"] == []
    node = await data(client, attacker, "query($id: ID!) { node(id: $id) { id } }", id=id)
    assert node["node"] is None
    await set_tenant(db, people.org_id)
    assert (
        await column(db, people.org_id, WebhookEndpoint.url, WebhookEndpoint.id == ours.id)
        == "https://ours.example.test"
    )
    assert (
        await column(
            db, people.org_id, WebhookEndpoint.secret_sealed, WebhookEndpoint.id == ours.id
        )
        == ours.secret_sealed
    )


async def test_a_replayed_rotation_rotates_once(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    endpoint = await make_webhook_endpoint(db, people.org_id)
    id = gid("WebhookEndpoint", endpoint.id)
    admin = people.tokens["admin"]
    first = await call(client, admin, ROTATE, "rotateWebhookSecret", id=id, key="r1")
    again = await call(client, admin, ROTATE, "rotateWebhookSecret", id=id, key="r1")
    check_secret(first["secret"])
    assert again["secret"] is None
    await db.refresh(endpoint)
    assert_sealed(endpoint, first["secret"])
