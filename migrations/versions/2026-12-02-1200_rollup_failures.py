"""outbox events a roll-up could not process are set aside, with why

Revision ID: 0005_rollup_failures
Revises: 0004_webhook_secrets
Create Date: 2026-12-02 12:00:00

A recalculation event whose roll-up fails (a row no statement can compute)
no longer blocks the organisation's other events: the score pipeline retries
the batch event by event, each in its own savepoint, and marks the one that
still fails processed with `failed_at` and a one-line `failure`
(okrgraph.domain.scores.service.process_pending_events). The partial index
finds them for operators; a full recalculation repairs them once fixed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_rollup_failures"
down_revision: str | None = "0004_webhook_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("failed_at", sa.DateTime(timezone=True)))
    op.add_column("outbox_events", sa.Column("failure", sa.String(500)))
    op.create_index(
        "ix_outbox_events_failed",
        "outbox_events",
        ["org_id", "failed_at"],
        postgresql_where=sa.text("failed_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_outbox_events_failed",
        table_name="outbox_events",
        postgresql_where=sa.text("failed_at IS NOT NULL"),
    )
    op.drop_column("outbox_events", "failure")
    op.drop_column("outbox_events", "failed_at")
