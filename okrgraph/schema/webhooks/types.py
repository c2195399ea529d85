"""Webhook endpoints and their delivery log (admins only; never the signing secret)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import strawberry

from okrgraph.domain.graph.queries import Filter, Order
from okrgraph.domain.models import WebhookAttempt as WebhookAttemptRow
from okrgraph.domain.models import WebhookDelivery as WebhookDeliveryRow
from okrgraph.domain.models import WebhookEndpoint as WebhookEndpointRow
from okrgraph.domain.models.enums import DeliveryStatus as DeliveryStatusEnum
from okrgraph.domain.webhooks.catalog import may_see_endpoints
from okrgraph.schema.context import Info
from okrgraph.schema.node import Node, node_kind, to_global_id
from okrgraph.schema.pagination import (
    Connection,
    build_connection,
    children_connection,
    page_args,
)

DeliveryStatus = strawberry.enum(
    DeliveryStatusEnum,
    description="PENDING (waiting or retrying), SUCCEEDED, FAILED (will retry), GAVE_UP.",
)
NEWEST_FIRST = Order("created_at", descending=True)
BY_ATTEMPT = Order("attempt")


def _admin_only(principal: Any, row: Any) -> bool:
    return may_see_endpoints(principal)


@node_kind(WebhookEndpointRow, visible=_admin_only)
@strawberry.type(
    description="A URL that receives the organisation's events, signed per the Standard "
    "Webhooks specification (admins only)."
)
class WebhookEndpoint(Node):
    row: strawberry.Private[WebhookEndpointRow]
    url: str = strawberry.field(description="Where events are POSTed.")
    description: str = strawberry.field(description="What it is for.")
    event_types: list[str] = strawberry.field(
        description="Event types it receives (`kpi.measured`, `kpi.*`); empty: all."
    )
    enabled: bool = strawberry.field(description="Whether deliveries are made to it.")
    failure_count: int = strawberry.field(
        description="Failed deliveries in a row; too many disable it."
    )
    disabled_at: datetime | None = strawberry.field(description="When it was disabled.")
    created_at: datetime = strawberry.field(description="When it was created.")

    @classmethod
    def from_row(cls, row: WebhookEndpointRow) -> WebhookEndpoint:
        return cls(
            id=to_global_id("WebhookEndpoint", row.id),
            row=row,
            url=row.url,
            description=row.description,
            event_types=list(row.event_types),
            enabled=row.enabled,
            failure_count=row.failure_count,
            disabled_at=row.disabled_at,
            created_at=row.created_at,
        )

    @strawberry.field(description="Deliveries to it, newest first, optionally of one status.")
    async def deliveries(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: DeliveryStatusEnum | None = None,
    ) -> Connection[WebhookDelivery]:
        page = page_args(first, after)
        filters: tuple[Filter, ...] = () if status is None else (("status", "=", status),)
        loader = info.context.loaders.by_parent(
            WebhookDeliveryRow,
            "endpoint_id",
            order=NEWEST_FIRST,
            page=page,
            filters=filters,
        )
        rows = await loader.load(self.row.id)
        return build_connection(rows, page, NEWEST_FIRST, WebhookDelivery.from_row)


@node_kind(WebhookDeliveryRow, visible=_admin_only)
@strawberry.type(description="One event sent (or to be sent) to one endpoint.")
class WebhookDelivery(Node):
    row: strawberry.Private[WebhookDeliveryRow]
    event_id: strawberry.ID = strawberry.field(
        description="The delivered event's id: the same for every endpoint and every retry."
    )
    event_type: str = strawberry.field(description="E.g. `kpi.measured`.")
    status: DeliveryStatusEnum = strawberry.field(description="Where the delivery stands.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    response_status: int | None = strawberry.field(description="HTTP status of the last attempt.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When it will be tried next (null once it succeeded or gave up)."
    )
    delivered_at: datetime | None = strawberry.field(description="When it succeeded.")
    created_at: datetime = strawberry.field(description="When the event was queued for it.")

    @classmethod
    def from_row(cls, row: WebhookDeliveryRow) -> WebhookDelivery:
        pending = row.status in (DeliveryStatusEnum.PENDING, DeliveryStatusEnum.FAILED)
        return cls(
            id=to_global_id("WebhookDelivery", row.id),
            row=row,
            event_id=strawberry.ID(str(row.event_id)),
            event_type=row.event_type,
            status=row.status,
            attempts=row.attempts,
            response_status=row.response_status,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at if pending else None,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )

    @strawberry.field(description="The endpoint.")
    async def endpoint(self, info: Info) -> WebhookEndpoint | None:
        row = await info.context.loaders.by_id(WebhookEndpointRow).load(self.row.endpoint_id)
        return WebhookEndpoint.from_row(row) if row else None

    @strawberry.field(
        description='The body POSTed (and signed), as JSON text: `{"type", "timestamp", '
        '"data"}` (docs/webhooks.md).'
    )
    def payload(self) -> str:
        return json.dumps(self.row.payload)  # as the sender serialises it (delivery.py)

    @strawberry.field(description="Its HTTP attempts, first to last: the delivery log.")
    async def attempts_log(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[WebhookAttempt]:
        return await children_connection(
            info,
            WebhookAttemptRow,
            "delivery_id",
            self.row.id,
            first,
            after,
            BY_ATTEMPT,
            WebhookAttempt.from_row,
        )


@strawberry.type(description="One HTTP attempt of a webhook delivery.")
class WebhookAttempt:
    attempt: int = strawberry.field(description="1 for the first attempt, then 2, 3, ...")
    started_at: datetime = strawberry.field(description="When the request was sent.")
    duration_ms: int = strawberry.field(
        description="Milliseconds until the response (or the failure)."
    )
    response_status: int | None = strawberry.field(
        description="The receiver's HTTP status; null when no response came."
    )
    error: str | None = strawberry.field(
        description="Why it failed (a timeout, a refused connection, an HTTP status); "
        "null when it succeeded."
    )
    response_excerpt: str = strawberry.field(
        description="The start of the response body (at most 2,000 characters)."
    )

    @classmethod
    def from_row(cls, row: WebhookAttemptRow) -> WebhookAttempt:
        return cls(
            attempt=row.attempt,
            started_at=row.started_at,
            duration_ms=row.duration_ms,
            response_status=row.response_status,
            error=row.error,
            response_excerpt=row.response_excerpt,
        )
