"""subject types and notification kinds become closed vocabularies

Revision ID: 0008_enums
Revises: 0006_kr_carried_over
Create Date: 2026-12-04 12:00:00

Audit entries and outbox events spelled subject types two ways (`KEY_RESULT`
and `KeyResult`, `KPI` and `Kpi`); they now hold one `SubjectType` name
(okrgraph.domain.models.enums), kept by a check constraint, so the audit log
can be queried by subject. Existing rows are respelled (`KeyResult` ->
`KEY_RESULT`, `WebhookEndpoint` -> `WEBHOOK_ENDPOINT`, ...). Notifications and
notification preferences hold a `NotificationKind`; a preference whose kind is
none of them (the API took any string before) is dropped: it could match no
notification. score_history's subject_type takes the same vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_enums"
down_revision: str | None = "0006_kr_carried_over"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As of this revision (a later change of the enums writes its own migration).
SUBJECT_TYPES = (
    "ORGANIZATION",
    "TEAM",
    "PERSON",
    "MEMBERSHIP",
    "CYCLE",
    "OBJECTIVE",
    "ALIGNMENT",
    "REFLECTION",
    "KEY_RESULT",
    "CHECK_IN",
    "INITIATIVE",
    "KPI",
    "API_TOKEN",
    "WEBHOOK_ENDPOINT",
)
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
SUBJECT_LENGTH = max(map(len, SUBJECT_TYPES))
KIND_LENGTH = max(map(len, NOTIFICATION_KINDS))
# (table, nullable) of every subject_type column
SUBJECT_COLUMNS = (
    ("audit_entries", False),
    ("outbox_events", True),
    ("notifications", True),
)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# CamelCase -> UPPER_SNAKE, as domain.audit.subject_type_of spells a model's name
RESPELL = "UPPER(regexp_replace(subject_type, '([a-z0-9])([A-Z])', '\\1_\\2', 'g'))"


def upgrade() -> None:
    for table, _nullable in SUBJECT_COLUMNS:
        op.execute(f"UPDATE {table} SET subject_type = {RESPELL} WHERE subject_type <> {RESPELL}")
        # anything else could never name a subject: no known type reads it
        op.execute(
            f"UPDATE {table} SET subject_type = NULL WHERE NOT ({_in('subject_type', SUBJECT_TYPES)})"
            if _nullable
            else f"DELETE FROM {table} WHERE NOT ({_in('subject_type', SUBJECT_TYPES)})"
        )
        op.alter_column(
            table,
            "subject_type",
            type_=sa.String(SUBJECT_LENGTH),
            existing_type=sa.String(32),
            existing_nullable=_nullable,
        )
        op.create_check_constraint(
            op.f(f"ck_{table}_subject_type"), table, _in("subject_type", SUBJECT_TYPES)
        )
    op.drop_constraint(op.f("ck_score_history_subject_type"), "score_history", type_="check")
    op.alter_column(
        "score_history",
        "subject_type",
        type_=sa.String(SUBJECT_LENGTH),
        existing_type=sa.String(10),
        existing_nullable=False,
    )
    op.create_check_constraint(
        op.f("ck_score_history_subject_type"), "score_history", _in("subject_type", SUBJECT_TYPES)
    )
    op.execute(
        f"DELETE FROM notification_preferences WHERE NOT ({_in('kind', NOTIFICATION_KINDS)})"
    )
    op.execute(f"DELETE FROM notifications WHERE NOT ({_in('kind', NOTIFICATION_KINDS)})")
    for table in ("notifications", "notification_preferences"):
        op.alter_column(
            table,
            "kind",
            type_=sa.String(KIND_LENGTH),
            existing_type=sa.String(64),
            existing_nullable=False,
        )
        op.create_check_constraint(op.f(f"ck_{table}_kind"), table, _in("kind", NOTIFICATION_KINDS))


def downgrade() -> None:
    for table in ("notifications", "notification_preferences"):
        op.drop_constraint(op.f(f"ck_{table}_kind"), table, type_="check")
        op.alter_column(table, "kind", type_=sa.String(64), existing_type=sa.String(KIND_LENGTH))
    op.drop_constraint(op.f("ck_score_history_subject_type"), "score_history", type_="check")
    op.execute(
        "DELETE FROM score_history WHERE subject_type NOT IN ('OBJECTIVE', 'KEY_RESULT', 'KPI')"
    )
    op.alter_column(
        "score_history",
        "subject_type",
        type_=sa.String(10),
        existing_type=sa.String(SUBJECT_LENGTH),
    )
    op.create_check_constraint(
        op.f("ck_score_history_subject_type"),
        "score_history",
        "subject_type IN ('OBJECTIVE', 'KEY_RESULT', 'KPI')",
    )
    for table, _nullable in SUBJECT_COLUMNS:
        op.drop_constraint(op.f(f"ck_{table}_subject_type"), table, type_="check")
        op.alter_column(
            table, "subject_type", type_=sa.String(32), existing_type=sa.String(SUBJECT_LENGTH)
        )
