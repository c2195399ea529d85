"""closeCycle: grading, frozen scores, carry-over per policy, the next cycle, dry runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.cycles.next_cycle import next_cycle_name, next_period
from okrgraph.domain.errors import Conflict
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import (
    Alignment,
    AuditEntry,
    CheckIn,
    CloseJob,
    Cycle,
    KeyResult,
    KpiLink,
    Objective,
    OutboxEvent,
    Reflection,
)
from okrgraph.domain.models.enums import (
    Cadence,
    CloseJobState,
    CycleState,
    KeyResultDriver,
    KeyResultState,
    Level,
    ObjectiveState,
    OrgRole,
    Outcome,
)
from okrgraph.domain.scores.pending_events import process_pending_events
from okrgraph.domain.scores.service import full_recalculation, sync_kpis
from okrgraph.schema.node import to_global_id
from tests.api.security.world import changed, snapshot
from tests.api.statements import statements_on
from tests.factories import (
    make_alignment,
    make_cycle,
    make_key_result,
    make_kpi,
    make_kpi_link,
    make_measurement,
    make_objective,
    make_org,
    make_reflection,
    make_token,
)
from tests.gql import data

CLOSE = """mutation($input: CloseCycleInput!, $key: String) {
closeCycle(input: $input, idempotencyKey: $key) {
  __typename ... on UserError { message } ... on ValidationError { field }
  ... on CloseCycleSuccess {
    dryRun nextCycleName cycle { id name state }
    summary { keyResultsFrozen objectivesCarriedOver keyResultsCarriedOver
              objectives { objectiveId title finalScore outcome carriedOverToId } }
  }
} }"""


@dataclass
class Quarter:
    """2026-Q3 (in the year 2026, with the yearly `mission`), check-ins recorded and
    not yet rolled up: `good` at 0.8, `poor` at 0.3 (aligned to `mission`), `child`
    at 0.1 (aligned to `poor`), a DRAFT and a CANCELLED objective."""

    org_id: uuid.UUID
    token: str
    year: Cycle
    cycle: Cycle
    mission: Objective
    good: Objective
    poor: Objective
    child: Objective
    draft: Objective
    cancelled: Objective
    kr: dict[str, KeyResult]


async def _quarter(db: AsyncSession, name: str = "2026-Q3") -> Quarter:
    org = await make_org(db)
    o = org.id
    _, token = await make_token(db, o, role=OrgRole.ADMIN, scopes=["read", "write", "admin"])
    year = await make_cycle(
        db,
        o,
        cadence=Cadence.YEAR,
        name="2026",
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
    )
    start, end = (date(2026, 7, 1), date(2026, 9, 30))
    if name.endswith("Q4"):
        start, end = date(2026, 10, 1), date(2026, 12, 31)
    cycle = await make_cycle(
        db, o, name=name, starts_on=start, ends_on=end, parent_cycle_id=year.id
    )
    mission = await make_objective(db, o, cycle_id=year.id, title="Mission")
    good = await make_objective(db, o, cycle_id=cycle.id, title="Good")
    poor = await make_objective(db, o, level=Level.TEAM, cycle_id=cycle.id, title="Poor")
    child = await make_objective(db, o, level=Level.TEAM, cycle_id=cycle.id, title="Child")
    draft = await make_objective(db, o, cycle_id=cycle.id, state=ObjectiveState.DRAFT)
    cancelled = await make_objective(db, o, cycle_id=cycle.id, state=ObjectiveState.CANCELLED)
    await make_alignment(db, o, child_objective_id=poor.id, parent_objective_id=mission.id)
    await make_alignment(db, o, child_objective_id=child.id, parent_objective_id=poor.id, weight=2)
    kr = {}
    for key, objective, value, weight in (
        ("good", good, 80.0, 1.0),
        ("poor_a", poor, 40.0, 1.0),
        ("poor_b", poor, 20.0, 1.0),
        ("poor_done", poor, 100.0, 0.0),  # finished: frozen, never carried
        ("child", child, 10.0, 1.0),
        ("draft", draft, 50.0, 1.0),
    ):
        kr[key] = await make_key_result(
            db, o, objective_id=objective.id, weight=weight, unit="%", stretch=key == "poor_b"
        )
        await record_check_in(
            db, principal=system_principal(o), key_result_id=kr[key].id, value=value, confidence=6
        )
    kr["poor_cancelled"] = await make_key_result(
        db, o, objective_id=poor.id, state=KeyResultState.CANCELLED
    )
    return Quarter(o, token, year, cycle, mission, good, poor, child, draft, cancelled, kr)


async def _close(
    client: httpx.AsyncClient,
    token: str,
    cycle_id: uuid.UUID,
    key: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    variables = {"id": to_global_id("Cycle", cycle_id), **fields}
    body = await data(client, token, CLOSE, input=variables, key=key)
    result: dict[str, Any] = body["closeCycle"]
    return result


async def _fresh(db: AsyncSession, model: Any, *where: Any) -> list[Any]:
    stmt = select(model).where(*where).execution_options(populate_existing=True)
    return list((await db.execute(stmt)).scalars())


async def _one(db: AsyncSession, model: Any, id: uuid.UUID) -> Any:
    (row,) = await _fresh(db, model, model.id == id)
    return row


async def _copies(db: AsyncSession, cycle_name: str) -> dict[str, Objective]:
    """The objectives of the named cycle, by title."""
    (cycle,) = await _fresh(db, Cycle, Cycle.name == cycle_name)
    return {o.title: o for o in await _fresh(db, Objective, Objective.cycle_id == cycle.id)}


# --- grading and freezing -------------------------------------------------------------


async def test_close_freezes_scores_grades_and_reflects(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    q = await _quarter(db)
    await make_reflection(
        db, q.org_id, objective_id=q.good.id, cycle_id=q.cycle.id, what_worked="Focus",
        final_score=0.1, outcome=Outcome.MISSED,
    )  # fmt: skip
    result = await _close(client, q.token, q.cycle.id)
    assert result["__typename"] == "CloseCycleSuccess", result
    assert result["dryRun"] is False
    assert result["cycle"]["state"] == "CLOSED"
    assert result["nextCycleName"] == "2026-Q4"

    # the pending check-ins were rolled up first: the frozen numbers include them
    good, poor, child = [await _one(db, Objective, o.id) for o in (q.good, q.poor, q.child)]
    assert (good.final_score, good.state) == (pytest.approx(0.8), ObjectiveState.ACHIEVED)
    assert (poor.final_score, poor.state) == (pytest.approx(0.3), ObjectiveState.MISSED)
    assert (child.final_score, child.state) == (pytest.approx(0.1), ObjectiveState.MISSED)
    for key in ("good", "poor_a", "poor_b", "poor_done", "child"):
        kr = await _one(db, KeyResult, q.kr[key].id)
        assert kr.final_score == kr.score, key
    assert (await _one(db, KeyResult, q.kr["poor_a"].id)).final_score == pytest.approx(0.4)
    for untouched in (q.draft, q.cancelled):
        row = await _one(db, Objective, untouched.id)
        assert (row.final_score, row.state) == (None, untouched.state)
    assert (await _one(db, KeyResult, q.kr["draft"].id)).final_score is None
    assert (await _one(db, KeyResult, q.kr["poor_cancelled"].id)).final_score is None

    reflections = {
        r.objective_id: r for r in await _fresh(db, Reflection, Reflection.cycle_id == q.cycle.id)
    }
    assert set(reflections) == {q.good.id, q.poor.id, q.child.id}
    assert reflections[q.good.id].outcome is Outcome.ACHIEVED
    assert reflections[q.good.id].final_score == pytest.approx(0.8)
    assert reflections[q.good.id].what_worked == "Focus"  # kept
    assert reflections[q.poor.id].outcome is Outcome.CARRIED_OVER
    assert reflections[q.poor.id].final_score == pytest.approx(0.3)

    grades = {g["title"]: g for g in result["summary"]["objectives"]}
    assert set(grades) == {"Good", "Poor", "Child"}
    assert grades["Good"]["outcome"] == "ACHIEVED"
    assert grades["Good"]["carriedOverToId"] is None
    assert grades["Poor"]["finalScore"] == pytest.approx(0.3)
    assert grades["Poor"]["outcome"] == "CARRIED_OVER"
    assert result["summary"]["keyResultsFrozen"] == 5

    cycle = await _one(db, Cycle, q.cycle.id)
    assert cycle.state is CycleState.CLOSED
    assert cycle.closed_at is not None
    (event,) = await _fresh(db, OutboxEvent, OutboxEvent.type == "cycle.closed")
    assert event.subject_id == q.cycle.id
    assert event.payload["objectives_carried_over"] == 2
    assert await _fresh(db, AuditEntry, AuditEntry.action == "cycle.closed")

    # closed: a check-in is refused and a full recalculation changes no final score
    with pytest.raises(Conflict):
        await record_check_in(
            db, principal=system_principal(q.org_id), key_result_id=q.kr["good"].id, value=100
        )
    await full_recalculation(db, q.org_id)
    assert (await _one(db, Objective, q.good.id)).final_score == pytest.approx(0.8)
    assert (await _one(db, KeyResult, q.kr["poor_a"].id)).final_score == pytest.approx(0.4)
    assert (await _one(db, Objective, q.poor.id)).final_score == pytest.approx(0.3)


async def test_close_freezes_what_a_full_recalculation_gives_whatever_is_pending(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    """The check-ins of `_quarter` are still pending, and `Steady` holds a stale
    progress no pending event names (drift, as the lost `contributes` roll-up left):
    a dry run and the close both freeze the full recalculation's numbers."""
    q = await _quarter(db)
    steady = await make_objective(db, q.org_id, cycle_id=q.cycle.id, title="Steady", progress=0.75)
    await make_key_result(
        db, q.org_id, objective_id=steady.id, current_value=50.0, score=0.5, title="Half"
    )
    pending_before = await db.scalar(
        select(func.count())
        .select_from(OutboxEvent)
        .where(OutboxEvent.processed_at.is_(None), OutboxEvent.payload.has_key("recalc"))
    )
    assert pending_before

    async with db.begin_nested() as savepoint:  # what a full pass gives now, not kept
        await full_recalculation(db, q.org_id)
        titles = ("Good", "Poor", "Child", "Steady")
        full = {
            o.title: o.progress for o in await _fresh(db, Objective, Objective.title.in_(titles))
        }
        await savepoint.rollback()
    assert full["Steady"] == pytest.approx(0.5)

    dry = await _close(client, q.token, q.cycle.id, dryRun=True)
    planned = {g["title"]: g for g in dry["summary"]["objectives"]}
    assert {t: g["finalScore"] for t, g in planned.items()} == pytest.approx(full)
    assert planned["Steady"]["outcome"] == "CARRIED_OVER"  # 0.5: missed, not achieved
    assert (await _one(db, Objective, steady.id)).progress == 0.75  # a dry run keeps nothing

    real = await _close(client, q.token, q.cycle.id)
    graded = {g["title"]: g["finalScore"] for g in real["summary"]["objectives"]}
    assert graded == pytest.approx(full)
    row = await _one(db, Objective, steady.id)
    assert (row.final_score, row.state) == (pytest.approx(0.5), ObjectiveState.MISSED)


