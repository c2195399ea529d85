"""authenticate a token in one call

Revision ID: 0003_auth
Revises: 0002_scores
Create Date: 2026-11-22 20:00:00

Every request authenticates: one SECURITY DEFINER function returns the token,
its person's role and the checks' inputs in a single round trip, instead of a
lookup by hash followed by a tenant-scoped read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from alembic import op

revision: str = "0003_auth"
down_revision: str | None = "0002_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = os.environ.get("OKR_APP_ROLE", "okr_app")  # as in the initial revision


def upgrade() -> None:
    # The owner reads people across organisations only through this function.
    op.execute("CREATE POLICY owner_lookup ON people FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        """
        CREATE FUNCTION okr_authenticate(p_hash text)
        RETURNS TABLE (
            org_id uuid, token_id uuid, scopes varchar[], person_id uuid,
            integration_name varchar, org_role varchar, person_archived_at timestamptz,
            expires_at timestamptz, revoked_at timestamptz, last_used_at timestamptz
        )
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$
            SELECT t.org_id, t.id, t.scopes, t.person_id, t.integration_name,
                   p.org_role, p.archived_at, t.expires_at, t.revoked_at, t.last_used_at
            FROM api_tokens t
            LEFT JOIN people p ON p.org_id = t.org_id AND p.id = t.person_id
            WHERE t.token_hash = p_hash
        $$
        """
    )
    if APP_ROLE:
        op.execute(f"GRANT EXECUTE ON FUNCTION okr_authenticate(text) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION okr_authenticate(text)")
    op.execute("DROP POLICY owner_lookup ON people")
