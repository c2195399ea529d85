"""The organisation's event stream: every outbox event (check-ins, score and status
changes, KPI measurements, cycle changes ...) as it is committed, for dashboards.

The webhook dispatcher claims each event once after its commit and publishes the
claimed batch on the organisation's `events_channel` (domain/webhooks/dispatch.py),
so a subscriber sees each event at most once (a publish is best effort, and
nothing is replayed), oldest first, a moment after it commits (the dispatch
job's coalescing window); `data` is exactly a webhook's `data`.
Nothing is read from the database per event: the events carry what is shown.
Every event type is the whole organisation's to read (OKRs are transparent, as
queries are); a type only some may read would need a filter here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from okrgraph.domain.messages import EventsRecorded, RecordedEvent, events_channel
from okrgraph.domain.webhooks.catalog import MAX_EVENT_TYPES, event_type_filter
from okrgraph.domain.webhooks.dispatch import wants
from okrgraph.schema.context import Info
from okrgraph.schema.enums import SubjectType
from okrgraph.schema.live.subscriptions import live_stream
from okrgraph.schema.node import to_global_id
from okrgraph.schema.notifications.types import subject_type_name
from okrgraph.schema.permissions import CanRead


@strawberry.type(
    description="A committed event of your organisation, as webhook endpoints receive it "
    "(docs/webhooks.md lists every type with its `data`)."
)
class OrganizationEvent:
    id: strawberry.ID = strawberry.field(
        description="The event's id: a webhook delivery's `webhook-id` for the same event."
    )
    type: str = strawberry.field(description="The event type, e.g. `checkin.created`.")
    occurred_at: datetime = strawberry.field(description="When the event was committed.")
    subject_type: SubjectType | None = strawberry.field(
        description="The kind of object it is about."
    )
    subject_id: strawberry.ID | None = strawberry.field(
        description="Global id of the object it is about, when that is an API type."
    )
    data: str = strawberry.field(
        description="The event's payload as JSON text: a webhook body's `data`."
    )

    @classmethod
    def of(cls, event: RecordedEvent) -> OrganizationEvent:
        type_name = subject_type_name(event.subject_type)
        return cls(
            id=strawberry.ID(str(event.id)),
            type=event.type,
            occurred_at=event.created_at,
            subject_type=event.subject_type,
            subject_id=(
                to_global_id(type_name, event.subject_id)
                if type_name and event.subject_id is not None
                else None
            ),
            data=json.dumps(event.data, separators=(",", ":"), sort_keys=True),
        )


def wanted_events(message: EventsRecorded, types: list[str]) -> list[RecordedEvent]:
    return [e for e in message.events if wants(types, e.type)]


@strawberry.type
class EventSubscriptions:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Your organisation's events as they are committed, oldest first, each "
        "at most once (`id` is the event's, as a webhook's `webhook-id`). `types` filters "
        "as a webhook endpoint's `eventTypes` do: names (`kpi.measured`), prefixes "
        f"(`kpi.*`), `*`; null or empty: every event; at most {MAX_EVENT_TYPES} of at most "
        "64 characters each. Nothing is replayed: events committed while not subscribed "
        "are not sent (read the graph after subscribing). Ends "
        "with an UNAUTHENTICATED error when the token is revoked or expires or its person "
        "is archived; counts towards the token's open subscriptions.",
    )
    async def organization_events(
        self, info: Info, types: list[str] | None = None
    ) -> AsyncGenerator[OrganizationEvent, None]:
        wanted = event_type_filter(types or [], field="types")
        async with live_stream(info, events_channel) as stream:
            while True:
                message = await stream.next()
                if not isinstance(message, EventsRecorded):
                    continue
                events = wanted_events(message, wanted)
                if not events:
                    continue
                await stream.still_authorised()
                for event in events:
                    yield OrganizationEvent.of(event)
