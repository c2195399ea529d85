"""Subject types and notification kinds have one spelling each (domain enums),
kept by the database: a row spelled any other way is refused, whoever writes it."""

from __future__ import annotations

import pytest
from sqlalchemy import literal, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models.enums import NotificationKind, SubjectType
from tests.db.pg_errors import CHECK_VIOLATION, pg_error
from tests.factories import (
    make_audit_entry,
    make_notification,
    make_notification_preference,
    make_org,
    make_outbox_event,
)

MAKERS = {
    "audit_entries": (make_audit_entry, "subject_type"),
    "outbox_events": (make_outbox_event, "subject_type"),
    "notifications": (make_notification, "subject_type"),
    "notification_preferences": (make_notification_preference, "kind"),
}


@pytest.mark.parametrize(
    ("table", "spelling"),
    [
        ("audit_entries", "KeyResult"),
        ("audit_entries", "Kpi"),
        ("outbox_events", "KeyResult"),
        ("outbox_events", "key_result"),
        ("notifications", "Kpi"),
        ("notification_preferences", "DIGEST"),
    ],
)
async def test_another_spelling_is_refused(db: AsyncSession, table: str, spelling: str) -> None:
    make, column = MAKERS[table]
    org = await make_org(db)
    savepoint = await db.begin_nested()
    with pytest.raises(DBAPIError) as caught:
        await make(db, org.id, **{column: literal(spelling)})
    await savepoint.rollback()
    error = pg_error(caught.value)
    assert (error.sqlstate, error.constraint) == (CHECK_VIOLATION, f"ck_{table}_{column}")


async def test_notification_kind_is_refused_too(db: AsyncSession) -> None:
    org = await make_org(db)
    savepoint = await db.begin_nested()
    with pytest.raises(DBAPIError) as caught:
        await make_notification(db, org.id, kind=literal("KPI_ALERT"))
    await savepoint.rollback()
    assert pg_error(caught.value).constraint == "ck_notifications_kind"


@pytest.mark.parametrize("subject_type", list(SubjectType))
async def test_every_subject_type_is_stored_as_its_name(
    db: AsyncSession, subject_type: SubjectType
) -> None:
    org = await make_org(db)
    await make_audit_entry(db, org.id, subject_type=subject_type)
    await make_outbox_event(db, org.id, subject_type=subject_type)
    stored = (
        await db.execute(
            text(
                "SELECT subject_type FROM audit_entries WHERE org_id = :o "
                "UNION SELECT subject_type FROM outbox_events WHERE org_id = :o"
            ),
            {"o": org.id},
        )
    ).scalars()
    assert list(stored) == [subject_type.name]


@pytest.mark.parametrize("kind", list(NotificationKind))
async def test_every_notification_kind_is_storable(
    db: AsyncSession, kind: NotificationKind
) -> None:
    org = await make_org(db)
    await make_notification(db, org.id, kind=kind)
    await make_notification_preference(db, org.id, kind=kind)
