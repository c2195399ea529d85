"""Cycles: the time boxes OKRs live in (a year may contain its quarters)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import Cadence, CloseJobState, ClosePhase, CycleState


class Cycle(TenantMixin, Base):
    __tablename__ = "cycles"
    __table_args__ = (
        tenant_fk(["parent_cycle_id"], "cycles"),
        CheckConstraint("ends_on > starts_on", name="ends_after_start"),
        CheckConstraint("parent_cycle_id IS NULL OR parent_cycle_id <> id", name="not_own_parent"),
        UniqueConstraint("org_id", "name"),
    )

    name: Mapped[str] = mapped_column(String(100))
    cadence: Mapped[Cadence] = mapped_column(enum_column(Cadence, "cadence"))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    state: Mapped[CycleState] = mapped_column(
        enum_column(CycleState, "cycle_state"), default=CycleState.PLANNING
    )
    parent_cycle_id: Mapped[uuid.UUID | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class CloseJob(TenantMixin, Base):
    """A cycle's close run by the worker (large cycles, cycles/close_jobs.py): what was
    asked, how far it got, and its result. One QUEUED or RUNNING per cycle."""

    __tablename__ = "close_jobs"
    __table_args__ = (
        tenant_fk(["cycle_id"], "cycles"),
        tenant_fk(["next_cycle_id"], "cycles"),
        tenant_fk(["requested_by_person_id"], "people"),
        CheckConstraint(
            "carry_over IN ('CARRY_REMAINDER', 'REBASELINE', 'CLOSE_AS_MISSED')",
            name="carry_over_policy",
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(
            "uq_close_jobs_live",
            "org_id",
            "cycle_id",
            unique=True,
            postgresql_where=text("state IN ('QUEUED', 'RUNNING')"),
        ),
        Index("ix_close_jobs_queued", "created_at", postgresql_where=text("state = 'QUEUED'")),
    )

    cycle_id: Mapped[uuid.UUID]
    state: Mapped[CloseJobState] = mapped_column(
        enum_column(CloseJobState, "close_job_state"), default=CloseJobState.QUEUED
    )
    phase: Mapped[ClosePhase | None] = mapped_column(enum_column(ClosePhase, "close_phase"))
    carry_over: Mapped[str] = mapped_column(String(15))
    next_cycle_id: Mapped[uuid.UUID | None]
    # Who asked: the close runs with their authority and its audit entries name them.
    requested_by_person_id: Mapped[uuid.UUID | None]
    requested_by_token_id: Mapped[uuid.UUID | None]
    objectives: Mapped[int]  # to grade, counted when asked
    objectives_graded: Mapped[int | None]
    key_results_frozen: Mapped[int | None]
    objectives_carried_over: Mapped[int | None]
    key_results_carried_over: Mapped[int | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # Closing.as_json(), once DONE
    error: Mapped[str | None] = mapped_column(String(500))  # why it FAILED
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
