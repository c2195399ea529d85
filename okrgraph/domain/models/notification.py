"""In-app notifications and per-person preferences."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import Channel, NotificationKind, SubjectType


class Notification(TenantMixin, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        tenant_fk(["person_id"], "people"),
        # The same event never notifies the same person twice.
        UniqueConstraint("org_id", "person_id", "dedup_key"),
        Index(
            "ix_notifications_unread",
            "org_id",
            "person_id",
            "created_at",
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    person_id: Mapped[uuid.UUID]
    kind: Mapped[NotificationKind] = mapped_column(enum_column(NotificationKind, "kind"))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(default="", server_default="")
    subject_type: Mapped[SubjectType | None] = mapped_column(
        enum_column(SubjectType, "subject_type")
    )
    subject_id: Mapped[uuid.UUID | None]
    dedup_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    read_at: Mapped[datetime | None]


class NotificationPreference(TenantMixin, Base):
    __tablename__ = "notification_preferences"
    __table_args__ = (
        tenant_fk(["person_id"], "people"),
        UniqueConstraint("org_id", "person_id", "kind", "channel"),
    )

    person_id: Mapped[uuid.UUID]
    kind: Mapped[NotificationKind] = mapped_column(enum_column(NotificationKind, "kind"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"))
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
