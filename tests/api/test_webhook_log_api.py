"""The webhook delivery log, redelivery and the URL policy over GraphQL (issue 8):
admins read every attempt in batches; redeliverWebhook queues the same event
again and asks for a delivery run; endpoint URLs to non-public addresses are
refused with URL_NOT_ALLOWED unless the organisation allows them."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import AuditEntry, Organization, WebhookDelivery, WebhookEndpoint
from okrgraph.domain.models.enums import DeliveryStatus, OrgRole
from okrgraph.domain.outbox.jobs import DELIVER_WEBHOOKS
from okrgraph.domain.seed import SeedResult
from tests.api.roles import Cast, cast, column, count, other_org
from tests.api.test_query_counts import counted, table_of
from tests.api.test_webhooks_api import call, gid
from tests.factories import (
    make_org,
    make_outbox_event,
    make_token,
    make_webhook_attempt,
    make_webhook_delivery,
    make_webhook_endpoint,
)
from tests.gql import data, gql

LOG = """query($first: Int, $after: String) { webhookEndpoints(first: 20) { nodes {
  url
  deliveries(first: 20) { nodes {
    id eventId eventType status attempts payload
    attemptsLog(first: $first, after: $after) {
      nodes { attempt startedAt durationMs responseStatus error responseExcerpt }
      pageInfo { hasNextPage endCursor }
    }
  } }
} } }"""
WHOLE_LOG = """{ webhookEndpoints(first: 20) { nodes {
  deliveries(first: 20) { nodes { eventId attemptsLog(first: 10) { nodes { attempt error } } } }
} } }"""
REDELIVER = """mutation($id: ID!) { redeliverWebhook(id: $id) {
  __typename
  ... on WebhookDeliverySuccess { delivery { id status attempts nextAttemptAt deliveredAt } }
  ... on UserError { code message }
} }"""
CREATE = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url}) {
  __typename
  ... on WebhookSecretSuccess { endpoint { url } }
  ... on UserError { code message }
  ... on ValidationError { field }
} }"""
UPDATE = """mutation($id: ID!, $url: String!) { updateWebhookEndpoint(input: {id: $id, url: $url}) {
  __typename ... on UserError { code } ... on ValidationError { field }
} }"""
POLICY = """mutation($allow: Boolean!) { setWebhookPolicy(allowPrivateUrls: $allow) {
  __typename
  ... on WebhookPolicySuccess { organization { allowPrivateWebhookUrls } }
  ... on UserError { code }
} }"""
NON_ADMINS = ["lead", "member", "viewer", "read_only_admin", "integration"]

# Every one of these is, or resolves to, a non-public address, or does not resolve.
REFUSED_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://0x7f.0.0.1/",  # and in hex
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.10/",
    "http://100.64.0.1/",  # shared (carrier-grade NAT)
    "http://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "https://hooks.example.test/okr",  # `.test` never resolves
]
PUBLIC_URL = "https://93.184.215.14/okr"


@pytest.fixture
async def people(db: AsyncSession, demo: SeedResult) -> Cast:
    assert demo.admin_token is not None
    return await cast(db, demo.org_id, demo.admin_token)


@pytest.fixture
async def guarded(db: AsyncSession) -> tuple[uuid.UUID, str]:
    """An organisation that does not allow private URLs (the default) and its admin."""
    return await other_org(db)


@pytest.fixture
async def arq_pool(servers: Any) -> AsyncIterator[ArqRedis]:
    """A Redis database of its own (1..15), emptied before and after."""
    url = make_url(servers.redis_url).set(database=str(random.randint(1, 15)))
    pool = await create_pool(RedisSettings.from_dsn(url.render_as_string(hide_password=False)))
    await pool.flushdb()
    yield pool
    await pool.flushdb()
    await pool.aclose()


