"""score history and outbox events: no foreign key to the organisation

Revision ID: 0013_append_only_without_org_fk
Revises: 0012_hot_score_updates
Create Date: 2026-12-07 15:00:00

Issue 11. A full pass that changes every number of 100k key results appends
~133k score_history rows and ~133k outbox events; PostgreSQL checked the
`org_id -> organizations` reference of each one by a trigger per row: 1.5 s of
the pass (0.75 s per table, same data with and without). Both tables are
append-only logs written only by the application, under row-level security
whose WITH CHECK pins `org_id` to the transaction's organisation. The
application never deletes an organisation; deleting one by hand means deleting
its history and events first, as with any log.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013_append_only_without_org_fk"
down_revision: str | None = "0012_hot_score_updates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("score_history", "outbox_events")


def upgrade() -> None:
    for table in TABLES:
        op.drop_constraint(f"fk_{table}_org_id_organizations", table, type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        op.create_foreign_key(
            f"fk_{table}_org_id_organizations",
            table,
            "organizations",
            ["org_id"],
            ["id"],
            ondelete="CASCADE",
        )
