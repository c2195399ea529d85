"""large cycles close in the worker, with their progress

Revision ID: 0014_close_jobs
Revises: 0013_append_only_without_org_fk
Create Date: 2026-12-07 16:00:00

Issue 11. `closeCycle` of a cycle with more than
`cycles.close_jobs.ASYNC_CLOSE_OBJECTIVES` graded objectives returns at once
with a `close_jobs` row (QUEUED); the worker's `close_cycle_job` runs the close
and keeps the row's phase and counts current (RUNNING), then DONE with the
result in the close's own transaction, or FAILED with why. At most one QUEUED or
RUNNING job per cycle. The relay finds QUEUED jobs whose enqueue was lost
(`okr_queued_close_jobs`, no tenant needed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from alembic import op

revision: str = "0014_close_jobs"
down_revision: str | None = "0013_append_only_without_org_fk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = os.environ.get("OKR_APP_ROLE", "okr_app")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE close_jobs (
            org_id uuid NOT NULL,
            id uuid NOT NULL,
            cycle_id uuid NOT NULL,
            state varchar(7) NOT NULL,
            phase varchar(13),
            carry_over varchar(15) NOT NULL,
            next_cycle_id uuid,
            requested_by_person_id uuid,
            requested_by_token_id uuid,
            objectives integer NOT NULL,
            objectives_graded integer,
            key_results_frozen integer,
            objectives_carried_over integer,
            key_results_carried_over integer,
            result jsonb,
            error varchar(500),
            attempts integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz,
            CONSTRAINT pk_close_jobs PRIMARY KEY (org_id, id),
            CONSTRAINT fk_close_jobs_org_id_organizations FOREIGN KEY (org_id)
                REFERENCES organizations (id) ON DELETE CASCADE,
            CONSTRAINT fk_close_jobs_org_id_cycle_id_cycles
                FOREIGN KEY (org_id, cycle_id) REFERENCES cycles (org_id, id),
            CONSTRAINT fk_close_jobs_org_id_next_cycle_id_cycles
                FOREIGN KEY (org_id, next_cycle_id) REFERENCES cycles (org_id, id),
            CONSTRAINT fk_close_jobs_org_id_requested_by_person_id_people
                FOREIGN KEY (org_id, requested_by_person_id) REFERENCES people (org_id, id),
            CONSTRAINT ck_close_jobs_carry_over_policy
                CHECK (carry_over IN ('CARRY_REMAINDER', 'REBASELINE', 'CLOSE_AS_MISSED')),
            CONSTRAINT ck_close_jobs_attempts_not_negative CHECK (attempts >= 0),
            CONSTRAINT ck_close_jobs_close_job_state
                CHECK (state IN ('QUEUED', 'RUNNING', 'DONE', 'FAILED')),
            CONSTRAINT ck_close_jobs_close_phase CHECK (phase IN
                ('RECALCULATING', 'GRADING', 'CARRYING_OVER', 'REFLECTING', 'ANNOUNCING'))
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_close_jobs_live ON close_jobs (org_id, cycle_id) "
        "WHERE state IN ('QUEUED', 'RUNNING')"
    )
    op.execute(
        "CREATE INDEX ix_close_jobs_queued ON close_jobs (created_at) WHERE state = 'QUEUED'"
    )
    op.execute("ALTER TABLE close_jobs ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE close_jobs FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON close_jobs "
        "USING (org_id = okr_current_org()) WITH CHECK (org_id = okr_current_org())"
    )
    # The relay: QUEUED jobs waiting longer than p_older_than (no tenant needed).
    op.execute(
        """
        CREATE FUNCTION okr_queued_close_jobs(p_older_than interval)
        RETURNS TABLE (org_id uuid, id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$ SELECT org_id, id FROM close_jobs
           WHERE state = 'QUEUED' AND created_at < now() - p_older_than $$
        """
    )
    if APP_ROLE:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON close_jobs TO {APP_ROLE}")
        op.execute(f"GRANT EXECUTE ON FUNCTION okr_queued_close_jobs(interval) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION okr_queued_close_jobs(interval)")
    op.execute("DROP TABLE close_jobs")
