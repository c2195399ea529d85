"""In-app notifications and notification preferences: each person sees only their own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from okrgraph.domain.models import Notification as NotificationRow
from okrgraph.domain.models import NotificationPreference as NotificationPreferenceRow
from okrgraph.domain.models.enums import Channel as ChannelEnum
from okrgraph.domain.notifications.inbox import is_own
from okrgraph.schema.context import Info
from okrgraph.schema.enums import NotificationKind, SubjectType
from okrgraph.schema.node import NODE_KINDS, Node, node_kind, to_global_id

Channel = strawberry.enum(ChannelEnum, description="Where a notification is delivered.")


def subject_type_name(subject_type: SubjectType | None) -> str | None:
    """The GraphQL type a notification's subject resolves to, if any (KEY_RESULT -> KeyResult)."""
    if subject_type is None:
        return None
    name = "".join(part.capitalize() for part in subject_type.name.split("_"))
    return name if name in NODE_KINDS else None


def _own(principal: Any, row: Any) -> bool:
    return is_own(principal, row)


@node_kind(NotificationRow, visible=_own)
@strawberry.type(description="Something the recipient should know about (theirs alone).")
class Notification(Node):
    row: strawberry.Private[NotificationRow]
    kind: NotificationKind = strawberry.field(description="What happened.")
    title: str = strawberry.field(description="One line for people.")
    body: str = strawberry.field(description="More detail.")
    subject_type: SubjectType | None = strawberry.field(
        description="The kind of object it is about."
    )
    subject_id: strawberry.ID | None = strawberry.field(
        description="Global id of the object it is about, when that is an API type."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    read_at: datetime | None = strawberry.field(description="When it was marked read.")

    @classmethod
    def from_row(cls, row: NotificationRow) -> Notification:
        type_name = subject_type_name(row.subject_type)
        return cls(
            id=to_global_id("Notification", row.id),
            row=row,
            kind=row.kind,
            title=row.title,
            body=row.body,
            subject_type=row.subject_type,
            subject_id=(
                to_global_id(type_name, row.subject_id)
                if type_name and row.subject_id is not None
                else None
            ),
            created_at=row.created_at,
            read_at=row.read_at,
        )

    @strawberry.field(description="The object it is about (null if gone or not an API type).")
    async def subject(self, info: Info) -> Node | None:
        type_name = subject_type_name(self.row.subject_type)
        if type_name is None or self.row.subject_id is None:
            return None
        kind = NODE_KINDS[type_name]
        row = await info.context.loaders.by_id(kind.model).load(self.row.subject_id)
        if row is None or (kind.visible and not kind.visible(info.context.principal, row)):
            return None
        return kind.build(row)


@node_kind(NotificationPreferenceRow, visible=_own)
@strawberry.type(
    description="Whether one kind of notification reaches you on one channel. Kinds and "
    "channels without a preference are on."
)
class NotificationPreference(Node):
    row: strawberry.Private[NotificationPreferenceRow]
    kind: NotificationKind = strawberry.field(description="The kind of notification.")
    channel: ChannelEnum = strawberry.field(description="IN_APP, EMAIL or SLACK.")
    enabled: bool = strawberry.field(description="Whether it is sent there.")

    @classmethod
    def from_row(cls, row: NotificationPreferenceRow) -> NotificationPreference:
        return cls(
            id=to_global_id("NotificationPreference", row.id),
            row=row,
            kind=row.kind,
            channel=row.channel,
            enabled=row.enabled,
        )