# --- carry-over -------------------------------------------------------------------------


async def test_carry_remainder_continues_the_current_value(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    q = await _quarter(db)
    result = await _close(client, q.token, q.cycle.id, carryOver="CARRY_REMAINDER")
    summary = result["summary"]
    assert (summary["objectivesCarriedOver"], summary["keyResultsCarriedOver"]) == (2, 3)
    copies = await _copies(db, "2026-Q4")
    assert set(copies) == {"Poor", "Child"}
    poor, child = copies["Poor"], copies["Child"]
    assert poor.carried_over_from_id == q.poor.id
    assert child.carried_over_from_id == q.child.id
    assert (poor.level, poor.owner_team_id, poor.state) == (
        Level.TEAM, q.poor.owner_team_id, ObjectiveState.ACTIVE,
    )  # fmt: skip
    grades = {g["title"]: g for g in summary["objectives"]}
    assert grades["Poor"]["carriedOverToId"] == to_global_id("Objective", poor.id)

    krs = {k.title: k for k in await _fresh(db, KeyResult, KeyResult.objective_id == poor.id)}
    assert set(krs) == {q.kr["poor_a"].title, q.kr["poor_b"].title}  # not done, not cancelled
    new_b = krs[q.kr["poor_b"].title]
    assert (new_b.start_value, new_b.target_value, new_b.unit, new_b.stretch) == (0, 100, "%", True)
    (carried,) = await _fresh(db, CheckIn, CheckIn.key_result_id == new_b.id)
    assert (carried.value, carried.comment) == (20, "Carried over from 2026-Q3")
    # each carried key result can be traced back, in the rows and through the API
    assert {k.carried_over_from_id for k in krs.values()} == {
        q.kr["poor_a"].id,
        q.kr["poor_b"].id,
    }
    traced = await data(
        client,
        q.token,
        "query($id: ID!) { node(id: $id) { ... on KeyResult { carriedOverFrom { id title } } } }",
        id=to_global_id("KeyResult", new_b.id),
    )
    assert traced["node"]["carriedOverFrom"] == {
        "id": to_global_id("KeyResult", q.kr["poor_b"].id),
        "title": q.kr["poor_b"].title,
    }

    await process_pending_events(db, q.org_id)
    assert (await _one(db, KeyResult, new_b.id)).score == pytest.approx(0.2)
    assert (await _one(db, KeyResult, krs[q.kr["poor_a"].title].id)).score == pytest.approx(0.4)
    assert (await _one(db, Objective, poor.id)).progress == pytest.approx(0.3)

    # the child's copy supports the parent's copy; the parent's copy the same mission
    edges = {
        (a.child_objective_id, a.parent_objective_id, a.weight)
        for a in await _fresh(db, Alignment, Alignment.child_objective_id.in_([poor.id, child.id]))
    }
    assert edges == {(child.id, poor.id, 2.0), (poor.id, q.mission.id, 1.0)}


async def test_rebaseline_starts_at_the_old_current_value(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    q = await _quarter(db)
    result = await _close(client, q.token, q.cycle.id, carryOver="REBASELINE")
    assert result["summary"]["keyResultsCarriedOver"] == 3
    poor = (await _copies(db, "2026-Q4"))["Poor"]
    krs = await _fresh(db, KeyResult, KeyResult.objective_id == poor.id)
    assert sorted((k.start_value, k.target_value) for k in krs) == [(20, 100), (40, 100)]
    assert not await _fresh(db, CheckIn, CheckIn.key_result_id.in_([k.id for k in krs]))
    await process_pending_events(db, q.org_id)
    assert [(await _one(db, KeyResult, k.id)).score for k in krs] == [0, 0]


async def test_close_as_missed_carries_nothing(client: httpx.AsyncClient, db: AsyncSession) -> None:
    q = await _quarter(db)
    result = await _close(client, q.token, q.cycle.id, carryOver="CLOSE_AS_MISSED")
    assert result["summary"]["objectivesCarriedOver"] == 0
    assert {g["outcome"] for g in result["summary"]["objectives"]} == {"ACHIEVED", "MISSED"}
    assert await _copies(db, "2026-Q4") == {}
    assert not await _fresh(db, Objective, Objective.carried_over_from_id.is_not(None))
    (poor,) = await _fresh(db, Reflection, Reflection.objective_id == q.poor.id)
    assert poor.outcome is Outcome.MISSED


async def test_alignments_to_key_results_follow_the_same_rules(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    q = await _quarter(db)
    yearly_kr = await make_key_result(db, q.org_id, objective_id=q.mission.id)
    parents = {
        "To a carried KR": q.kr["poor_a"].id,  # -> its copy
        "To a yearly KR": yearly_kr.id,  # -> the same KR
        "To an achieved KR": q.kr["good"].id,  # stays behind: no edge
    }
    for title, parent_kr in parents.items():
        child = await make_objective(db, q.org_id, cycle_id=q.cycle.id, title=title)
        await make_alignment(
            db, q.org_id, child_objective_id=child.id, parent_key_result_id=parent_kr
        )
    await _close(client, q.token, q.cycle.id)
    copies = await _copies(db, "2026-Q4")
    (poor_a_copy,) = await _fresh(
        db,
        KeyResult,
        KeyResult.objective_id == copies["Poor"].id,
        KeyResult.title == q.kr["poor_a"].title,
    )
    edges = {
        title: [a.parent_key_result_id for a in await _fresh(
            db, Alignment, Alignment.child_objective_id == copies[title].id
        )]
        for title in parents
    }  # fmt: skip
    assert edges == {
        "To a carried KR": [poor_a_copy.id],
        "To a yearly KR": [yearly_kr.id],
        "To an achieved KR": [],
    }


async def test_the_copies_follow_the_same_kpis(client: httpx.AsyncClient, db: AsyncSession) -> None:
    q = await _quarter(db)
    kpi = await make_kpi(db, q.org_id)
    await make_measurement(db, q.org_id, kpi_id=kpi.id, value=30.0)
    followed = await make_key_result(
        db, q.org_id, objective_id=q.poor.id, weight=0, progress_driver=KeyResultDriver.KPI,
        title="Followed",
    )  # fmt: skip
    await make_kpi_link(db, q.org_id, kpi_id=kpi.id, key_result_id=followed.id)
    await make_kpi_link(db, q.org_id, kpi_id=kpi.id, objective_id=q.poor.id)
    await sync_kpis(db, q.org_id)
    assert (await _one(db, KeyResult, followed.id)).score == pytest.approx(0.3)
    await _close(client, q.token, q.cycle.id)
    poor = (await _copies(db, "2026-Q4"))["Poor"]
    (copy,) = await _fresh(
        db, KeyResult, KeyResult.objective_id == poor.id, KeyResult.title == "Followed"
    )
    links = {
        (k.key_result_id, k.objective_id)
        for k in await _fresh(db, KpiLink, KpiLink.kpi_id == kpi.id)
    }
    assert links == {(followed.id, None), (None, q.poor.id), (copy.id, None), (None, poor.id)}
    await process_pending_events(db, q.org_id)
    copy = await _one(db, KeyResult, copy.id)
    assert (copy.current_value, copy.score) == (30.0, pytest.approx(0.3))


# --- the next cycle ---------------------------------------------------------------------


def test_next_cycle_names_and_periods() -> None:
    assert next_cycle_name("2026-Q4") == "2027-Q1"
    assert next_cycle_name("2026-Q1") == "2026-Q2"
    assert next_cycle_name("2026") == "2027"
    assert next_cycle_name("Sprint 7") == "Sprint 7 (next)"
    assert next_period(date(2026, 10, 1), date(2026, 12, 31)) == (
        date(2027, 1, 1), date(2027, 3, 31),
    )  # fmt: skip
    assert next_period(date(2026, 1, 1), date(2026, 12, 31)) == (
        date(2027, 1, 1), date(2027, 12, 31),
    )  # fmt: skip
    assert next_period(date(2026, 3, 2), date(2026, 3, 15)) == (
        date(2026, 3, 16), date(2026, 3, 29),
    )  # fmt: skip


async def test_a_missing_next_cycle_is_created(client: httpx.AsyncClient, db: AsyncSession) -> None:
    q = await _quarter(db, "2026-Q4")
    result = await _close(client, q.token, q.cycle.id)
    assert result["nextCycleName"] == "2027-Q1"
    (created,) = await _fresh(db, Cycle, Cycle.name == "2027-Q1")
    assert (created.starts_on, created.ends_on) == (date(2027, 1, 1), date(2027, 3, 31))
    assert (created.cadence, created.state) == (Cadence.QUARTER, CycleState.PLANNING)
    assert created.parent_cycle_id is None  # 2027-Q1 does not fit in 2026
    copies = await _copies(db, "2027-Q1")
    assert set(copies) == {"Poor", "Child"}
    # the mission lives in 2026, which does not contain 2027-Q1: no edge to it
    edges = await _fresh(db, Alignment, Alignment.child_objective_id == copies["Poor"].id)
    assert edges == []


async def test_an_existing_next_cycle_is_used(client: httpx.AsyncClient, db: AsyncSession) -> None:
    q = await _quarter(db)
    later = await make_cycle(
        db, q.org_id, name="Q4 plan", starts_on=date(2026, 10, 1), state=CycleState.PLANNING,
        parent_cycle_id=q.year.id,
    )  # fmt: skip
    await make_cycle(  # later still: not the earliest
        db, q.org_id, name="Q1 plan", starts_on=date(2027, 1, 1), ends_on=date(2027, 3, 31),
        state=CycleState.PLANNING,
    )  # fmt: skip
    cycles = len(await _fresh(db, Cycle))
    result = await _close(client, q.token, q.cycle.id)
    assert result["nextCycleName"] == "Q4 plan"
    assert len(await _fresh(db, Cycle)) == cycles
    assert set(await _copies(db, "Q4 plan")) == {"Poor", "Child"}
    assert (await _one(db, Cycle, later.id)).state is CycleState.PLANNING


async def test_a_bad_next_cycle_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    q = await _quarter(db)
    closed = await make_cycle(db, q.org_id, starts_on=date(2026, 10, 1), state=CycleState.CLOSED)
    earlier = await make_cycle(
        db, q.org_id, starts_on=date(2026, 4, 1), ends_on=date(2026, 6, 30),
        state=CycleState.PLANNING,
    )  # fmt: skip
    before = await snapshot(db, q.org_id)
    for bad in (closed.id, earlier.id, q.cycle.id):
        result = await _close(client, q.token, q.cycle.id, nextCycleId=to_global_id("Cycle", bad))
        assert (result["__typename"], result.get("field")) == (
            "ValidationError", "input.nextCycleId",
        ), result  # fmt: skip
        assert changed(before, await snapshot(db, q.org_id)) == {}


# --- dry run ----------------------------------------------------------------------------


def _without_new_ids(result: dict[str, Any]) -> dict[str, Any]:
    summary = result["summary"]
    objectives = [{**g, "carriedOverToId": None} for g in summary["objectives"]]
    return {"nextCycleName": result["nextCycleName"], **summary, "objectives": objectives}


async def test_a_dry_run_writes_nothing_and_plans_what_the_real_run_does(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    q = await _quarter(db)  # with pending roll-up events, which a close processes
    before = await snapshot(db, q.org_id)
    dry = await _close(client, q.token, q.cycle.id, dryRun=True)
    assert dry["__typename"] == "CloseCycleSuccess", dry
    assert dry["dryRun"] is True
    assert dry["cycle"]["state"] == "ACTIVE"
    assert all(g["carriedOverToId"] is None for g in dry["summary"]["objectives"])
    assert changed(before, await snapshot(db, q.org_id)) == {}

    real = await _close(client, q.token, q.cycle.id)
    assert real["dryRun"] is False
    assert real["cycle"]["state"] == "CLOSED"
    assert _without_new_ids(dry) == _without_new_ids(real)
    assert real["summary"]["objectivesCarriedOver"] == 2
    assert sum(g["carriedOverToId"] is not None for g in real["summary"]["objectives"]) == 2


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_result(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    q = await _quarter(db)
    first = await _close(client, q.token, q.cycle.id, key="close-q3")
    assert first["__typename"] == "CloseCycleSuccess"
    objectives = len(await _fresh(db, Objective))
    again = await _close(client, q.token, q.cycle.id, key="close-q3")
    assert again == first
    assert len(await _fresh(db, Objective)) == objectives


# --- refusals ---------------------------------------------------------------------------


async def test_planning_and_closed_cycles_are_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    q = await _quarter(db)
    planning = await make_cycle(db, q.org_id, state=CycleState.PLANNING)
    closed = await make_cycle(db, q.org_id, state=CycleState.CLOSED)
    before = await snapshot(db, q.org_id)
    for cycle in (planning, closed):
        result = await _close(client, q.token, cycle.id)
        assert result["__typename"] == "Conflict", result
    assert changed(before, await snapshot(db, q.org_id)) == {}
    assert (await _close(client, q.token, q.cycle.id))["__typename"] == "CloseCycleSuccess"
    again = await _close(client, q.token, q.cycle.id)
    assert again["__typename"] == "Conflict"


async def test_only_admins_close(client: httpx.AsyncClient, db: AsyncSession) -> None:
    q = await _quarter(db)
    _, member = await make_token(db, q.org_id, role=OrgRole.MEMBER)
    _, admin_rw = await make_token(db, q.org_id, role=OrgRole.ADMIN)  # read+write only
    for token in (member, admin_rw):
        result = await _close(client, token, q.cycle.id, dryRun=True)
        assert result["__typename"] == "Forbidden", result
    count = select(func.count()).select_from(Cycle).where(Cycle.state == CycleState.CLOSED)
    assert (await db.execute(count)).scalar_one() == 0


# --- Cycle.closeJob ---------------------------------------------------------------------

CYCLES_WITH_JOBS = "{ cycles(first: 50) { nodes { name closeJob { state objectives } } } }"


async def test_listed_cycles_load_their_latest_close_jobs_in_one_statement(
    client: httpx.AsyncClient,
    db: AsyncSession,
    app_engine: AsyncEngine,
) -> None:
    async def org_of(cycles: int) -> tuple[str, dict[str, Any]]:
        """`cycles` cycles, each but the first with a FAILED close job, then a DONE one."""
        org = await make_org(db)
        _, token = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read"])
        expected: dict[str, Any] = {}
        for n in range(cycles):
            cycle = await make_cycle(db, org.id)
            expected[cycle.name] = None
            if n == 0:
                continue
            for age, state in ((2, CloseJobState.FAILED), (1, CloseJobState.DONE)):
                db.add(
                    CloseJob(
                        org_id=org.id,
                        id=uuid.uuid4(),
                        cycle_id=cycle.id,
                        state=state,
                        carry_over="CARRY_REMAINDER",
                        objectives=n * 10 + age,
                        created_at=datetime.now(UTC) - timedelta(hours=age),
                    )
                )
            expected[cycle.name] = {"state": "DONE", "objectives": n * 10 + 1}
        await db.flush()
        return token, expected

    statements = []
    for size in (2, 8):
        token, expected = await org_of(size)
        with statements_on(app_engine) as sql:
            body = await data(client, token, CYCLES_WITH_JOBS)
        listed = {c["name"]: c["closeJob"] for c in body["cycles"]["nodes"]}
        assert listed == expected
        statements.append(sum("close_jobs" in s for s in sql))
    assert statements == [1, 1]
