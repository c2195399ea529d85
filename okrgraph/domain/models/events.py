"""The transactional outbox, the audit log and the score history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import Status, SubjectType


# The append-only logs a full pass writes by the 100k (score history, outbox
# events) keep `org_id` without TenantMixin's foreign key: a trigger checking it
# per row cost 1.5 s of such a pass. Row-level security pins it to the
# transaction's organisation (migration 0013_append_only_without_org_fk).
def append_only_org_id() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, sort_order=-20)


class OutboxEvent(TenantMixin, Base):
    """Written in the same transaction as the change; relayed to the worker after commit."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index(
            "ix_outbox_events_pending",
            "created_at",
            postgresql_where=text("processed_at IS NULL"),
        ),
        Index(
            "ix_outbox_events_recalc_pending",
            "org_id",
            "created_at",
            postgresql_where=text("processed_at IS NULL AND payload ? 'recalc'"),
        ),
        Index("ix_outbox_events_created_at", "created_at"),
        Index(
            "ix_outbox_events_failed",
            "org_id",
            "failed_at",
            postgresql_where=text("failed_at IS NOT NULL"),
        ),
    )

    org_id: Mapped[uuid.UUID] = append_only_org_id()
    type: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[SubjectType | None] = mapped_column(
        enum_column(SubjectType, "subject_type")
    )
    subject_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]
    # Set by the score pipeline on a recalculation event it could not process
    # (scores.pending_events.process_pending_events): when, and why in one line.
    failed_at: Mapped[datetime | None]
    failure: Mapped[str | None] = mapped_column(String(500))


class AuditEntry(TenantMixin, Base):
    """Who changed what, when: append-only for the app role."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        tenant_fk(["actor_person_id"], "people"),
        Index(None, "org_id", "subject_id"),
    )

    actor_person_id: Mapped[uuid.UUID | None]
    actor_token_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[SubjectType] = mapped_column(enum_column(SubjectType, "subject_type"))
    subject_id: Mapped[uuid.UUID | None]
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ScoreHistory(TenantMixin, Base):
    """A score or progress value as it changed: the source of `asOf` and trends."""

    __tablename__ = "score_history"
    __table_args__ = (
        CheckConstraint("value >= 0 AND value <= 1", name="value_in_unit"),
        Index(None, "org_id", "subject_id", "recorded_at"),
    )

    org_id: Mapped[uuid.UUID] = append_only_org_id()
    subject_type: Mapped[SubjectType] = mapped_column(enum_column(SubjectType, "subject_type"))
    subject_id: Mapped[uuid.UUID]
    value: Mapped[float]
    status: Mapped[Status] = mapped_column(enum_column(Status, "status"))
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxConsumed(TenantMixin, Base):
    """An event a consumer of the outbox (the webhook dispatcher, the notifier) has
    taken: inserting the row claims it, so each consumer takes each event once."""

    __tablename__ = "outbox_consumed"
    __table_args__ = (
        tenant_fk(["event_id"], "outbox_events", ondelete="CASCADE"),
        UniqueConstraint("org_id", "consumer", "event_id"),
        Index("ix_outbox_consumed_event", "org_id", "event_id"),
    )

    consumer: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[uuid.UUID]
    consumed_at: Mapped[datetime] = mapped_column(server_default=func.now())
