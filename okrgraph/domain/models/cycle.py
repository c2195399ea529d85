"""Cycles: the time boxes OKRs live in (a year may contain its quarters)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import Cadence, CycleState


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
