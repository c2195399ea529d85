"""In-app notifications and per-person preferences."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import Channel, DeliveryStatus, NotificationKind, SubjectType


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


class NotificationSend(TenantMixin, Base):
    """A notification going out on a channel other than the inbox (EMAIL, SLACK), as the
    worker sends and retries it: once per person, channel and dedup key."""

    __tablename__ = "notification_sends"
    __table_args__ = (
        tenant_fk(["person_id"], "people"),
        UniqueConstraint("org_id", "person_id", "channel", "dedup_key"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(
            "ix_notification_sends_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('PENDING', 'FAILED')"),
        ),
    )

    person_id: Mapped[uuid.UUID]
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"))
    kind: Mapped[NotificationKind] = mapped_column(enum_column(NotificationKind, "kind"))
    dedup_key: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(default="", server_default="")
    html_body: Mapped[str] = mapped_column(default="", server_default="")
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
