"""record_check_in: validation, current value rules, the KR's own score, audit and outbox."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.errors import Conflict, NotFound, ValidationFailed
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import AuditEntry, KeyResult, OutboxEvent, ScoreHistory
from okrgraph.domain.models.enums import (
    CycleState,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    Status,
)
from tests.worker.graphs import MIDWAY, GraphBuilder


async def _kr(db: AsyncSession, kr_id: uuid.UUID) -> KeyResult:
    kr = await db.scalar(
        select(KeyResult).where(KeyResult.id == kr_id).execution_options(populate_existing=True)
    )
    assert kr is not None
    return kr


async def test_check_in_sets_current_score_status_history_audit_and_event(
    db: AsyncSession,
) -> None:
    g = await GraphBuilder.create(db)
    objective_id = await g.objective()
    kr_id = await g.kr(objective_id, start=0, target=200)
    ci = await record_check_in(
        db,
        principal=system_principal(g.org_id),
        key_result_id=kr_id,
        value=80,
        confidence=8,
        now=MIDWAY,
    )
    kr = await _kr(db, kr_id)
    assert (kr.current_value, kr.confidence, kr.score) == (80, 8, 0.4)
    # expected 0.5 -> pace 0.8: AT_RISK
    assert kr.status is Status.AT_RISK
    assert kr.last_check_in_at == MIDWAY
    history = (await db.scalars(select(ScoreHistory).where(ScoreHistory.subject_id == kr_id))).all()
    assert [(h.value, h.status) for h in history] == [(0.4, Status.AT_RISK)]
    audit = (await db.scalars(select(AuditEntry).where(AuditEntry.subject_id == kr_id))).all()
    assert [a.action for a in audit] == ["checkin.created"]
    events = (await db.scalars(select(OutboxEvent).where(OutboxEvent.subject_id == kr_id))).all()
    by_type = {e.type: e for e in events}
    assert sorted(by_type) == ["checkin.created", "score.changed"]
    # The score it wrote itself: recorded like the roll-up's, and carried in the
    # request so that the score job announces it (once) with the roll-up.
    changed = by_type["score.changed"].payload
    assert (changed["value"], changed["status"]) == (0.4, "AT_RISK")
    assert (changed["previous_value"], changed["previous_status"]) == (0.0, "NOT_STARTED")
    event = by_type["checkin.created"]
    # The roll-up starts above what the write scored: at the key result's objective.
    assert event.payload["recalc"] == {
        "objectives": [str(objective_id)],
        "written": [
            {
                "subjectType": "KEY_RESULT",
                "id": str(kr_id),
                "value": 0.4,
                "status": "AT_RISK",
                "previousValue": 0.0,
                "previousStatus": "NOT_STARTED",
            }
        ],
    }
    assert event.payload["check_in_id"] == str(ci.id)
    assert event.processed_at is None


async def test_backdated_check_in_is_logged_but_does_not_change_current(
    db: AsyncSession,
) -> None:
    g = await GraphBuilder.create(db)
    kr_id = await g.kr(await g.objective())
    await record_check_in(
        db, principal=system_principal(g.org_id), key_result_id=kr_id, value=60, now=MIDWAY
    )
    await record_check_in(
        db,
        principal=system_principal(g.org_id),
        key_result_id=kr_id,
        value=10,
        confidence=2,
        effective_at=MIDWAY - timedelta(days=3),
        now=MIDWAY + timedelta(minutes=1),
    )
    kr = await _kr(db, kr_id)
    assert kr.current_value == 60
    assert kr.score == 0.6
    # the score did not change: one history row only
    history = (await db.scalars(select(ScoreHistory).where(ScoreHistory.subject_id == kr_id))).all()
    assert len(history) == 1


async def test_a_correction_replaces_the_value_it_supersedes(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    kr_id = await g.kr(await g.objective())
    typo = await record_check_in(
        db, principal=system_principal(g.org_id), key_result_id=kr_id, value=90, now=MIDWAY
    )
    await record_check_in(
        db,
        principal=system_principal(g.org_id),
        key_result_id=kr_id,
        value=9,
        supersedes_id=typo.id,
        now=MIDWAY + timedelta(hours=1),
    )
    kr = await _kr(db, kr_id)
    assert kr.current_value == 9
    with pytest.raises(Conflict):
        await record_check_in(
            db,
            principal=system_principal(g.org_id),
            key_result_id=kr_id,
            value=8,
            supersedes_id=typo.id,
            now=MIDWAY,
        )


async def test_low_confidence_makes_an_on_track_kr_at_risk(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    kr_id = await g.kr(await g.objective())
    await record_check_in(
        db,
        principal=system_principal(g.org_id),
        key_result_id=kr_id,
        value=70,
        confidence=3,
        now=MIDWAY,
    )
    assert (await _kr(db, kr_id)).status is Status.AT_RISK
    # a second later: with equal times the current check-in would be a coin toss
    await record_check_in(
        db,
        principal=system_principal(g.org_id),
        key_result_id=kr_id,
        value=70,
        confidence=4,
        now=MIDWAY + timedelta(seconds=1),
    )
    assert (await _kr(db, kr_id)).status is Status.ON_TRACK


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"confidence": 11}, "input.confidence"),
        ({"confidence": -1}, "input.confidence"),
        ({"value": math.nan}, "input.value"),
        ({"value": math.inf}, "input.value"),
        ({"effective_at": MIDWAY + timedelta(hours=1)}, "input.effectiveAt"),
        ({"effective_at": MIDWAY.replace(tzinfo=None)}, "input.effectiveAt"),
    ],
)
async def test_invalid_input_is_refused_and_writes_nothing(
    db: AsyncSession, kwargs: dict[str, object], field: str
) -> None:
    g = await GraphBuilder.create(db)
    kr_id = await g.kr(await g.objective())
    args: dict[str, Any] = {"value": 5.0, **kwargs}
    principal = system_principal(g.org_id)
    with pytest.raises(ValidationFailed) as err:
        await record_check_in(db, principal=principal, key_result_id=kr_id, now=MIDWAY, **args)
    assert err.value.field == field
    assert (await db.scalars(select(OutboxEvent))).all() == []


async def test_refuses_missing_cancelled_closed_and_non_check_in_key_results(
    db: AsyncSession,
) -> None:
    g = await GraphBuilder.create(db)
    o = await g.objective()
    with pytest.raises(NotFound):
        await record_check_in(
            db, principal=system_principal(g.org_id), key_result_id=uuid.uuid4(), value=1
        )
    with pytest.raises(NotFound):
        await record_check_in(
            db,
            principal=system_principal(g.org_id),
            key_result_id=await g.kr(o),
            value=1,
            supersedes_id=uuid.uuid4(),
        )
    cancelled = await g.kr(o, state=KeyResultState.CANCELLED)
    kpi_driven = await g.kr(o, driver=KeyResultDriver.KPI)
    closed_cycle = await g.cycle(state=CycleState.CLOSED)
    frozen = await g.kr(await g.objective(cycle_id=closed_cycle))
    for kr_id in (cancelled, kpi_driven, frozen):
        with pytest.raises(Conflict):
            await record_check_in(
                db, principal=system_principal(g.org_id), key_result_id=kr_id, value=1, now=MIDWAY
            )


async def test_supersedes_must_belong_to_the_same_key_result(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    o = await g.objective()
    a, b = await g.kr(o), await g.kr(o, KeyResultKind.MILESTONE, target=1)
    other = await record_check_in(
        db, principal=system_principal(g.org_id), key_result_id=a, value=5, now=MIDWAY
    )
    with pytest.raises(ValidationFailed) as err:
        await record_check_in(
            db,
            principal=system_principal(g.org_id),
            key_result_id=b,
            value=1,
            supersedes_id=other.id,
            now=MIDWAY,
        )
    assert err.value.field == "input.supersedesId"


async def test_a_check_in_that_moves_no_score_asks_for_no_roll_up(db: AsyncSession) -> None:
    """A backdated check-in older than the current one changes neither the key result's
    score nor its status: its event is recorded, and no roll-up is asked for."""
    g = await GraphBuilder.create(db)
    kr_id = await g.kr(await g.objective(), start=0, target=100)
    principal = system_principal(g.org_id)
    await record_check_in(db, principal, kr_id, 50, now=MIDWAY)
    older = await record_check_in(
        db, principal, kr_id, 10, effective_at=MIDWAY - timedelta(days=3), now=MIDWAY
    )
    event = (
        await db.scalars(
            select(OutboxEvent).where(OutboxEvent.payload["check_in_id"].astext == str(older.id))
        )
    ).one()
    assert event.type == "checkin.created"
    assert "recalc" not in event.payload
    assert (await _kr(db, kr_id)).score == 0.5
