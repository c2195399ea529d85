"""Objectives, the weighted alignment DAG between them, and cycle-end reflections."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import Level, ObjectiveDriver, ObjectiveState, Outcome, Status


class Objective(TenantMixin, Base):
    __tablename__ = "objectives"
    __table_args__ = (
        tenant_fk(["cycle_id"], "cycles"),
        tenant_fk(["owner_team_id"], "teams"),
        tenant_fk(["owner_person_id"], "people"),
        tenant_fk(["carried_over_from_id"], "objectives"),
        CheckConstraint(
            "level <> 'INDIVIDUAL' OR owner_person_id IS NOT NULL", name="individual_has_person"
        ),
        CheckConstraint("level <> 'TEAM' OR owner_team_id IS NOT NULL", name="team_has_team"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_in_unit"),
        CheckConstraint(
            "final_score IS NULL OR (final_score >= 0 AND final_score <= 1)",
            name="final_score_in_unit",
        ),
        CheckConstraint("length(title) > 0", name="title_not_empty"),
        Index(None, "org_id", "cycle_id", "level"),
        Index(None, "org_id", "owner_team_id"),
        Index(None, "org_id", "owner_person_id"),
        # Room for the roll-up's HOT updates (migration 0012_hot_score_updates).
        {"postgresql_with": {"fillfactor": 50}},
    )

    cycle_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(default="", server_default="")
    level: Mapped[Level] = mapped_column(enum_column(Level, "level"))
    owner_team_id: Mapped[uuid.UUID | None]
    owner_person_id: Mapped[uuid.UUID | None]
    state: Mapped[ObjectiveState] = mapped_column(
        enum_column(ObjectiveState, "objective_state"), default=ObjectiveState.ACTIVE
    )
    progress_driver: Mapped[ObjectiveDriver] = mapped_column(
        enum_column(ObjectiveDriver, "objective_driver"), default=ObjectiveDriver.KEY_RESULTS
    )
    carried_over_from_id: Mapped[uuid.UUID | None]
    progress: Mapped[float] = mapped_column(default=0.0, server_default="0")
    status: Mapped[Status] = mapped_column(
        enum_column(Status, "status"), default=Status.NOT_STARTED
    )
    final_score: Mapped[float | None]
    score_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Alignment(TenantMixin, Base):
    """Edge child objective -> parent objective or parent key result (a DAG)."""

    __tablename__ = "alignments"
    __table_args__ = (
        tenant_fk(["child_objective_id"], "objectives"),
        tenant_fk(["parent_objective_id"], "objectives"),
        tenant_fk(["parent_key_result_id"], "key_results"),
        CheckConstraint(
            "num_nonnulls(parent_objective_id, parent_key_result_id) = 1",
            name="exactly_one_parent",
        ),
        CheckConstraint(
            "parent_objective_id IS NULL OR parent_objective_id <> child_objective_id",
            name="not_own_parent",
        ),
        CheckConstraint("weight >= 0", name="weight_not_negative"),
        UniqueConstraint("org_id", "child_objective_id", "parent_objective_id"),
        UniqueConstraint("org_id", "child_objective_id", "parent_key_result_id"),
        Index(None, "org_id", "parent_objective_id"),
        Index(None, "org_id", "parent_key_result_id"),
    )

    child_objective_id: Mapped[uuid.UUID]
    parent_objective_id: Mapped[uuid.UUID | None]
    parent_key_result_id: Mapped[uuid.UUID | None]
    weight: Mapped[float] = mapped_column(default=1.0, server_default="1")
    contributes: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Reflection(TenantMixin, Base):
    """The "evaluate and reflect" step at cycle close, one per objective."""

    __tablename__ = "reflections"
    __table_args__ = (
        tenant_fk(["objective_id"], "objectives"),
        tenant_fk(["cycle_id"], "cycles"),
        tenant_fk(["author_person_id"], "people"),
        UniqueConstraint("org_id", "objective_id"),
        CheckConstraint("final_score >= 0 AND final_score <= 1", name="final_score_in_unit"),
    )

    objective_id: Mapped[uuid.UUID]
    cycle_id: Mapped[uuid.UUID]
    final_score: Mapped[float]
    outcome: Mapped[Outcome] = mapped_column(enum_column(Outcome, "outcome"))
    what_worked: Mapped[str] = mapped_column(default="", server_default="")
    what_did_not: Mapped[str] = mapped_column(default="", server_default="")
    author_person_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
