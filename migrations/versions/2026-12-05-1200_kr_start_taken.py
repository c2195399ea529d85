"""key results driven by a KPI remember when their start was taken from it

Revision ID: 0009_kr_start_taken
Revises: 0008_enums
Create Date: 2026-12-05 12:00:00

DESIGN.md section 2: a KPI-driven key result's start is the KPI's value when its
cycle starts. The step that takes it (okrgraph.domain.cycles.starting) sets
`start_taken_at`, so it happens once: a later sweep, or the KPI moving on,
changes nothing. Key results existing before this revision get NULL, so those
of cycles already ACTIVE take their start at the next sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_kr_start_taken"
down_revision: str | None = "0008_enums"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "key_results", sa.Column("start_taken_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("key_results", "start_taken_at")