async def test_admins_read_every_attempt_of_a_delivery(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    endpoint = await make_webhook_endpoint(db, people.org_id, url="https://log.example.test")
    body = {"type": "kpi.measured", "timestamp": "2026-12-07T12:00:00+00:00", "data": {"v": 1}}
    event = await make_outbox_event(db, people.org_id, type="kpi.measured")
    delivery = await make_webhook_delivery(
        db,
        people.org_id,
        endpoint_id=endpoint.id,
        event_id=event.id,
        event_type="kpi.measured",
        payload=body,
        status=DeliveryStatus.FAILED,
        attempts=3,
    )
    start = datetime(2026, 12, 7, 12, tzinfo=UTC)
    for attempt, status, error in [(3, None, "timed out"), (1, 500, "HTTP 500"), (2, 503, None)]:
        await make_webhook_attempt(
            db,
            people.org_id,
            delivery_id=delivery.id,
            attempt=attempt,
            started_at=start + timedelta(minutes=attempt),
            duration_ms=100 * attempt,
            response_status=status,
            error=error,
            response_excerpt="busy" if status else "",
        )
    admin = people.tokens["admin"]
    first_page = await data(client, admin, LOG, first=2)
    [found] = [
        e for e in first_page["webhookEndpoints"]["nodes"] if e["url"].startswith("https://log")
    ]
    [shown] = found["deliveries"]["nodes"]
    assert shown["id"] == gid("WebhookDelivery", delivery.id)
    assert shown["eventId"] == str(event.id)  # the receivers' dedup key
    assert json.loads(shown["payload"]) == body
    log = shown["attemptsLog"]
    assert [a["attempt"] for a in log["nodes"]] == [1, 2]
    assert log["nodes"][0] == {
        "attempt": 1,
        "startedAt": (start + timedelta(minutes=1)).isoformat(),
        "durationMs": 100,
        "responseStatus": 500,
        "error": "HTTP 500",
        "responseExcerpt": "busy",
    }
    assert log["pageInfo"]["hasNextPage"] is True
    rest = await data(client, admin, LOG, first=2, after=log["pageInfo"]["endCursor"])
    [found] = [e for e in rest["webhookEndpoints"]["nodes"] if e["url"].startswith("https://log")]
    [last] = found["deliveries"]["nodes"][0]["attemptsLog"]["nodes"]
    assert (last["attempt"], last["responseStatus"], last["error"]) == (3, None, "timed out")


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_non_admins_see_no_delivery(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    await set_tenant(db, people.org_id)
    delivery = await make_webhook_delivery(db, people.org_id)
    await make_webhook_attempt(db, people.org_id, delivery_id=delivery.id)
    node = await data(
        client,
        people.tokens[role],
        "query($id: ID!) { node(id: $id) { ... on WebhookDelivery { payload } } }",
        id=gid("WebhookDelivery", delivery.id),
    )
    assert node["node"] is None


async def build_log(db: AsyncSession, endpoints: int, deliveries: int, attempts: int) -> str:
    """An organisation with endpoints x deliveries x attempts; its admin's token."""
    org = await make_org(db)
    await set_tenant(db, org.id)
    _, token = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read", "write", "admin"])
    for _ in range(endpoints):
        endpoint = await make_webhook_endpoint(db, org.id)
        for _ in range(deliveries):
            delivery = await make_webhook_delivery(db, org.id, endpoint_id=endpoint.id)
            for n in range(1, attempts + 1):
                await make_webhook_attempt(db, org.id, delivery_id=delivery.id, attempt=n)
    return token


async def test_the_log_statements_do_not_grow_with_the_log(
    client: httpx.AsyncClient,
    db: AsyncSession,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = await build_log(db, endpoints=1, deliveries=1, attempts=1)
    large = await build_log(db, endpoints=4, deliveries=5, attempts=6)
    small_result, small_sql = await counted(client, app_engine, monkeypatch, small, WHOLE_LOG)
    large_result, large_sql = await counted(client, app_engine, monkeypatch, large, WHOLE_LOG)

    def attempts(result: dict[str, Any]) -> int:
        endpoints = result["webhookEndpoints"]["nodes"]
        deliveries = [d for e in endpoints for d in e["deliveries"]["nodes"]]
        return sum(len(d["attemptsLog"]["nodes"]) for d in deliveries)

    assert (attempts(small_result), attempts(large_result)) == (1, 4 * 5 * 6)
    expected = ["webhook_attempts", "webhook_deliveries", "webhook_endpoints"]
    assert sorted(map(table_of, small_sql)) == expected, "\n\n".join(small_sql)
    assert sorted(map(table_of, large_sql)) == expected, "\n\n".join(large_sql)


async def test_an_admin_redelivers_a_delivery_that_gave_up(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    people: Cast,
    arq_pool: ArqRedis,
) -> None:
    await set_tenant(db, people.org_id)
    delivery = await make_webhook_delivery(
        db,
        people.org_id,
        status=DeliveryStatus.GAVE_UP,
        attempts=9,
        response_status=500,
        last_error="HTTP 500",
    )
    before = datetime.now(UTC)
    app = create_app(sessionmaker=sessionmaker, queue=arq_pool)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            result = await call(
                client,
                people.tokens["admin"],
                REDELIVER,
                "redeliverWebhook",
                id=gid("WebhookDelivery", delivery.id),
            )
    shown = result["delivery"]
    assert (shown["status"], shown["attempts"], shown["deliveredAt"]) == ("PENDING", 9, None)
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(shown["nextAttemptAt"])
    assert datetime.fromisoformat(shown["nextAttemptAt"]) <= datetime.now(UTC)
    queued = await arq_pool.queued_jobs()
    assert [(j.function, j.kwargs["org_id"]) for j in queued] == [
        (DELIVER_WEBHOOKS, str(people.org_id))
    ]
    [entry] = (
        await db.execute(
            select(AuditEntry).where(AuditEntry.action == "webhook_delivery.redelivered")
        )
    ).scalars()
    assert entry.subject_id == delivery.endpoint_id
    assert entry.changes == {
        "delivery_id": str(delivery.id),
        "event_id": str(delivery.event_id),
        "was": "GAVE_UP",
    }


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admins_redeliver(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    await set_tenant(db, people.org_id)
    delivery = await make_webhook_delivery(db, people.org_id, status=DeliveryStatus.GAVE_UP)
    id = gid("WebhookDelivery", delivery.id)
    result = await call(client, people.tokens[role], REDELIVER, "redeliverWebhook", id=id)
    assert result["__typename"] == "Forbidden"
    where = WebhookDelivery.id == delivery.id
    assert await column(db, people.org_id, WebhookDelivery.status, where) is DeliveryStatus.GAVE_UP


async def test_no_redelivery_to_a_disabled_endpoint_or_another_organisation(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    endpoint = await make_webhook_endpoint(db, people.org_id, enabled=False)
    delivery = await make_webhook_delivery(
        db, people.org_id, endpoint_id=endpoint.id, status=DeliveryStatus.GAVE_UP
    )
    id = gid("WebhookDelivery", delivery.id)
    refused = await call(client, people.tokens["admin"], REDELIVER, "redeliverWebhook", id=id)
    assert (refused["__typename"], refused["code"]) == ("Conflict", "ENDPOINT_DISABLED")
    _, attacker = await other_org(db)
    foreign = await call(client, attacker, REDELIVER, "redeliverWebhook", id=id)
    assert (foreign["__typename"], foreign["code"]) == ("NotFound", "NOT_FOUND")
    where = WebhookDelivery.id == delivery.id
    assert await column(db, people.org_id, WebhookDelivery.status, where) is DeliveryStatus.GAVE_UP


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_urls_to_private_addresses_are_refused(
    client: httpx.AsyncClient, db: AsyncSession, guarded: tuple[uuid.UUID, str], url: str
) -> None:
    org_id, admin = guarded
    result = await gql(client, admin, CREATE, url=url)
    created = result["data"]["createWebhookEndpoint"]
    assert (created["__typename"], created["field"]) == ("ValidationError", "input.url"), created
    assert created["code"] == "URL_NOT_ALLOWED"
    assert await count(db, org_id, WebhookEndpoint) == 0


async def test_a_public_address_is_allowed_and_an_update_is_checked_too(
    client: httpx.AsyncClient, db: AsyncSession, guarded: tuple[uuid.UUID, str]
) -> None:
    org_id, admin = guarded
    created = await call(client, admin, CREATE, "createWebhookEndpoint", url=PUBLIC_URL)
    assert created["endpoint"]["url"] == PUBLIC_URL
    await set_tenant(db, org_id)
    endpoint_id = (await db.execute(select(WebhookEndpoint.id))).scalar_one()
    id = gid("WebhookEndpoint", endpoint_id)
    moved = await call(
        client, admin, UPDATE, "updateWebhookEndpoint", id=id, url="http://127.0.0.1/x"
    )
    assert (moved["__typename"], moved["code"], moved["field"]) == (
        "ValidationError",
        "URL_NOT_ALLOWED",
        "input.url",
    )
    assert await column(db, org_id, WebhookEndpoint.url, WebhookEndpoint.id == endpoint_id) == (
        PUBLIC_URL
    )


async def test_an_organisation_that_allows_private_urls_takes_loopback(
    client: httpx.AsyncClient, db: AsyncSession, guarded: tuple[uuid.UUID, str]
) -> None:
    org_id, admin = guarded
    allowed = await call(client, admin, POLICY, "setWebhookPolicy", allow=True)
    assert allowed["organization"] == {"allowPrivateWebhookUrls": True}
    created = await call(
        client, admin, CREATE, "createWebhookEndpoint", url="http://127.0.0.1:9/hook"
    )
    assert created["__typename"] == "WebhookSecretSuccess"
    await set_tenant(db, org_id)
    [entry] = (
        await db.execute(
            select(AuditEntry).where(AuditEntry.action == "organization.webhook_policy_changed")
        )
    ).scalars()
    assert (entry.subject_id, entry.changes) == (org_id, {"allow_private_webhook_urls": True})
    refused_again = await call(client, admin, POLICY, "setWebhookPolicy", allow=False)
    assert refused_again["organization"] == {"allowPrivateWebhookUrls": False}
    created = await call(client, admin, CREATE, "createWebhookEndpoint", url="http://127.0.0.1/")
    assert created["code"] == "URL_NOT_ALLOWED"


async def test_the_demo_organisation_allows_private_urls(
    db: AsyncSession, demo: SeedResult
) -> None:
    await set_tenant(db, demo.org_id)
    allowed = await column(db, demo.org_id, Organization.allow_private_webhook_urls)
    assert allowed is True


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admins_read_and_set_the_policy(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    token = people.tokens[role]
    refused = await call(client, token, POLICY, "setWebhookPolicy", allow=False)
    assert refused["__typename"] == "Forbidden"
    read = await gql(client, token, "{ organization { name allowPrivateWebhookUrls } }")
    assert read["data"]["organization"]["allowPrivateWebhookUrls"] is None
    assert read["data"]["organization"]["name"]
    assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await column(db, people.org_id, Organization.allow_private_webhook_urls) is True
    admin = await data(
        client, people.tokens["admin"], "{ organization { allowPrivateWebhookUrls } }"
    )
    assert admin["organization"]["allowPrivateWebhookUrls"] is True
