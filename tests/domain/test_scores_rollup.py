"""The set-based roll-up: DESIGN.md section 3 numbers on hand-built graphs."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import KeyResult, Objective, OutboxEvent, ScoreHistory
from okrgraph.domain.models.enums import (
    CycleState,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    ObjectiveDriver,
    ObjectiveState,
    Status,
    SubjectType,
)
from okrgraph.domain.scores.service import full_recalculation, recalculate
from tests.worker.graphs import MIDWAY, GraphBuilder


async def progress(db: AsyncSession, oid: uuid.UUID) -> tuple[float, Status]:
    row = (
        await db.execute(select(Objective.progress, Objective.status).where(Objective.id == oid))
    ).one()
    return row.progress, row.status


async def kr_score(db: AsyncSession, kid: uuid.UUID) -> float:
    return float(await db.scalar(select(KeyResult.score).where(KeyResult.id == kid)) or 0)


async def check_in(g: GraphBuilder, kr: uuid.UUID, value: float) -> None:
    await record_check_in(
        g.session, principal=system_principal(g.org_id), key_result_id=kr, value=value, now=MIDWAY
    )


async def test_weighted_mean_up_a_chain_with_both_drivers(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    company = await g.objective(ObjectiveDriver.BOTH)
    team = await g.objective()
    nps = await g.kr(company, weight=1)
    a, b = await g.kr(team, weight=3), await g.kr(team, weight=1)
    await g.align(team, parent_objective=company, weight=2)
    await check_in(g, a, 100)  # 1.0
    await check_in(g, b, 20)  # 0.2
    await check_in(g, nps, 40)  # 0.4
    result = await recalculate(db, g.org_id, key_result_ids=[a, b, nps], now=MIDWAY)
    # team = (3*1 + 1*0.2) / 4 = 0.8; company = (1*0.4 + 2*0.8) / 3 = 2/3
    assert await progress(db, team) == pytest.approx((0.8, Status.ON_TRACK))
    assert await progress(db, company) == pytest.approx((2 / 3, Status.ON_TRACK))
    assert {(c.subject_type, c.subject_id) for c in result.changes} == {
        (SubjectType.OBJECTIVE, team),
        (SubjectType.OBJECTIVE, company),
    }


async def test_children_driver_many_to_many_and_kr_driven_by_children(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    p1 = await g.objective(ObjectiveDriver.CHILDREN)
    p2 = await g.objective(ObjectiveDriver.KEY_RESULTS)
    kr_children = await g.kr(p2, driver=KeyResultDriver.CHILDREN)
    child = await g.objective()
    other = await g.objective()
    leaf = await g.kr(child)
    await g.kr(other)  # never checked in: 0
    await g.align(child, parent_objective=p1, weight=1)
    await g.align(other, parent_objective=p1, weight=1)
    await g.align(child, parent_kr=kr_children, weight=5)  # a child of two parents
    await check_in(g, leaf, 60)
    await recalculate(db, g.org_id, key_result_ids=[leaf], now=MIDWAY)
    assert (await progress(db, child))[0] == pytest.approx(0.6)
    assert (await progress(db, p1))[0] == pytest.approx(0.3)  # (0.6 + 0) / 2
    assert await kr_score(db, kr_children) == pytest.approx(0.6)  # counts fully here too
    assert (await progress(db, p2))[0] == pytest.approx(0.6)


async def test_supports_edges_cancelled_items_and_zero_weights_are_left_out(
    db: AsyncSession,
) -> None:
    g = await GraphBuilder.create(db)
    parent = await g.objective(ObjectiveDriver.BOTH)
    own = await g.kr(parent)
    await g.kr(parent, state=KeyResultState.CANCELLED, score=0.0)
    await g.kr(parent, weight=0)
    supporter = await g.objective()
    cancelled = await g.objective(state=ObjectiveState.CANCELLED)
    await g.align(supporter, parent_objective=parent, contributes=False)
    await g.align(cancelled, parent_objective=parent)
    await check_in(g, own, 50)
    await check_in(g, await g.kr(supporter), 100)
    await check_in(g, await g.kr(cancelled), 100)
    await full_recalculation(db, g.org_id, now=MIDWAY)
    assert (await progress(db, supporter))[0] == 1.0
    assert (await progress(db, parent))[0] == pytest.approx(0.5)


async def test_zero_total_weight_or_nothing_to_average_is_zero(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    empty = await g.objective(ObjectiveDriver.CHILDREN, progress=0.7)
    zero = await g.objective(progress=0.7)
    await check_in(g, await g.kr(zero, weight=0), 100)
    await full_recalculation(db, g.org_id, now=MIDWAY)
    assert (await progress(db, empty))[0] == 0.0
    assert (await progress(db, zero))[0] == 0.0


async def test_frozen_items_keep_their_numbers_and_count_with_the_final_score(
    db: AsyncSession,
) -> None:
    g = await GraphBuilder.create(db)
    parent = await g.objective(ObjectiveDriver.CHILDREN)
    closed = await g.cycle(state=CycleState.CLOSED)
    old = await g.objective(cycle_id=closed, final_score=0.9, progress=0.9)
    old_kr = await g.kr(old, score=0.3)
    await g.align(old, parent_objective=parent)
    await full_recalculation(db, g.org_id, now=MIDWAY)
    assert (await progress(db, old))[0] == 0.9  # its own KR says 0.3, but it is frozen
    assert await kr_score(db, old_kr) == 0.3
    assert (await progress(db, parent))[0] == pytest.approx(0.9)


async def test_status_follows_pace_in_the_org_time_zone(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    o = await g.objective()
    kr = await g.kr(o, stretch=True)
    await check_in(g, kr, 30)  # pace 0.3 / (0.7 * 0.5) = 0.857 -> AT_RISK
    await recalculate(db, g.org_id, key_result_ids=[kr], now=MIDWAY)
    status = await db.scalar(select(KeyResult.status).where(KeyResult.id == kr))
    assert status is Status.AT_RISK
    assert await progress(db, o) == pytest.approx((0.3, Status.AT_RISK))  # 0.3 / 0.5 = 0.6


async def test_history_and_events_only_for_values_that_changed(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    o = await g.objective()
    kr = await g.kr(o)
    await check_in(g, kr, 70)
    first = await recalculate(db, g.org_id, key_result_ids=[kr], now=MIDWAY)
    again = await recalculate(db, g.org_id, key_result_ids=[kr], now=MIDWAY)
    full = await full_recalculation(db, g.org_id, now=MIDWAY)
    assert [c.subject_id for c in first.changes] == [o]
    assert again.changes == []
    # The full pass recomputed nothing new; it consumed the check-in's pending request,
    # so it announces the score the check-in wrote itself (nobody had announced it).
    assert [(c.subject_id, c.value) for c in full.changes] == [(kr, 0.7)]
    count = select(func.count()).select_from(ScoreHistory).where(ScoreHistory.subject_id == o)
    assert await db.scalar(count) == 1
    events = (
        await db.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.type == "score.changed")
            .order_by(OutboxEvent.subject_type)
        )
    ).all()
    # The check-in's own write of the key result, and the roll-up's of the objective.
    assert [(e.subject_id, e.payload["value"], e.payload["status"]) for e in events] == [
        (kr, pytest.approx(0.7), "ON_TRACK"),
        (o, pytest.approx(0.7), "ON_TRACK"),
    ]
    assert events[1].payload["previous_status"] == "NOT_STARTED"


async def test_full_recalculation_repairs_drift_from_the_logs(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    o = await g.objective()
    kr = await g.kr(o, KeyResultKind.DECREASE, start=10, target=0)
    await check_in(g, kr, 4)
    await recalculate(db, g.org_id, key_result_ids=[kr], now=MIDWAY)
    assert (await progress(db, o))[0] == pytest.approx(0.6)
    await db.execute(
        text("UPDATE key_results SET current_value = 99, score = 0 WHERE id = :id"), {"id": kr}
    )
    await db.execute(text("UPDATE objectives SET progress = 0.01 WHERE id = :id"), {"id": o})
    await full_recalculation(db, g.org_id, now=MIDWAY)
    assert await kr_score(db, kr) == pytest.approx(0.6)
    assert (await progress(db, o))[0] == pytest.approx(0.6)


async def logged_values(db: AsyncSession, kid: uuid.UUID) -> tuple[object, ...]:
    columns = (KeyResult.confidence, KeyResult.last_check_in_at, KeyResult.score_updated_at)
    return tuple((await db.execute(select(*columns).where(KeyResult.id == kid))).one())


async def test_full_recalculation_refreshes_the_log_alone_without_a_score_change(
    db: AsyncSession,
) -> None:
    """The leaves' statement also re-derives the check-in values (full_pass.py): a row
    whose log values drifted but whose score did not gets them back, with no history
    row, no event and its score's time kept."""
    g = await GraphBuilder.create(db)
    kr = await g.kr(await g.objective())
    principal = system_principal(g.org_id)
    await record_check_in(db, principal, kr, 70, confidence=8, now=MIDWAY)
    await full_recalculation(db, g.org_id, now=MIDWAY)
    logged = await logged_values(db, kr)
    history = select(func.count()).select_from(ScoreHistory)
    events = select(func.count()).select_from(OutboxEvent)
    before = (await db.scalar(history), await db.scalar(events))
    await db.execute(
        text("UPDATE key_results SET confidence = 7, last_check_in_at = NULL WHERE id = :id"),
        {"id": kr},
    )
    again = await full_recalculation(db, g.org_id, now=MIDWAY)
    assert again.changes == []
    assert logged[0] == 8
    assert await logged_values(db, kr) == logged
    assert (await db.scalar(history), await db.scalar(events)) == before
