"""outbox consumers keep their own progress; webhook attempts are logged

Revision ID: 0010_outbox_consumers
Revises: 0009_kr_start_taken
Create Date: 2026-12-07 12:00:00

Issue 8. Each consumer of the outbox besides the score pipeline (which keeps
`processed_at`) records the events it has taken in `outbox_consumed`, one row
per (consumer, event): a consumer claims an event by inserting its row, so two
workers never take one event twice, and adding a consumer never depends on
another's bookkeeping. The rows go with their event (ON DELETE CASCADE) when
the retention sweep prunes it.

`webhook_attempts` is the delivery log: one row per HTTP attempt of a
delivery (when, how long, the status code or the error, a bounded excerpt of
the response). `organizations.allow_private_webhook_urls` lets an organisation
send webhooks to loopback, private and link-local addresses (tests and
`okr dev` do); refused otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_outbox_consumers"
down_revision: str | None = "0009_kr_start_taken"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = os.environ.get("OKR_APP_ROLE", "okr_app")
TABLES = ("outbox_consumed", "webhook_attempts")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE outbox_consumed (
            org_id uuid NOT NULL,
            id uuid NOT NULL,
            consumer varchar(32) NOT NULL,
            event_id uuid NOT NULL,
            consumed_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_outbox_consumed PRIMARY KEY (org_id, id),
            CONSTRAINT uq_outbox_consumed_org_id_consumer_event_id
                UNIQUE (org_id, consumer, event_id),
            CONSTRAINT fk_outbox_consumed_org_id_organizations FOREIGN KEY (org_id)
                REFERENCES organizations (id) ON DELETE CASCADE,
            CONSTRAINT fk_outbox_consumed_org_id_event_id_outbox_events
                FOREIGN KEY (org_id, event_id) REFERENCES outbox_events (org_id, id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX ix_outbox_consumed_event ON outbox_consumed (org_id, event_id)")
    op.execute("CREATE INDEX ix_outbox_events_created_at ON outbox_events (created_at)")
    # The relay's sweep: organisations with events a consumer has not taken for a while
    # (no tenant needed). It looks back a day: a consumer's job, once it runs, takes
    # every event of its organisation however old; the sweep only makes up for a
    # follow-up lost between commit and Redis.
    op.execute(
        """
        CREATE FUNCTION okr_orgs_with_unclaimed(p_consumer text, p_older_than interval,
                                                p_internal text[])
        RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$ SELECT DISTINCT e.org_id FROM outbox_events e
           WHERE e.created_at < now() - p_older_than
             AND e.created_at > now() - interval '1 day'
             AND e.type <> ALL(p_internal)
             AND NOT EXISTS (SELECT 1 FROM outbox_consumed c
                             WHERE c.org_id = e.org_id AND c.consumer = p_consumer
                               AND c.event_id = e.id) $$
        """
    )
    op.execute(
        """
        CREATE TABLE webhook_attempts (
            org_id uuid NOT NULL,
            id uuid NOT NULL,
            delivery_id uuid NOT NULL,
            attempt integer NOT NULL,
            started_at timestamptz NOT NULL,
            duration_ms integer NOT NULL,
            response_status integer,
            error varchar(500),
            response_excerpt varchar(2000) NOT NULL DEFAULT '',
            CONSTRAINT pk_webhook_attempts PRIMARY KEY (org_id, id),
            CONSTRAINT fk_webhook_attempts_org_id_organizations FOREIGN KEY (org_id)
                REFERENCES organizations (id) ON DELETE CASCADE,
            CONSTRAINT fk_webhook_attempts_org_id_delivery_id_webhook_deliveries
                FOREIGN KEY (org_id, delivery_id) REFERENCES webhook_deliveries (org_id, id)
                ON DELETE CASCADE,
            CONSTRAINT uq_webhook_attempts_org_id_delivery_id_attempt
                UNIQUE (org_id, delivery_id, attempt),
            CONSTRAINT ck_webhook_attempts_attempt_positive CHECK (attempt >= 1),
            CONSTRAINT ck_webhook_attempts_duration_not_negative CHECK (duration_ms >= 0)
        )
        """
    )
    op.add_column(
        "organizations",
        sa.Column(
            "allow_private_webhook_urls",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
        ),
    )
    # The webhook sender's sweep: organisations with deliveries due by `p_now` to an
    # enabled endpoint (no tenant needed; like okr_organization_ids(), only org ids).
    op.execute(
        """
        CREATE FUNCTION okr_orgs_with_due_webhooks(p_now timestamptz)
        RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$ SELECT DISTINCT d.org_id FROM webhook_deliveries d
           JOIN webhook_endpoints e ON e.org_id = d.org_id AND e.id = d.endpoint_id
           WHERE d.status IN ('PENDING', 'FAILED') AND d.next_attempt_at <= p_now
             AND e.enabled $$
        """
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (org_id = okr_current_org()) WITH CHECK (org_id = okr_current_org())"
        )
    if APP_ROLE:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {APP_ROLE}")
        op.execute(
            f"GRANT EXECUTE ON FUNCTION okr_orgs_with_due_webhooks(timestamptz) TO {APP_ROLE}"
        )
        op.execute(
            "GRANT EXECUTE ON FUNCTION okr_orgs_with_unclaimed(text, interval, text[]) "
            f"TO {APP_ROLE}"
        )


def downgrade() -> None:
    op.execute("DROP FUNCTION okr_orgs_with_due_webhooks(timestamptz)")
    op.execute("DROP FUNCTION okr_orgs_with_unclaimed(text, interval, text[])")
    op.execute("DROP INDEX ix_outbox_events_created_at")
    op.drop_column("organizations", "allow_private_webhook_urls")
    op.execute("DROP TABLE webhook_attempts")
    op.execute("DROP TABLE outbox_consumed")
