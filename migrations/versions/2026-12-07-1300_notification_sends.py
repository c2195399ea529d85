"""notifications go out by e-mail and Slack; KPI alerts remember their level

Revision ID: 0011_notification_sends
Revises: 0010_outbox_consumers
Create Date: 2026-12-07 13:00:00

Issue 8. A notification is written once per person and dedup key: in the
inbox (`notifications`, IN_APP) and, for each other channel the person's
preferences turn on, as a `notification_sends` row that the worker sends and
retries (unique per person, channel and dedup key, so a trigger firing twice
sends once). `kpis.alert_level` is the KPI's raised alert (WARNING or
CRITICAL, NULL when clear): the hysteresis of KPI alerts is kept there.
`organizations.slack_webhook_sealed` is the organisation's Slack-style
incoming webhook URL, sealed like webhook secrets (it grants posting).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_notification_sends"
down_revision: str | None = "0010_outbox_consumers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = os.environ.get("OKR_APP_ROLE", "okr_app")
NOTIFICATION_KINDS = (
    "KEY_RESULT_WORSENED",
    "OBJECTIVE_WORSENED",
    "KPI_WARNING",
    "KPI_CRITICAL",
    "CHECK_IN_DUE",
    "CYCLE_ENDING",
    "CYCLE_CLOSED",
    "ALIGNED_TO_YOURS",
    "WEEKLY_DIGEST",
    "WEBHOOK_ENDPOINT_DISABLED",
)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE notification_sends (
            org_id uuid NOT NULL,
            id uuid NOT NULL,
            person_id uuid NOT NULL,
            channel varchar(6) NOT NULL,
            kind varchar(25) NOT NULL,
            dedup_key varchar(200) NOT NULL,
            subject varchar(300) NOT NULL,
            text_body varchar NOT NULL DEFAULT '',
            html_body varchar NOT NULL DEFAULT '',
            status varchar(9) NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz,
            last_error varchar(500),
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_notification_sends PRIMARY KEY (org_id, id),
            CONSTRAINT fk_notification_sends_org_id_organizations FOREIGN KEY (org_id)
                REFERENCES organizations (id) ON DELETE CASCADE,
            CONSTRAINT fk_notification_sends_org_id_person_id_people
                FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id),
            CONSTRAINT uq_notification_sends_org_id_person_id_channel_dedup_key
                UNIQUE (org_id, person_id, channel, dedup_key),
            CONSTRAINT ck_notification_sends_attempts_not_negative CHECK (attempts >= 0),
            CONSTRAINT ck_notification_sends_channel CHECK (channel IN ('IN_APP', 'EMAIL', 'SLACK')),
            CONSTRAINT ck_notification_sends_delivery_status
                CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'GAVE_UP')),
            CONSTRAINT ck_notification_sends_kind CHECK ({_in("kind", NOTIFICATION_KINDS)})
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_notification_sends_due ON notification_sends (next_attempt_at) "
        "WHERE status IN ('PENDING', 'FAILED')"
    )
    op.add_column("kpis", sa.Column("alert_level", sa.String(8), nullable=True))
    op.create_check_constraint(
        op.f("ck_kpis_alert_level_known"), "kpis", "alert_level IN ('WARNING', 'CRITICAL')"
    )
    op.add_column("organizations", sa.Column("slack_webhook_sealed", sa.String(600)))
    op.execute("ALTER TABLE notification_sends ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE notification_sends FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON notification_sends "
        "USING (org_id = okr_current_org()) WITH CHECK (org_id = okr_current_org())"
    )
    # The sender's sweep: organisations with sends due (no tenant needed).
    op.execute(
        """
        CREATE FUNCTION okr_orgs_with_due_sends(p_now timestamptz)
        RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$ SELECT DISTINCT org_id FROM notification_sends
           WHERE status IN ('PENDING', 'FAILED') AND next_attempt_at <= p_now $$
        """
    )
    if APP_ROLE:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON notification_sends TO {APP_ROLE}")
        op.execute(f"GRANT EXECUTE ON FUNCTION okr_orgs_with_due_sends(timestamptz) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION okr_orgs_with_due_sends(timestamptz)")
    op.drop_column("organizations", "slack_webhook_sealed")
    op.drop_constraint(op.f("ck_kpis_alert_level_known"), "kpis", type_="check")
    op.drop_column("kpis", "alert_level")
    op.execute("DROP TABLE notification_sends")
