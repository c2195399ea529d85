"""Redelivering a webhook (admins): the same event, with the same `webhook-id`, sent
again now, whatever became of it before (delivered, failing, given up)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import Conflict, ErrorCode
from okrgraph.domain.lookup import get_row
from okrgraph.domain.models import WebhookDelivery, WebhookEndpoint
from okrgraph.domain.models.enums import DeliveryStatus, SubjectType
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.outbox.jobs import Delivery


async def redeliver_webhook(
    session: AsyncSession, principal: Principal, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Put the delivery back in the queue, due now, and ask for a delivery run once
    this commits. Its attempt count and log stay: the next attempt is numbered on
    from them. Refused (ENDPOINT_DISABLED) while its endpoint is disabled."""
    require_admin(principal)
    delivery = await get_row(session, WebhookDelivery, delivery_id, for_update=True)
    endpoint = await get_row(session, WebhookEndpoint, delivery.endpoint_id)
    if not endpoint.enabled:
        raise Conflict(
            "The endpoint is disabled; enable it (updateWebhookEndpoint) to redeliver.",
            ErrorCode.ENDPOINT_DISABLED,
        )
    now = clock.now()
    previous = delivery.status
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.delivered_at = None
    await session.flush()
    record_audit(
        session,
        principal,
        "webhook_delivery.redelivered",
        SubjectType.WEBHOOK_ENDPOINT,
        endpoint.id,
        {"delivery_id": delivery.id, "event_id": delivery.event_id, "was": previous.value},
        at=now,
    )
    AfterCommit.of(session).request(Delivery(principal.org_id))
    return delivery
