"""Events to webhook deliveries: the outbox's `webhooks` consumer.

The dispatcher claims the organisation's new events (outbox/consumers.py) and,
in the same transaction, writes one PENDING delivery per event and per enabled
endpoint that asks for its type and existed when the event was recorded (a new
endpoint does not receive history). The unique (endpoint, event) key makes a
second dispatch of one event a no-op; the sender (delivery.py) does the HTTP
after commit, asked for through the `Delivery` follow-up.

What a receiver gets (docs/webhooks.md documents every type):

    {"type": "checkin.created", "timestamp": "2026-12-07T10:00:00+00:00",
     "data": {...the event's payload, without the pipeline's own keys...}}

signed per the Standard Webhooks specification, with the event's id as the
`webhook-id`. The same claim announces the events, with that `data`, to the
organisation's live event stream after commit (`EventsRecorded`): once per event,
oldest first, whether or not any endpoint wants them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.messages import EventsRecorded, RecordedEvent
from okrgraph.domain.models import WebhookEndpoint
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.outbox.consumers import WEBHOOKS, Event, claim_events
from okrgraph.domain.outbox.jobs import Delivery

# Keys of a payload that are the pipeline's bookkeeping, not the event's news.
_INTERNAL_KEYS = frozenset({"recalc"})


@dataclass(frozen=True, slots=True)
class Dispatched:
    events: int = 0
    deliveries: int = 0


def wants(event_types: list[str], event_type: str) -> bool:
    """An endpoint's filter: names (`kpi.measured`), `prefix.*`, `*`; empty = every event."""
    if not event_types:
        return True
    for wanted in event_types:
        if wanted in ("*", event_type):
            return True
        if wanted.endswith(".*") and event_type.startswith(wanted[:-1]):
            return True
    return False


def envelope(event: Event) -> dict[str, Any]:
    """The JSON body every endpoint receives for `event`."""
    data = {k: v for k, v in event.payload.items() if k not in _INTERNAL_KEYS}
    if event.subject_type is not None and event.subject_id is not None:
        data.setdefault("subject", {"type": event.subject_type.value, "id": str(event.subject_id)})
    return {"type": event.type, "timestamp": event.created_at.isoformat(), "data": data}


async def dispatch_events(session: AsyncSession, org_id: uuid.UUID) -> Dispatched:
    """Claim the organisation's undispatched events and write their deliveries."""
    events = await claim_events(session, org_id, WEBHOOKS)
    if not events:
        return Dispatched()
    AfterCommit.of(session).announce(_recorded(org_id, events))
    endpoints = (
        await session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.org_id == org_id, WebhookEndpoint.enabled.is_(True)
            )
        )
    ).all()
    rows = [
        (endpoint.id, event)
        for event in events
        for endpoint in endpoints
        if endpoint.created_at <= event.created_at and wants(endpoint.event_types, event.type)
    ]
    if not rows:
        return Dispatched(events=len(events))
    inserted = await session.execute(
        text(
            """
            INSERT INTO webhook_deliveries
                (org_id, id, endpoint_id, event_id, event_type, payload, status)
            SELECT CAST(:org AS uuid), gen_random_uuid(), d.endpoint_id, d.event_id,
                   d.event_type, d.payload, 'PENDING'
            FROM unnest(CAST(:endpoints AS uuid[]), CAST(:events AS uuid[]),
                        CAST(:types AS text[]), CAST(:payloads AS jsonb[]))
                 AS d(endpoint_id, event_id, event_type, payload)
            ON CONFLICT (org_id, endpoint_id, event_id) DO NOTHING
            RETURNING id
            """
        ),
        {
            "org": org_id,
            "endpoints": [endpoint_id for endpoint_id, _ in rows],
            "events": [event.id for _, event in rows],
            "types": [event.type for _, event in rows],
            "payloads": [_json(envelope(event)) for _, event in rows],
        },
    )
    deliveries = len(inserted.all())
    if deliveries:
        AfterCommit.of(session).request(Delivery(org_id))
    return Dispatched(events=len(events), deliveries=deliveries)


def _recorded(org_id: uuid.UUID, events: list[Event]) -> EventsRecorded:
    return EventsRecorded(
        org_id,
        tuple(
            RecordedEvent(
                e.id, e.type, e.subject_type, e.subject_id, e.created_at, envelope(e)["data"]
            )
            for e in events
        ),
    )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
