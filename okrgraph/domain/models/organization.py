"""The tenant and its people: organisations, teams (nested), people, memberships."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, enum_column, tenant_fk
from okrgraph.domain.models.enums import Cadence, OrgRole, TeamRole


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("reminder_cadence_days > 0", name="reminder_cadence_positive"),
        CheckConstraint("rollup_mode IN ('WEIGHTED_MEAN')", name="rollup_mode_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    cycle_cadence: Mapped[Cadence] = mapped_column(
        enum_column(Cadence, "cadence"), default=Cadence.QUARTER
    )
    rollup_mode: Mapped[str] = mapped_column(String(32), default="WEIGHTED_MEAN")
    reminder_cadence_days: Mapped[int] = mapped_column(default=7)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Webhooks to loopback, private and link-local addresses (tests, `okr dev`).
    allow_private_webhook_urls: Mapped[bool] = mapped_column(default=False, server_default="false")
    # The Slack-style incoming webhook notifications post to, sealed like webhook secrets.
    slack_webhook_sealed: Mapped[str | None] = mapped_column(String(600))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Team(TenantMixin, Base):
    __tablename__ = "teams"
    __table_args__ = (
        tenant_fk(["parent_team_id"], "teams"),
        CheckConstraint("parent_team_id IS NULL OR parent_team_id <> id", name="not_own_parent"),
        UniqueConstraint("org_id", "name"),
        Index(None, "org_id", "parent_team_id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(default="", server_default="")
    parent_team_id: Mapped[uuid.UUID | None]
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Person(TenantMixin, Base):
    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("org_id", "email"),
        CheckConstraint("position('@' in email) > 1", name="email_has_at"),
    )

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    org_role: Mapped[OrgRole] = mapped_column(
        enum_column(OrgRole, "org_role"), default=OrgRole.MEMBER
    )
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Membership(TenantMixin, Base):
    __tablename__ = "memberships"
    __table_args__ = (
        tenant_fk(["team_id"], "teams"),
        tenant_fk(["person_id"], "people"),
        UniqueConstraint("org_id", "team_id", "person_id"),
        Index(None, "org_id", "person_id"),
    )

    team_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    role: Mapped[TeamRole] = mapped_column(
        enum_column(TeamRole, "team_role"), default=TeamRole.MEMBER
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
