"""An endpoint disabled by the sender after repeated failure (delivery.py says when):
the audit log records it as the system's doing and every admin gets an in-app
notification, unless they turned that kind off."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.models import Notification, NotificationPreference, Person, WebhookEndpoint
from okrgraph.domain.models.enums import Channel, NotificationKind, OrgRole, SubjectType

KIND = NotificationKind.WEBHOOK_ENDPOINT_DISABLED


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
    for person_id in await _admins_to_notify(session, org_id):
        session.add(
            Notification(
                org_id=org_id,
                person_id=person_id,
                kind=KIND,
                title="A webhook endpoint was disabled",
                body=(
                    f"Deliveries to {url} failed {failures} times in a row, the last ones "
                    "for over a day, so it was disabled. Fix the receiver, then enable it "
                    "again (its pending deliveries resume)."
                ),
                subject_type=SubjectType.WEBHOOK_ENDPOINT,
                subject_id=endpoint_id,
                dedup_key=f"webhook_endpoint.disabled:{endpoint_id}:{at.isoformat()}",
                created_at=at,
            )
        )
    await session.flush()
    return True


async def _admins_to_notify(session: AsyncSession, org_id: uuid.UUID) -> list[uuid.UUID]:
    """The organisation's active admins, but those who turned this kind off in-app."""
    turned_off = select(NotificationPreference.person_id).where(
        NotificationPreference.org_id == org_id,
        NotificationPreference.kind == KIND,
        NotificationPreference.channel == Channel.IN_APP,
        NotificationPreference.enabled.is_(False),
    )
    rows = await session.scalars(
        select(Person.id).where(
            and_(
                Person.org_id == org_id,
                Person.org_role == OrgRole.ADMIN,
                Person.archived_at.is_(None),
                Person.id.not_in(turned_off),
            )
        )
    )
    return list(rows)
