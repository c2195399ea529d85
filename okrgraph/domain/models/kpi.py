"""KPIs: long-lived health metrics, their measurement series and their links."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import Direction, Health, KpiCadence


class Kpi(TenantMixin, Base):
    __tablename__ = "kpis"
    __table_args__ = (
        tenant_fk(["owner_team_id"], "teams"),
        CheckConstraint(
            "warning_threshold IS NULL OR critical_threshold IS NULL OR "
            "(direction = 'HIGHER_IS_BETTER' AND critical_threshold <= warning_threshold) OR "
            "(direction = 'LOWER_IS_BETTER' AND critical_threshold >= warning_threshold)",
            name="thresholds_ordered",
        ),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint("alert_level IN ('WARNING', 'CRITICAL')", name="alert_level_known"),
        UniqueConstraint("org_id", "name"),
        Index(None, "org_id", "owner_team_id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(default="", server_default="")
    owner_team_id: Mapped[uuid.UUID | None]
    unit: Mapped[str] = mapped_column(String(32), default="", server_default="")
    direction: Mapped[Direction] = mapped_column(enum_column(Direction, "direction"))
    target: Mapped[float | None]
    warning_threshold: Mapped[float | None]
    critical_threshold: Mapped[float | None]
    cadence: Mapped[KpiCadence] = mapped_column(
        enum_column(KpiCadence, "kpi_cadence"), default=KpiCadence.WEEKLY
    )
    health: Mapped[Health] = mapped_column(enum_column(Health, "health"), default=Health.UNKNOWN)
    latest_value: Mapped[float | None]
    latest_at: Mapped[datetime | None]
    # The alert raised (WARNING, CRITICAL; NULL when clear): KPI alerts' hysteresis.
    alert_level: Mapped[str | None] = mapped_column(String(8))
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class KpiMeasurement(TenantMixin, Base):
    """One point of a KPI's series; `(kpi, source, external_id)` makes ingestion idempotent."""

    __tablename__ = "kpi_measurements"
    __table_args__ = (
        tenant_fk(["kpi_id"], "kpis"),
        UniqueConstraint("org_id", "kpi_id", "source", "external_id"),
        Index(None, "org_id", "kpi_id", "measured_at"),
    )

    kpi_id: Mapped[uuid.UUID]
    value: Mapped[float]
    measured_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100), default="manual", server_default="manual")
    external_id: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class KpiLink(TenantMixin, Base):
    """A KPI measuring a key result, or keeping an objective on course."""

    __tablename__ = "kpi_links"
    __table_args__ = (
        tenant_fk(["kpi_id"], "kpis"),
        tenant_fk(["key_result_id"], "key_results"),
        tenant_fk(["objective_id"], "objectives"),
        CheckConstraint("num_nonnulls(key_result_id, objective_id) = 1", name="exactly_one_target"),
        # A key result is measured by at most one KPI.
        Index(
            "uq_kpi_links_key_result",
            "org_id",
            "key_result_id",
            unique=True,
            postgresql_where=text("key_result_id IS NOT NULL"),
        ),
        UniqueConstraint("org_id", "kpi_id", "objective_id"),
        Index(None, "org_id", "objective_id"),
    )

    kpi_id: Mapped[uuid.UUID]
    key_result_id: Mapped[uuid.UUID | None]
    objective_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
