"""Marking notifications read and choosing where they arrive (your own only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.models import Notification as NotificationRow
from okrgraph.domain.models.enums import Channel
from okrgraph.domain.notifications import inbox
from okrgraph.schema.context import Info
from okrgraph.schema.enums import NotificationKind
from okrgraph.schema.node import parse_id
from okrgraph.schema.notifications.types import Notification, NotificationPreference
from okrgraph.schema.payloads import UserErrors, run_mutation
from okrgraph.schema.permissions import require_principal


@strawberry.type(description="The notifications marked read.")
class MarkNotificationsReadSuccess:
    ids: strawberry.Private[list[uuid.UUID]]

    @strawberry.field(description="The notifications, now read.")
    async def notifications(self, info: Info) -> list[Notification]:
        rows = await info.context.loaders.by_id(NotificationRow).load_many(self.ids)
        return [Notification.from_row(r) for r in rows if r is not None]

    @strawberry.field(description="How many of yours are still unread.")
    async def unread_count(self, info: Info) -> int:
        principal = require_principal(info)
        async with info.context.db() as session:
            return await inbox.unread_count(session, principal)


@strawberry.type(description="The preference after the change.")
class NotificationPreferenceSuccess:
    preference: NotificationPreference = strawberry.field(description="The preference.")


MarkNotificationsReadResult = Annotated[
    MarkNotificationsReadSuccess | UserErrors,
    strawberry.union(
        "MarkNotificationsReadResult", description="MarkNotificationsReadSuccess or a user error."
    ),
]
NotificationPreferenceResult = Annotated[
    NotificationPreferenceSuccess | UserErrors,
    strawberry.union(
        "NotificationPreferenceResult", description="NotificationPreferenceSuccess or a user error."
    ),
]


@strawberry.type
class NotificationMutations:
    @strawberry.mutation(
        description="Mark some of your notifications read (at most 100 ids). An id that is "
        "not one of yours is NotFound, and then nothing is marked. Needs a `write` token "
        "(a read-only token changes nothing); a VIEWER's `write` token may do this."
    )
    async def mark_notifications_read(
        self, info: Info, ids: list[strawberry.ID], idempotency_key: str | None = None
    ) -> MarkNotificationsReadResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            parsed = [parse_id(i, "Notification", f"ids.{n}") for n, i in enumerate(ids)]
            marked = await inbox.mark_read(session, principal, parsed)
            return [str(i) for i in marked]

        return await run_mutation(
            info,
            "markNotificationsRead",
            list(ids),
            idempotency_key,
            action,
            lambda marked: MarkNotificationsReadSuccess(ids=[uuid.UUID(i) for i in marked]),
        )

    @strawberry.mutation(
        description="Turn one kind of notification on or off on one channel, for yourself. "
        "Needs a `write` token (a read-only token changes nothing); a VIEWER's `write` "
        "token may do this."
    )
    async def set_notification_preference(
        self,
        info: Info,
        kind: NotificationKind,
        channel: Channel,
        enabled: bool,
        idempotency_key: str | None = None,
    ) -> NotificationPreferenceResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await inbox.set_preference(
                session, principal, kind=kind, channel=channel, enabled=enabled
            )

        return await run_mutation(
            info,
            "setNotificationPreference",
            {"kind": kind.value, "channel": channel.value, "enabled": enabled},
            idempotency_key,
            action,
            lambda row: NotificationPreferenceSuccess(
                preference=NotificationPreference.from_row(row)
            ),
        )
