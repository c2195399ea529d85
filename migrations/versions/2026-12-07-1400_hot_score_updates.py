"""key results and objectives keep room on their pages for HOT updates

Revision ID: 0012_hot_score_updates
Revises: 0011_notification_sends
Create Date: 2026-12-07 14:00:00

Issue 11. A roll-up rewrites the score columns of a key result or objective,
none of them indexed: with room on the row's page PostgreSQL writes the new
version there without touching the indexes (a HOT update). Filled to 100%,
every new version went to another page and into every index (three for key
results, four for objectives): 100k key results rescored in one statement took
2.0-2.4 s, 0.3-0.45 s with HOT. A full pass can rescore every row of a page in
one transaction, before any old version may be pruned, so a page is filled
only half-way. Applies to pages written from now on; `VACUUM FULL key_results,
objectives` rewrites the existing ones (it locks the tables meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_hot_score_updates"
down_revision: str | None = "0011_notification_sends"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("key_results", "objectives")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
