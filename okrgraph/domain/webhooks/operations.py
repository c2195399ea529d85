"""Key rotation for operators (`okr webhooks reseal`), outside any request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import Organization, WebhookEndpoint
from okrgraph.domain.outbox.service import all_org_ids
from okrgraph.domain.webhooks.secrets import Keyring, SecretUnreadable


@dataclass
class Resealed:
    resealed: int = 0  # now under the newest key
    current: int = 0  # already were
    unreadable: list[uuid.UUID] = field(default_factory=list)  # no key opens them: rotate


async def reseal_org(session: AsyncSession, org_id: uuid.UUID, ring: Keyring) -> Resealed:
    """Seal every secret of the transaction's organisation under the newest key (its
    endpoints' signing secrets and its Slack webhook URL)."""
    out = Resealed()
    rows = await session.execute(
        select(WebhookEndpoint).where(WebhookEndpoint.secret_sealed.is_not(None)).with_for_update()
    )
    for endpoint in rows.scalars():
        sealed = endpoint.secret_sealed
        assert sealed is not None
        if ring.is_current(sealed):
            out.current += 1
            continue
        try:
            secret = ring.open(sealed, endpoint.org_id, endpoint.id)
        except SecretUnreadable:
            out.unreadable.append(endpoint.id)
            continue
        endpoint.secret_sealed = ring.seal(secret, endpoint.org_id, endpoint.id)
        out.resealed += 1
    await _reseal_slack_webhook(session, org_id, ring, out)
    await session.flush()
    return out


async def _reseal_slack_webhook(
    session: AsyncSession, org_id: uuid.UUID, ring: Keyring, out: Resealed
) -> None:
    """The organisation's Slack webhook URL (notifications/slack.py), sealed the same way;
    unreadable: the organisation's id is listed (set the webhook again)."""
    organization = await session.get(Organization, org_id, with_for_update=True)
    sealed = organization.slack_webhook_sealed if organization else None
    if organization is None or sealed is None:
        return
    if ring.is_current(sealed):
        out.current += 1
        return
    try:
        url = ring.open(sealed, org_id, org_id)
    except SecretUnreadable:
        out.unreadable.append(org_id)
        return
    organization.slack_webhook_sealed = ring.seal(url, org_id, org_id)
    out.resealed += 1


async def reseal_all(sessionmaker: async_sessionmaker[AsyncSession], ring: Keyring) -> Resealed:
    """Every organisation, one transaction each; safe to run again."""
    async with sessionmaker() as session:
        org_ids = await all_org_ids(session)
    total = Resealed()
    for org_id in org_ids:
        async with tenant_session(sessionmaker, org_id) as session:
            part = await reseal_org(session, org_id, ring)
        total.resealed += part.resealed
        total.current += part.current
        total.unreadable.extend(part.unreadable)
    return total
