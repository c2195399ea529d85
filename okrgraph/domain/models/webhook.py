"""Webhook endpoints and the log of deliveries to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import DeliveryStatus


class WebhookEndpoint(TenantMixin, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("url ~ '^https?://'", name="url_is_http"),
        CheckConstraint("failure_count >= 0", name="failure_count_not_negative"),
        CheckConstraint("secret_sealed IS NOT NULL OR NOT enabled", name="enabled_has_secret"),
        CheckConstraint("secret_sealed NOT LIKE 'whsec%'", name="secret_not_plaintext"),
    )

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(default="", server_default="")
    # The signing secret sealed under OKR_SECRET_KEYS (domain.webhooks.secrets), never
    # plaintext; NULL only for endpoints whose plaintext secret migration 0004 erased.
    secret_sealed: Mapped[str | None] = mapped_column(String(300))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
    failure_count: Mapped[int] = mapped_column(default=0, server_default="0")
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookDelivery(TenantMixin, Base):
    """One event to one endpoint; the event id doubles as the receiver's dedup key."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        tenant_fk(["endpoint_id"], "webhook_endpoints"),
        tenant_fk(["event_id"], "outbox_events"),
        UniqueConstraint("org_id", "endpoint_id", "event_id"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('PENDING', 'FAILED')"),
        ),
    )

    endpoint_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    response_status: Mapped[int | None]
    last_error: Mapped[str | None]
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookAttempt(TenantMixin, Base):
    """One HTTP attempt of a delivery: the delivery log (appended, never rewritten)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        tenant_fk(["delivery_id"], "webhook_deliveries", ondelete="CASCADE"),
        UniqueConstraint("org_id", "delivery_id", "attempt"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        CheckConstraint("duration_ms >= 0", name="duration_not_negative"),
    )

    delivery_id: Mapped[uuid.UUID]
    attempt: Mapped[int]
    started_at: Mapped[datetime]
    duration_ms: Mapped[int]
    response_status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    response_excerpt: Mapped[str] = mapped_column(String(2000), default="", server_default="")
