"""initial schema, with row-level security and the application role

Revision ID: 0001
Revises:
Create Date: 2026-11-22 18:27:07.313672
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_tables()
    secure_tables()


def create_tables() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column(
            "cycle_cadence",
            sa.Enum(
                "QUARTER",
                "YEAR",
                "CUSTOM",
                name="cadence",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("rollup_mode", sa.String(length=32), nullable=False),
        sa.Column("reminder_cadence_days", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "rollup_mode IN ('WEIGHTED_MEAN')", name=op.f("ck_organizations_rollup_mode_known")
        ),
        sa.CheckConstraint(
            "reminder_cadence_days > 0", name=op.f("ck_organizations_reminder_cadence_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "cycles",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "cadence",
            sa.Enum(
                "QUARTER",
                "YEAR",
                "CUSTOM",
                name="cadence",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "PLANNING",
                "ACTIVE",
                "GRADING",
                "CLOSED",
                name="cycle_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("parent_cycle_id", sa.Uuid(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("ends_on > starts_on", name=op.f("ck_cycles_ends_after_start")),
        sa.CheckConstraint(
            "parent_cycle_id IS NULL OR parent_cycle_id <> id",
            name=op.f("ck_cycles_not_own_parent"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "parent_cycle_id"],
            ["cycles.org_id", "cycles.id"],
            name=op.f("fk_cycles_org_id_parent_cycle_id_cycles"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_cycles_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_cycles")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_cycles_org_id_name")),
    )
    op.create_table(
        "outbox_events",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=True),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column(
            "payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_outbox_events_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_outbox_events")),
    )
    op.create_index(
        "ix_outbox_events_pending",
        "outbox_events",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.create_table(
        "people",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "org_role",
            sa.Enum(
                "ADMIN",
                "MEMBER",
                "VIEWER",
                name="org_role",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("position('@' in email) > 1", name=op.f("ck_people_email_has_at")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_people_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_people")),
        sa.UniqueConstraint("org_id", "email", name=op.f("uq_people_org_id_email")),
    )
    op.create_table(
        "score_history",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "subject_type",
            sa.Enum(
                "OBJECTIVE",
                "KEY_RESULT",
                "KPI",
                name="subject_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "NOT_STARTED",
                "ON_TRACK",
                "AT_RISK",
                "OFF_TRACK",
                name="status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "value >= 0 AND value <= 1", name=op.f("ck_score_history_value_in_unit")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_score_history_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_score_history")),
    )
    op.create_index(
        op.f("ix_score_history_org_id_subject_id_recorded_at"),
        "score_history",
        ["org_id", "subject_id", "recorded_at"],
        unique=False,
    )
    op.create_table(
        "teams",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(), server_default="", nullable=False),
        sa.Column("parent_team_id", sa.Uuid(), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "parent_team_id IS NULL OR parent_team_id <> id", name=op.f("ck_teams_not_own_parent")
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "parent_team_id"],
            ["teams.org_id", "teams.id"],
            name=op.f("fk_teams_org_id_parent_team_id_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_teams_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_teams")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_teams_org_id_name")),
    )
    op.create_index(
        op.f("ix_teams_org_id_parent_team_id"), "teams", ["org_id", "parent_team_id"], unique=False
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(), server_default="", nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column(
            "event_types",
            postgresql.ARRAY(sa.String(length=64)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("failure_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("url ~ '^https?://'", name=op.f("ck_webhook_endpoints_url_is_http")),
        sa.CheckConstraint(
            "failure_count >= 0", name=op.f("ck_webhook_endpoints_failure_count_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_endpoints_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("integration_name", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "scopes <@ ARRAY['read', 'write', 'admin']::varchar[] AND cardinality(scopes) > 0",
            name=op.f("ck_api_tokens_scopes_known"),
        ),
        sa.CheckConstraint(
            "num_nonnulls(person_id, integration_name) = 1",
            name=op.f("ck_api_tokens_person_or_integration"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_api_tokens_org_id_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_api_tokens_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "audit_entries",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("actor_person_id", sa.Uuid(), nullable=True),
        sa.Column("actor_token_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column(
            "changes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "actor_person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_audit_entries_org_id_actor_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_audit_entries_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_audit_entries")),
    )
    op.create_index(
        op.f("ix_audit_entries_org_id_subject_id"),
        "audit_entries",
        ["org_id", "subject_id"],
        unique=False,
    )
    op.create_table(
        "kpis",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(), server_default="", nullable=False),
        sa.Column("owner_team_id", sa.Uuid(), nullable=True),
        sa.Column("unit", sa.String(length=32), server_default="", nullable=False),
        sa.Column(
            "direction",
            sa.Enum(
                "HIGHER_IS_BETTER",
                "LOWER_IS_BETTER",
                name="direction",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("target", sa.Double(), nullable=True),
        sa.Column("warning_threshold", sa.Double(), nullable=True),
        sa.Column("critical_threshold", sa.Double(), nullable=True),
        sa.Column(
            "cadence",
            sa.Enum(
                "DAILY",
                "WEEKLY",
                "MONTHLY",
                "QUARTERLY",
                name="kpi_cadence",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "health",
            sa.Enum(
                "HEALTHY",
                "WARNING",
                "CRITICAL",
                "UNKNOWN",
                name="health",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("latest_value", sa.Double(), nullable=True),
        sa.Column("latest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "warning_threshold IS NULL OR critical_threshold IS NULL OR (direction = 'HIGHER_IS_BETTER' AND critical_threshold <= warning_threshold) OR (direction = 'LOWER_IS_BETTER' AND critical_threshold >= warning_threshold)",
            name=op.f("ck_kpis_thresholds_ordered"),
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_kpis_name_not_empty")),
        sa.ForeignKeyConstraint(
            ["org_id", "owner_team_id"],
            ["teams.org_id", "teams.id"],
            name=op.f("fk_kpis_org_id_owner_team_id_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_kpis_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_kpis")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_kpis_org_id_name")),
    )
    op.create_index(
        op.f("ix_kpis_org_id_owner_team_id"), "kpis", ["org_id", "owner_team_id"], unique=False
    )
    op.create_table(
        "memberships",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("LEAD", "MEMBER", name="team_role", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_memberships_org_id_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "team_id"],
            ["teams.org_id", "teams.id"],
            name=op.f("fk_memberships_org_id_team_id_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_memberships_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_memberships")),
        sa.UniqueConstraint(
            "org_id", "team_id", "person_id", name=op.f("uq_memberships_org_id_team_id_person_id")
        ),
    )
    op.create_index(
        op.f("ix_memberships_org_id_person_id"),
        "memberships",
        ["org_id", "person_id"],
        unique=False,
    )
    op.create_table(
        "notification_preferences",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "IN_APP",
                "EMAIL",
                "SLACK",
                name="channel",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_notification_preferences_org_id_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_notification_preferences_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_notification_preferences")),
        sa.UniqueConstraint(
            "org_id",
            "person_id",
            "kind",
            "channel",
            name=op.f("uq_notification_preferences_org_id_person_id_kind_channel"),
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.String(), server_default="", nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=True),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id", "person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_notifications_org_id_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_notifications_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "org_id",
            "person_id",
            "dedup_key",
            name=op.f("uq_notifications_org_id_person_id_dedup_key"),
        ),
    )
    op.create_index(
        "ix_notifications_unread",
        "notifications",
        ["org_id", "person_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_table(
        "objectives",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cycle_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.String(), server_default="", nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "COMPANY",
                "TEAM",
                "INDIVIDUAL",
                name="level",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("owner_team_id", sa.Uuid(), nullable=True),
        sa.Column("owner_person_id", sa.Uuid(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "DRAFT",
                "ACTIVE",
                "ACHIEVED",
                "MISSED",
                "CANCELLED",
                name="objective_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "progress_driver",
            sa.Enum(
                "KEY_RESULTS",
                "CHILDREN",
                "BOTH",
                name="objective_driver",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("carried_over_from_id", sa.Uuid(), nullable=True),
        sa.Column("progress", sa.Double(), server_default="0", nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "NOT_STARTED",
                "ON_TRACK",
                "AT_RISK",
                "OFF_TRACK",
                name="status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("final_score", sa.Double(), nullable=True),
        sa.Column("score_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "level <> 'INDIVIDUAL' OR owner_person_id IS NOT NULL",
            name=op.f("ck_objectives_individual_has_person"),
        ),
        sa.CheckConstraint(
            "level <> 'TEAM' OR owner_team_id IS NOT NULL", name=op.f("ck_objectives_team_has_team")
        ),
        sa.CheckConstraint(
            "final_score IS NULL OR (final_score >= 0 AND final_score <= 1)",
            name=op.f("ck_objectives_final_score_in_unit"),
        ),
        sa.CheckConstraint("length(title) > 0", name=op.f("ck_objectives_title_not_empty")),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 1", name=op.f("ck_objectives_progress_in_unit")
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "carried_over_from_id"],
            ["objectives.org_id", "objectives.id"],
            name=op.f("fk_objectives_org_id_carried_over_from_id_objectives"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "cycle_id"],
            ["cycles.org_id", "cycles.id"],
            name=op.f("fk_objectives_org_id_cycle_id_cycles"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "owner_person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_objectives_org_id_owner_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "owner_team_id"],
            ["teams.org_id", "teams.id"],
            name=op.f("fk_objectives_org_id_owner_team_id_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_objectives_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_objectives")),
    )
    op.create_index(
        op.f("ix_objectives_org_id_cycle_id_level"),
        "objectives",
        ["org_id", "cycle_id", "level"],
        unique=False,
    )
    op.create_index(
        op.f("ix_objectives_org_id_owner_person_id"),
        "objectives",
        ["org_id", "owner_person_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_objectives_org_id_owner_team_id"),
        "objectives",
        ["org_id", "owner_team_id"],
        unique=False,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "SUCCEEDED",
                "FAILED",
                "GAVE_UP",
                name="delivery_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_webhook_deliveries_attempts_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "endpoint_id"],
            ["webhook_endpoints.org_id", "webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_org_id_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "event_id"],
            ["outbox_events.org_id", "outbox_events.id"],
            name=op.f("fk_webhook_deliveries_org_id_event_id_outbox_events"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_deliveries_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "org_id",
            "endpoint_id",
            "event_id",
            name=op.f("uq_webhook_deliveries_org_id_endpoint_id_event_id"),
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('PENDING', 'FAILED')"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "token_id"],
            ["api_tokens.org_id", "api_tokens.id"],
            name=op.f("fk_idempotency_keys_org_id_token_id_api_tokens"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_idempotency_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "org_id", "token_id", "key", name=op.f("uq_idempotency_keys_org_id_token_id_key")
        ),
    )
    op.create_table(
        "key_results",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("objective_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("owner_person_id", sa.Uuid(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "INCREASE",
                "DECREASE",
                "ABOVE",
                "BELOW",
                "MILESTONE",
                name="kr_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("unit", sa.String(length=32), server_default="", nullable=False),
        sa.Column("start_value", sa.Double(), server_default="0", nullable=False),
        sa.Column("target_value", sa.Double(), nullable=True),
        sa.Column("current_value", sa.Double(), nullable=True),
        sa.Column("weight", sa.Double(), server_default="1", nullable=False),
        sa.Column(
            "progress_driver",
            sa.Enum(
                "CHECK_INS",
                "KPI",
                "CHILDREN",
                name="kr_driver",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("stretch", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "ACTIVE", "CANCELLED", name="kr_state", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("score", sa.Double(), server_default="0", nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "NOT_STARTED",
                "ON_TRACK",
                "AT_RISK",
                "OFF_TRACK",
                name="status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column("final_score", sa.Double(), nullable=True),
        sa.Column("last_check_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("score_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind NOT IN ('INCREASE', 'DECREASE') OR target_value IS NULL OR target_value <> start_value",
            name=op.f("ck_key_results_target_differs_from_start"),
        ),
        sa.CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 10)",
            name=op.f("ck_key_results_confidence_0_to_10"),
        ),
        sa.CheckConstraint(
            "final_score IS NULL OR (final_score >= 0 AND final_score <= 1)",
            name=op.f("ck_key_results_final_score_in_unit"),
        ),
        sa.CheckConstraint("length(title) > 0", name=op.f("ck_key_results_title_not_empty")),
        sa.CheckConstraint("score >= 0 AND score <= 1", name=op.f("ck_key_results_score_in_unit")),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_key_results_weight_not_negative")),
        sa.ForeignKeyConstraint(
            ["org_id", "objective_id"],
            ["objectives.org_id", "objectives.id"],
            name=op.f("fk_key_results_org_id_objective_id_objectives"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "owner_person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_key_results_org_id_owner_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_key_results_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_key_results")),
    )
    op.create_index(
        op.f("ix_key_results_org_id_objective_id"),
        "key_results",
        ["org_id", "objective_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_key_results_org_id_owner_person_id"),
        "key_results",
        ["org_id", "owner_person_id"],
        unique=False,
    )
    op.create_table(
        "kpi_measurements",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kpi_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=100), server_default="manual", nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "kpi_id"],
            ["kpis.org_id", "kpis.id"],
            name=op.f("fk_kpi_measurements_org_id_kpi_id_kpis"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_kpi_measurements_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_kpi_measurements")),
        sa.UniqueConstraint(
            "org_id",
            "kpi_id",
            "source",
            "external_id",
            name=op.f("uq_kpi_measurements_org_id_kpi_id_source_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_kpi_measurements_org_id_kpi_id_measured_at"),
        "kpi_measurements",
        ["org_id", "kpi_id", "measured_at"],
        unique=False,
    )
    op.create_table(
        "reflections",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("objective_id", sa.Uuid(), nullable=False),
        sa.Column("cycle_id", sa.Uuid(), nullable=False),
        sa.Column("final_score", sa.Double(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "ACHIEVED",
                "MISSED",
                "CARRIED_OVER",
                name="outcome",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("what_worked", sa.String(), server_default="", nullable=False),
        sa.Column("what_did_not", sa.String(), server_default="", nullable=False),
        sa.Column("author_person_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "final_score >= 0 AND final_score <= 1", name=op.f("ck_reflections_final_score_in_unit")
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "author_person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_reflections_org_id_author_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "cycle_id"],
            ["cycles.org_id", "cycles.id"],
            name=op.f("fk_reflections_org_id_cycle_id_cycles"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "objective_id"],
            ["objectives.org_id", "objectives.id"],
            name=op.f("fk_reflections_org_id_objective_id_objectives"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_reflections_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_reflections")),
        sa.UniqueConstraint(
            "org_id", "objective_id", name=op.f("uq_reflections_org_id_objective_id")
        ),
    )
    op.create_table(
        "alignments",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("child_objective_id", sa.Uuid(), nullable=False),
        sa.Column("parent_objective_id", sa.Uuid(), nullable=True),
        sa.Column("parent_key_result_id", sa.Uuid(), nullable=True),
        sa.Column("weight", sa.Double(), server_default="1", nullable=False),
        sa.Column("contributes", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "num_nonnulls(parent_objective_id, parent_key_result_id) = 1",
            name=op.f("ck_alignments_exactly_one_parent"),
        ),
        sa.CheckConstraint(
            "parent_objective_id IS NULL OR parent_objective_id <> child_objective_id",
            name=op.f("ck_alignments_not_own_parent"),
        ),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_alignments_weight_not_negative")),
        sa.ForeignKeyConstraint(
            ["org_id", "child_objective_id"],
            ["objectives.org_id", "objectives.id"],
            name=op.f("fk_alignments_org_id_child_objective_id_objectives"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "parent_key_result_id"],
            ["key_results.org_id", "key_results.id"],
            name=op.f("fk_alignments_org_id_parent_key_result_id_key_results"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "parent_objective_id"],
            ["objectives.org_id", "objectives.id"],
            name=op.f("fk_alignments_org_id_parent_objective_id_objectives"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_alignments_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_alignments")),
        sa.UniqueConstraint(
            "org_id",
            "child_objective_id",
            "parent_key_result_id",
            name=op.f("uq_alignments_org_id_child_objective_id_parent_key_result_id"),
        ),
        sa.UniqueConstraint(
            "org_id",
            "child_objective_id",
            "parent_objective_id",
            name=op.f("uq_alignments_org_id_child_objective_id_parent_objective_id"),
        ),
    )
    op.create_index(
        op.f("ix_alignments_org_id_parent_key_result_id"),
        "alignments",
        ["org_id", "parent_key_result_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_alignments_org_id_parent_objective_id"),
        "alignments",
        ["org_id", "parent_objective_id"],
        unique=False,
    )
    op.create_table(
        "check_ins",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_result_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column("comment", sa.String(), server_default="", nullable=False),
        sa.Column("author_person_id", sa.Uuid(), nullable=True),
        sa.Column("supersedes_id", sa.Uuid(), nullable=True),
        sa.Column(
            "effective_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 10)",
            name=op.f("ck_check_ins_confidence_0_to_10"),
        ),
        sa.CheckConstraint(
            "supersedes_id IS NULL OR supersedes_id <> id", name=op.f("ck_check_ins_not_self")
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "author_person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_check_ins_org_id_author_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "key_result_id"],
            ["key_results.org_id", "key_results.id"],
            name=op.f("fk_check_ins_org_id_key_result_id_key_results"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "supersedes_id"],
            ["check_ins.org_id", "check_ins.id"],
            name=op.f("fk_check_ins_org_id_supersedes_id_check_ins"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_check_ins_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_check_ins")),
    )
    op.create_index(
        op.f("ix_check_ins_org_id_key_result_id_effective_at"),
        "check_ins",
        ["org_id", "key_result_id", "effective_at"],
        unique=False,
    )
    op.create_table(
        "initiatives",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_result_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("owner_person_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "PLANNED",
                "IN_PROGRESS",
                "DONE",
                "CANCELLED",
                name="initiative_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("link", sa.String(length=2000), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("length(title) > 0", name=op.f("ck_initiatives_title_not_empty")),
        sa.ForeignKeyConstraint(
            ["org_id", "key_result_id"],
            ["key_results.org_id", "key_results.id"],
            name=op.f("fk_initiatives_org_id_key_result_id_key_results"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "owner_person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_initiatives_org_id_owner_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_initiatives_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_initiatives")),
    )
    op.create_index(
        op.f("ix_initiatives_org_id_key_result_id"),
        "initiatives",
        ["org_id", "key_result_id"],
        unique=False,
    )
    op.create_table(
        "kpi_links",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kpi_id", sa.Uuid(), nullable=False),
        sa.Column("key_result_id", sa.Uuid(), nullable=True),
        sa.Column("objective_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "num_nonnulls(key_result_id, objective_id) = 1",
            name=op.f("ck_kpi_links_exactly_one_target"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "key_result_id"],
            ["key_results.org_id", "key_results.id"],
            name=op.f("fk_kpi_links_org_id_key_result_id_key_results"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "kpi_id"],
            ["kpis.org_id", "kpis.id"],
            name=op.f("fk_kpi_links_org_id_kpi_id_kpis"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "objective_id"],
            ["objectives.org_id", "objectives.id"],
            name=op.f("fk_kpi_links_org_id_objective_id_objectives"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_kpi_links_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_kpi_links")),
        sa.UniqueConstraint(
            "org_id", "kpi_id", "objective_id", name=op.f("uq_kpi_links_org_id_kpi_id_objective_id")
        ),
    )
    op.create_index(
        op.f("ix_kpi_links_org_id_objective_id"),
        "kpi_links",
        ["org_id", "objective_id"],
        unique=False,
    )
    op.create_index(
        "uq_kpi_links_key_result",
        "kpi_links",
        ["org_id", "key_result_id"],
        unique=True,
        postgresql_where=sa.text("key_result_id IS NOT NULL"),
    )
    op.create_table(
        "target_revisions",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_result_id", sa.Uuid(), nullable=False),
        sa.Column("old_target", sa.Double(), nullable=True),
        sa.Column("new_target", sa.Double(), nullable=True),
        sa.Column("reason", sa.String(), server_default="", nullable=False),
        sa.Column("revised_by_person_id", sa.Uuid(), nullable=True),
        sa.Column(
            "revised_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "key_result_id"],
            ["key_results.org_id", "key_results.id"],
            name=op.f("fk_target_revisions_org_id_key_result_id_key_results"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "revised_by_person_id"],
            ["people.org_id", "people.id"],
            name=op.f("fk_target_revisions_org_id_revised_by_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_target_revisions_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_target_revisions")),
    )
    op.create_index(
        op.f("ix_target_revisions_org_id_key_result_id"),
        "target_revisions",
        ["org_id", "key_result_id"],
        unique=False,
    )


def downgrade() -> None:
    unsecure_tables()
    op.drop_index(op.f("ix_target_revisions_org_id_key_result_id"), table_name="target_revisions")
    op.drop_table("target_revisions")
    op.drop_index(
        "uq_kpi_links_key_result",
        table_name="kpi_links",
        postgresql_where=sa.text("key_result_id IS NOT NULL"),
    )
    op.drop_index(op.f("ix_kpi_links_org_id_objective_id"), table_name="kpi_links")
    op.drop_table("kpi_links")
    op.drop_index(op.f("ix_initiatives_org_id_key_result_id"), table_name="initiatives")
    op.drop_table("initiatives")
    op.drop_index(op.f("ix_check_ins_org_id_key_result_id_effective_at"), table_name="check_ins")
    op.drop_table("check_ins")
    op.drop_index(op.f("ix_alignments_org_id_parent_objective_id"), table_name="alignments")
    op.drop_index(op.f("ix_alignments_org_id_parent_key_result_id"), table_name="alignments")
    op.drop_table("alignments")
    op.drop_table("reflections")
    op.drop_index(
        op.f("ix_kpi_measurements_org_id_kpi_id_measured_at"), table_name="kpi_measurements"
    )
    op.drop_table("kpi_measurements")
    op.drop_index(op.f("ix_key_results_org_id_owner_person_id"), table_name="key_results")
    op.drop_index(op.f("ix_key_results_org_id_objective_id"), table_name="key_results")
    op.drop_table("key_results")
    op.drop_table("idempotency_keys")
    op.drop_index(
        "ix_webhook_deliveries_due",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status IN ('PENDING', 'FAILED')"),
    )
    op.drop_table("webhook_deliveries")
    op.drop_index(op.f("ix_objectives_org_id_owner_team_id"), table_name="objectives")
    op.drop_index(op.f("ix_objectives_org_id_owner_person_id"), table_name="objectives")
    op.drop_index(op.f("ix_objectives_org_id_cycle_id_level"), table_name="objectives")
    op.drop_table("objectives")
    op.drop_index(
        "ix_notifications_unread",
        table_name="notifications",
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.drop_table("notifications")
    op.drop_table("notification_preferences")
    op.drop_index(op.f("ix_memberships_org_id_person_id"), table_name="memberships")
    op.drop_table("memberships")
    op.drop_index(op.f("ix_kpis_org_id_owner_team_id"), table_name="kpis")
    op.drop_table("kpis")
    op.drop_index(op.f("ix_audit_entries_org_id_subject_id"), table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("api_tokens")
    op.drop_table("webhook_endpoints")
    op.drop_index(op.f("ix_teams_org_id_parent_team_id"), table_name="teams")
    op.drop_table("teams")
    op.drop_index(
        op.f("ix_score_history_org_id_subject_id_recorded_at"), table_name="score_history"
    )
    op.drop_table("score_history")
    op.drop_table("people")
    op.drop_index(
        "ix_outbox_events_pending",
        table_name="outbox_events",
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.drop_table("outbox_events")
    op.drop_table("cycles")
    op.drop_table("organizations")


# Row-level security: the second wall behind the application's own scoping.
# Every tenant table is visible only for the organisation set in the
# transaction-local `app.org_id`; FORCE makes it hold for the owner too.
# The app runs as APP_ROLE, which neither owns the tables nor bypasses RLS.
APP_ROLE = os.environ.get("OKR_APP_ROLE", "okr_app")
TENANT_TABLES = [
    "alignments",
    "api_tokens",
    "audit_entries",
    "check_ins",
    "cycles",
    "idempotency_keys",
    "initiatives",
    "key_results",
    "kpi_links",
    "kpi_measurements",
    "kpis",
    "memberships",
    "notification_preferences",
    "notifications",
    "objectives",
    "outbox_events",
    "people",
    "reflections",
    "score_history",
    "target_revisions",
    "teams",
    "webhook_deliveries",
    "webhook_endpoints",
]
# History is appended, never rewritten.
APPEND_ONLY = ["check_ins", "kpi_measurements", "audit_entries", "score_history"]


def secure_tables() -> None:
    op.execute(
        """
        CREATE FUNCTION okr_current_org() RETURNS uuid
        LANGUAGE sql STABLE AS
        $$ SELECT nullif(current_setting('app.org_id', true), '')::uuid $$
        """
    )
    for table in [*TENANT_TABLES, "organizations"]:
        column = "id" if table == "organizations" else "org_id"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({column} = okr_current_org()) WITH CHECK ({column} = okr_current_org())"
        )
    # Some reads happen before a tenant is known: authenticating a token (see
    # okr_authenticate, revision 0003), finding an organisation by its slug
    # (`okr token create`) and the worker's sweeps listing organisations. Only
    # the schema owner may make them, through SECURITY DEFINER functions.
    for table in ("api_tokens", "organizations"):
        op.execute(f"CREATE POLICY owner_lookup ON {table} FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        """
        CREATE FUNCTION okr_organization_ids() RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$ SELECT id FROM organizations ORDER BY id $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION okr_organization_by_slug(p_slug text) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$ SELECT id FROM organizations WHERE slug = p_slug $$
        """
    )
    if not APP_ROLE:
        return
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN NOBYPASSRLS;
          END IF;
        END $$
        """
    )
    # Lets a non-superuser owner connect and `SET ROLE` to the app role.
    op.execute(f"GRANT {APP_ROLE} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    tables = ", ".join([*TENANT_TABLES, "organizations"])
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {APP_ROLE}")
    op.execute(f"REVOKE UPDATE, DELETE ON {', '.join(APPEND_ONLY)} FROM {APP_ROLE}")
    op.execute(f"REVOKE DELETE ON organizations FROM {APP_ROLE}")
    op.execute(
        "GRANT EXECUTE ON FUNCTION okr_organization_ids(), okr_organization_by_slug(text) "
        f"TO {APP_ROLE}"
    )


def unsecure_tables() -> None:
    op.execute("DROP FUNCTION okr_organization_by_slug(text)")
    op.execute("DROP FUNCTION okr_organization_ids()")
    for table in [*TENANT_TABLES, "organizations"]:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
    for table in ("api_tokens", "organizations"):
        op.execute(f"DROP POLICY owner_lookup ON {table}")
    op.execute("DROP FUNCTION okr_current_org()")
    if APP_ROLE:
        op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
