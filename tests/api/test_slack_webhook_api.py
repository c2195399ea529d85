"""setSlackWebhook over the API: an admin sets the organisation's Slack-style incoming
webhook (stored sealed, never shown: `slackWebhookConfigured` only), checked by the
webhook URL policy (URL_NOT_ALLOWED for non-public hosts unless the organisation
allows private URLs), audited by host, cleared with null; admins only."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import AuditEntry, Organization
from okrgraph.domain.notifications import slack
from okrgraph.domain.seed import SeedResult
from tests.api.roles import Cast, cast, column, other_org
from tests.api.test_webhooks_api import call
from tests.gql import data, gql

SET = """mutation($url: String) { setSlackWebhook(input: {url: $url}) {
  __typename
  ... on OrganizationSuccess { organization { slackWebhookConfigured } }
  ... on UserError { code message }
  ... on ValidationError { field }
} }"""
PUBLIC_URL = "https://93.184.215.14/services/T0001/B0002/s3cr3t"
NON_ADMINS = ["lead", "member", "viewer", "read_only_admin", "integration"]


@pytest.fixture
async def guarded(db: AsyncSession) -> tuple[uuid.UUID, str]:
    """An organisation that does not allow private URLs (the default) and its admin."""
    return await other_org(db)


async def organization(db: AsyncSession, org_id: uuid.UUID) -> Organization:
    await set_tenant(db, org_id)
    row = (await db.execute(select(Organization))).scalar_one()
    await db.refresh(row)
    return row


async def test_an_admin_sets_the_webhook_which_is_stored_sealed_and_never_shown(
    client: httpx.AsyncClient, db: AsyncSession, guarded: tuple[uuid.UUID, str]
) -> None:
    org_id, admin = guarded
    assert (await data(client, admin, "{ organization { slackWebhookConfigured } }")) == {
        "organization": {"slackWebhookConfigured": False}
    }
    result = await call(client, admin, SET, "setSlackWebhook", url=f"  {PUBLIC_URL} ")
    assert result == {
        "__typename": "OrganizationSuccess",
        "organization": {"slackWebhookConfigured": True},
    }
    org = await organization(db, org_id)
    assert org.slack_webhook_sealed is not None
    assert "s3cr3t" not in org.slack_webhook_sealed
    assert slack.webhook_url(org) == PUBLIC_URL
    [entry] = (
        await db.execute(
            select(AuditEntry).where(AuditEntry.action == "organization.slack_webhook_set")
        )
    ).scalars()
    assert (entry.subject_id, entry.changes) == (org_id, {"slack_webhook_host": "93.184.215.14"})

    cleared = await call(client, admin, SET, "setSlackWebhook", url=None)
    assert cleared["organization"] == {"slackWebhookConfigured": False}
    assert (await organization(db, org_id)).slack_webhook_sealed is None
    actions = (await db.execute(select(AuditEntry.action))).scalars().all()
    assert "organization.slack_webhook_cleared" in actions


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/x",
        "http://169.254.169.254/",
        "http://10.0.0.1/",
    ],
)
async def test_a_url_to_a_private_address_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, guarded: tuple[uuid.UUID, str], url: str
) -> None:
    org_id, admin = guarded
    result = await call(client, admin, SET, "setSlackWebhook", url=url)
    assert (result["__typename"], result["code"], result["field"]) == (
        "ValidationError",
        "URL_NOT_ALLOWED",
        "input.url",
    )
    assert (await organization(db, org_id)).slack_webhook_sealed is None


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://hooks.example/x", "INVALID_FORMAT"),
        ("https://user:pw@93.184.215.14/x", "INVALID_FORMAT"),
        ("not a url", "INVALID_FORMAT"),
        ("https://93.184.215.14/" + "x" * 2000, "TEXT_TOO_LONG"),
    ],
)
async def test_a_malformed_url_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, guarded: tuple[uuid.UUID, str], url: str, code: str
) -> None:
    org_id, admin = guarded
    result = await call(client, admin, SET, "setSlackWebhook", url=url)
    assert (result["__typename"], result["code"], result["field"]) == (
        "ValidationError",
        code,
        "input.url",
    )
    assert (await organization(db, org_id)).slack_webhook_sealed is None


async def test_an_organisation_that_allows_private_urls_takes_loopback(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    assert demo.admin_token is not None
    result = await call(
        client, demo.admin_token, SET, "setSlackWebhook", url="http://127.0.0.1:9/slack"
    )
    assert result["organization"] == {"slackWebhookConfigured": True}


@pytest.fixture
async def people(db: AsyncSession, demo: SeedResult) -> Cast:
    assert demo.admin_token is not None
    return await cast(db, demo.org_id, demo.admin_token)


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admins_set_it_or_see_whether_it_is_set(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    token = people.tokens[role]
    refused = await call(client, token, SET, "setSlackWebhook", url=PUBLIC_URL)
    assert refused["__typename"] == "Forbidden"
    assert await column(db, people.org_id, Organization.slack_webhook_sealed) is None
    read = await gql(client, token, "{ organization { name slackWebhookConfigured } }")
    assert read["data"]["organization"]["slackWebhookConfigured"] is None
    assert read["data"]["organization"]["name"]
    assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
