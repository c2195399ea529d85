"""Key results, their target revisions, the append-only check-in log, initiatives."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import (
    InitiativeStatus,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    Status,
)


class KeyResult(TenantMixin, Base):
    __tablename__ = "key_results"
    __table_args__ = (
        tenant_fk(["objective_id"], "objectives"),
        tenant_fk(["owner_person_id"], "people"),
        tenant_fk(["carried_over_from_id"], "key_results"),
        CheckConstraint(
            "kind NOT IN ('INCREASE', 'DECREASE') OR target_value IS NULL "
            "OR target_value <> start_value",
            name="target_differs_from_start",
        ),
        CheckConstraint("weight >= 0", name="weight_not_negative"),
        CheckConstraint("score >= 0 AND score <= 1", name="score_in_unit"),
        CheckConstraint(
            "final_score IS NULL OR (final_score >= 0 AND final_score <= 1)",
            name="final_score_in_unit",
        ),
        CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 10)",
            name="confidence_0_to_10",
        ),
        CheckConstraint("length(title) > 0", name="title_not_empty"),
        Index(None, "org_id", "objective_id"),
        Index(None, "org_id", "owner_person_id"),
        # Room for the roll-up's HOT updates (migration 0012_hot_score_updates).
        {"postgresql_with": {"fillfactor": 50}},
    )

    objective_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(300))
    owner_person_id: Mapped[uuid.UUID | None]
    kind: Mapped[KeyResultKind] = mapped_column(enum_column(KeyResultKind, "kr_kind"))
    unit: Mapped[str] = mapped_column(String(32), default="", server_default="")
    start_value: Mapped[float] = mapped_column(default=0.0, server_default="0")
    target_value: Mapped[float | None]
    current_value: Mapped[float | None]
    weight: Mapped[float] = mapped_column(default=1.0, server_default="1")
    progress_driver: Mapped[KeyResultDriver] = mapped_column(
        enum_column(KeyResultDriver, "kr_driver"), default=KeyResultDriver.CHECK_INS
    )
    stretch: Mapped[bool] = mapped_column(default=False, server_default="false")
    state: Mapped[KeyResultState] = mapped_column(
        enum_column(KeyResultState, "kr_state"), default=KeyResultState.ACTIVE
    )
    score: Mapped[float] = mapped_column(default=0.0, server_default="0")
    status: Mapped[Status] = mapped_column(
        enum_column(Status, "status"), default=Status.NOT_STARTED
    )
    confidence: Mapped[int | None]
    final_score: Mapped[float | None]
    # The key result of a previous cycle this one was carried over from (closing).
    carried_over_from_id: Mapped[uuid.UUID | None]
    last_check_in_at: Mapped[datetime | None]
    # When a KPI-driven key result took its start from the KPI (its cycle's start).
    start_taken_at: Mapped[datetime | None]
    score_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class TargetRevision(TenantMixin, Base):
    """A change of a key result's target: the old one is kept."""

    __tablename__ = "target_revisions"
    __table_args__ = (
        tenant_fk(["key_result_id"], "key_results"),
        tenant_fk(["revised_by_person_id"], "people"),
        Index(None, "org_id", "key_result_id"),
    )

    key_result_id: Mapped[uuid.UUID]
    old_target: Mapped[float | None]
    new_target: Mapped[float | None]
    reason: Mapped[str] = mapped_column(default="", server_default="")
    revised_by_person_id: Mapped[uuid.UUID | None]
    revised_at: Mapped[datetime] = mapped_column(server_default=func.now())


class CheckIn(TenantMixin, Base):
    """Append-only: the app role may insert and read, never update or delete."""

    __tablename__ = "check_ins"
    __table_args__ = (
        tenant_fk(["key_result_id"], "key_results"),
        tenant_fk(["author_person_id"], "people"),
        tenant_fk(["supersedes_id"], "check_ins"),
        CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 10)",
            name="confidence_0_to_10",
        ),
        CheckConstraint("supersedes_id IS NULL OR supersedes_id <> id", name="not_self"),
        Index(None, "org_id", "key_result_id", "effective_at"),
        Index(
            "ix_check_ins_supersedes",
            "org_id",
            "supersedes_id",
            postgresql_where=text("supersedes_id IS NOT NULL"),
        ),
    )

    key_result_id: Mapped[uuid.UUID]
    value: Mapped[float]
    confidence: Mapped[int | None]
    comment: Mapped[str] = mapped_column(default="", server_default="")
    author_person_id: Mapped[uuid.UUID | None]
    supersedes_id: Mapped[uuid.UUID | None]
    effective_at: Mapped[datetime] = mapped_column(server_default=func.now())
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Initiative(TenantMixin, Base):
    """Work planned to move a key result; shown beside it, never scored."""

    __tablename__ = "initiatives"
    __table_args__ = (
        tenant_fk(["key_result_id"], "key_results"),
        tenant_fk(["owner_person_id"], "people"),
        Index(None, "org_id", "key_result_id"),
        CheckConstraint("length(title) > 0", name="title_not_empty"),
    )

    key_result_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(300))
    owner_person_id: Mapped[uuid.UUID | None]
    status: Mapped[InitiativeStatus] = mapped_column(
        enum_column(InitiativeStatus, "initiative_status"), default=InitiativeStatus.PLANNED
    )
    link: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
