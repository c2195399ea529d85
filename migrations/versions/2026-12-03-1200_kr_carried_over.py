"""key results remember the key result they were carried over from

Revision ID: 0006_kr_carried_over
Revises: 0005_rollup_failures
Create Date: 2026-12-03 12:00:00

Objectives had `carried_over_from_id`; key results copied by closing a cycle
could not be traced back. Closing now fills the new column for every carried
key result (okrgraph.domain.cycles.closing), and the API shows it as
`KeyResult.carriedOverFrom`. Key results carried before this revision keep NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_kr_carried_over"
down_revision: str | None = "0005_rollup_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("key_results", sa.Column("carried_over_from_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_key_results_org_id_carried_over_from_id_key_results"),
        "key_results",
        "key_results",
        ["org_id", "carried_over_from_id"],
        ["org_id", "id"],
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_key_results_org_id_carried_over_from_id_key_results"),
        "key_results",
        type_="foreignkey",
    )
    op.drop_column("key_results", "carried_over_from_id")
