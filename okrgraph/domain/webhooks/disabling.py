"""An endpoint disabled by the sender after repeated failure (delivery.py says when):
the audit log records it as the system's doing and every active admin is told
(`notify`: in the inbox, and by e-mail by default, as their preferences say)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.models import Person, WebhookEndpoint
from okrgraph.domain.models.enums import NotificationKind, OrgRole, SubjectType
from okrgraph.domain.notifications.notify import Note, notify


async def disable_endpoint(
    session: AsyncSession,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    failures: int,
    at: datetime,
) -> bool:
    """Disable the endpoint if still enabled (one concurrent caller wins); whether
    this call did, having then audited it and notified the admins."""
    url = await session.scalar(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.org_id == org_id,
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.enabled,
        )
        .values(enabled=False, disabled_at=at)
        .returning(WebhookEndpoint.url)
    )
    if url is None:
        return False
    record_audit(
        session,
        system_principal(org_id),
        "webhook_endpoint.disabled",
        SubjectType.WEBHOOK_ENDPOINT,
        endpoint_id,
        {"enabled": False, "reason": "repeated delivery failures", "failure_count": failures},
        at=at,
    )
    await notify(
        session,
        org_id,
        await _admins(session, org_id),
        Note(
            kind=NotificationKind.WEBHOOK_ENDPOINT_DISABLED,
            title="A webhook endpoint was disabled",
            text=(
                f"Deliveries to {url} failed {failures} times in a row, the last ones "
                "for over a day, so it was disabled. Fix the receiver, then enable it "
                "again (its pending deliveries resume)."
            ),
            dedup_key=f"webhook_endpoint.disabled:{endpoint_id}:{at.isoformat()}",
            subject_type=SubjectType.WEBHOOK_ENDPOINT,
            subject_id=endpoint_id,
        ),
    )
    await session.flush()
    return True


async def _admins(session: AsyncSession, org_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Person.id).where(Person.org_id == org_id, Person.org_role == OrgRole.ADMIN)
    )
    return list(rows)
