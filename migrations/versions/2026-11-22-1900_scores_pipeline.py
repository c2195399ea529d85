"""score pipeline: index for superseded check-ins, pending recalculation events, relay lookup

Revision ID: 0002_scores
Revises: 0001
Create Date: 2026-11-22 19:00:00
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_scores"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = os.environ.get("OKR_APP_ROLE", "okr_app")


def upgrade() -> None:
    # A key result's current check-in is the latest one nobody superseded.
    op.create_index(
        "ix_check_ins_supersedes",
        "check_ins",
        ["org_id", "supersedes_id"],
        unique=False,
        postgresql_where=sa.text("supersedes_id IS NOT NULL"),
    )
    # What the recalculation job claims and the relay sweeps (events carrying `recalc`).
    op.create_index(
        "ix_outbox_events_recalc_pending",
        "outbox_events",
        ["org_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("processed_at IS NULL AND payload ? 'recalc'"),
    )
    # The relay's sweep must see every organisation's pending events before a
    # tenant is known: like okr_organization_ids(), it only reveals org ids.
    op.execute(
        """
        CREATE FUNCTION okr_orgs_with_pending_recalc(p_older_than interval)
        RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$ SELECT DISTINCT org_id FROM outbox_events
           WHERE processed_at IS NULL AND payload ? 'recalc'
             AND created_at < now() - p_older_than $$
        """
    )
    if APP_ROLE:
        op.execute(
            f"GRANT EXECUTE ON FUNCTION okr_orgs_with_pending_recalc(interval) TO {APP_ROLE}"
        )


def downgrade() -> None:
    op.execute("DROP FUNCTION okr_orgs_with_pending_recalc(interval)")
    op.drop_index(
        "ix_outbox_events_recalc_pending",
        table_name="outbox_events",
        postgresql_where=sa.text("processed_at IS NULL AND payload ? 'recalc'"),
    )
    op.drop_index(
        "ix_check_ins_supersedes",
        table_name="check_ins",
        postgresql_where=sa.text("supersedes_id IS NOT NULL"),
    )
