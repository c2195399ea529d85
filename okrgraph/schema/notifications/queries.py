from __future__ import annotations

import strawberry

from okrgraph.domain.notifications import inbox
from okrgraph.schema.context import Info
from okrgraph.schema.notifications.types import Notification, NotificationPreference
from okrgraph.schema.pagination import Connection, build_connection, page_args
from okrgraph.schema.permissions import CanRead, require_principal


@strawberry.type
class NotificationQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Your notifications, newest first (empty for an integration's token).",
    )
    async def notifications(
        self,
        info: Info,
        unread_only: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Notification]:
        principal = require_principal(info)
        page = page_args(first, after)
        async with info.context.db() as session:
            rows = await inbox.notifications_page(session, principal, page, unread_only=unread_only)
        return build_connection(rows, page, inbox.NEWEST_FIRST, Notification.from_row)

    @strawberry.field(permission_classes=[CanRead], description="How many of yours are unread.")
    async def unread_notification_count(self, info: Info) -> int:
        principal = require_principal(info)
        async with info.context.db() as session:
            return await inbox.unread_count(session, principal)

    @strawberry.field(
        permission_classes=[CanRead],
        description="Your explicit notification preferences, by kind; what is not listed "
        "follows the defaults: every kind in the inbox; by e-mail CHECK_IN_DUE, KPI_CRITICAL, "
        "CYCLE_ENDING, WEEKLY_DIGEST, WEBHOOK_ENDPOINT_DISABLED; on Slack KPI_WARNING, "
        "KPI_CRITICAL, CYCLE_CLOSED.",
    )
    async def notification_preferences(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[NotificationPreference]:
        principal = require_principal(info)
        page = page_args(first, after)
        async with info.context.db() as session:
            rows = await inbox.preferences_page(session, principal, page)
        return build_connection(rows, page, inbox.BY_KIND, NotificationPreference.from_row)
