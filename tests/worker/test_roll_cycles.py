"""The `roll_cycles` cron against committed data: grading, closing, idempotence, tenants."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.cycles.closing import Closing, close_cycle
from okrgraph.domain.cycles.rolling import GRADING_DAYS
from okrgraph.domain.db import tenant_session
from okrgraph.domain.errors import Conflict
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import (
    AuditEntry,
    CheckIn,
    Cycle,
    KeyResult,
    Objective,
    Reflection,
)
from okrgraph.domain.models.enums import CycleState, ObjectiveState
from okrgraph.domain.scores.service import full_recalculation
from okrgraph.worker.jobs.cycles import roll_cycles
from okrgraph.worker.settings import WorkerSettings
from tests.worker.conftest import Committed
from tests.worker.graphs import GraphBuilder

# Noon today (okrgraph's clock, as GraphBuilder's default cycle around today is), so
# the test means the same on any date and under `pytest --clock-at`.
NOW = datetime.combine(clock.now().date(), time(12), UTC)
TODAY = NOW.date()
CHECKED_IN = NOW - timedelta(days=19, hours=3)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


@dataclass
class Org:
    """Cycles relative to TODAY: `ended_yesterday` and `ends_tomorrow` (ACTIVE),
    `due` (GRADING, ended 15 days ago: `missed` at 0.3, `hit` at 0.9) and `recent`
    (GRADING, ended 3 days ago)."""

    id: uuid.UUID
    ended_yesterday: uuid.UUID
    ends_tomorrow: uuid.UUID
    due: uuid.UUID
    recent: uuid.UUID
    missed: uuid.UUID
    missed_kr: uuid.UUID
    hit: uuid.UUID


async def build_org(sm: async_sessionmaker[AsyncSession], timezone: str = "UTC") -> Org:
    org_id = uuid.uuid4()
    async with tenant_session(sm, org_id) as session:
        g = await GraphBuilder.create(session, org_id=org_id, timezone=timezone)
        # All start before `due` ends: none of them is taken for its next cycle.
        start = days_ago(100)
        ended_yesterday = await g.cycle(starts_on=start, ends_on=days_ago(1))
        ends_tomorrow = await g.cycle(starts_on=start, ends_on=days_ago(-1))
        due = await g.cycle(starts_on=start, ends_on=days_ago(15), state=CycleState.GRADING)
        recent = await g.cycle(starts_on=start, ends_on=days_ago(3), state=CycleState.GRADING)
        missed = await g.objective(cycle_id=due)
        missed_kr = await g.kr(missed)
        hit = await g.objective(cycle_id=due)
        hit_kr = await g.kr(hit)
        for kr, value in ((missed_kr, 30.0), (hit_kr, 90.0)):
            await record_check_in(
                session,
                principal=system_principal(org_id),
                key_result_id=kr,
                value=value,
                now=CHECKED_IN,
            )
        await full_recalculation(session, org_id, now=NOW)
    return Org(org_id, ended_yesterday, ends_tomorrow, due, recent, missed, missed_kr, hit)


def job_ctx(committed: Committed, now: datetime = NOW) -> dict[str, Any]:
    return {"sessionmaker": committed.sessionmaker, "now": now}


async def states(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> dict[uuid.UUID, str]:
    async with tenant_session(sm, org) as session:
        rows = await session.execute(select(Cycle.id, Cycle.state))
        return {r.id: r.state.value for r in rows}


async def rows(sm: async_sessionmaker[AsyncSession], org: uuid.UUID, model: Any) -> list[Any]:
    async with tenant_session(sm, org) as session:
        return list((await session.execute(select(model))).scalars())


async def counts(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> dict[str, int]:
    out = {}
    for model in (Cycle, Objective, KeyResult, CheckIn, Reflection, AuditEntry):
        async with tenant_session(sm, org) as session:
            out[model.__name__] = int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
    return out


def test_the_cron_is_registered_hourly() -> None:
    (job,) = [j for j in WorkerSettings.cron_jobs if j.coroutine is roll_cycles]
    assert (job.minute, job.run_at_startup, job.keep_result_s) == (5, True, 0)


async def test_ended_cycles_are_graded_and_graded_ones_closed_after_the_window(
    committed: Committed,
) -> None:
    sm = committed.sessionmaker
    org = await build_org(sm)
    before = {o.id: o.progress for o in await rows(sm, org.id, Objective)}
    assert before[org.missed] == pytest.approx(0.3)

    assert await roll_cycles(job_ctx(committed)) == {"graded": 1, "closed": 1, "failed": 0}

    cycles = await states(sm, org.id)
    assert cycles[org.ended_yesterday] == "GRADING"
    assert cycles[org.ends_tomorrow] == "ACTIVE"
    assert cycles[org.due] == "CLOSED"
    assert cycles[org.recent] == "GRADING"
    (due,) = [c for c in await rows(sm, org.id, Cycle) if c.id == org.due]
    assert due.closed_at == NOW

    objectives = {o.id: o for o in await rows(sm, org.id, Objective)}
    missed, hit = objectives[org.missed], objectives[org.hit]
    assert (missed.state, missed.final_score) == (ObjectiveState.MISSED, before[org.missed])
    assert (hit.state, hit.final_score) == (ObjectiveState.ACHIEVED, before[org.hit])
    assert hit.final_score == pytest.approx(0.9)
    krs = {k.id: k for k in await rows(sm, org.id, KeyResult)}
    assert krs[org.missed_kr].final_score == pytest.approx(0.3)

    # The missed objective (not the achieved one) continues in a new next cycle.
    (copy,) = [o for o in objectives.values() if o.carried_over_from_id is not None]
    assert copy.carried_over_from_id == org.missed
    (next_cycle,) = [c for c in await rows(sm, org.id, Cycle) if c.id == copy.cycle_id]
    assert (next_cycle.state, next_cycle.starts_on) == (CycleState.PLANNING, days_ago(14))
    (copied_kr,) = [k for k in krs.values() if k.objective_id == copy.id]
    (carried,) = [c for c in await rows(sm, org.id, CheckIn) if c.key_result_id == copied_kr.id]
    assert carried.value == 30.0  # CARRY_REMAINDER: the current value continues

    # Done by the system: an audit entry with neither person nor token.
    audit = {(a.action, a.subject_id): a for a in await rows(sm, org.id, AuditEntry)}
    graded = audit[("cycle.updated", org.ended_yesterday)]
    assert (graded.changes, graded.actor_person_id, graded.actor_token_id) == (
        {"state": "GRADING"}, None, None,
    )  # fmt: skip
    assert audit[("cycle.closed", org.due)].actor_token_id is None


async def test_the_grading_window_ends_after_grading_days(committed: Committed) -> None:
    sm = committed.sessionmaker
    org = await build_org(sm)
    # 3 days ago + 10 days = 13 days after its end: still open for reflections.
    await roll_cycles(job_ctx(committed, NOW + timedelta(days=GRADING_DAYS - 4)))
    assert (await states(sm, org.id))[org.recent] == "GRADING"
    # 14 days after its end it closes.
    result = await roll_cycles(job_ctx(committed, NOW + timedelta(days=GRADING_DAYS - 3)))
    assert result["closed"] == 1  # `recent` only: `ended_yesterday` ended 12 days before
    assert (await states(sm, org.id))[org.recent] == "CLOSED"


async def test_a_second_run_changes_nothing(committed: Committed) -> None:
    sm = committed.sessionmaker
    org = await build_org(sm)
    await roll_cycles(job_ctx(committed))
    after_first = (await states(sm, org.id), await counts(sm, org.id))

    assert await roll_cycles(job_ctx(committed)) == {"graded": 0, "closed": 0, "failed": 0}
    assert (await states(sm, org.id), await counts(sm, org.id)) == after_first


async def test_two_runs_at_once_grade_and_close_each_cycle_once(committed: Committed) -> None:
    sm = committed.sessionmaker
    org = await build_org(sm)
    baseline = await counts(sm, org.id)

    first, second = await asyncio.gather(
        roll_cycles(job_ctx(committed)), roll_cycles(job_ctx(committed))
    )

    assert first["failed"] == second["failed"] == 0
    assert (first["graded"] + second["graded"], first["closed"] + second["closed"]) == (1, 1)
    cycles = await states(sm, org.id)
    assert (cycles[org.ended_yesterday], cycles[org.due]) == ("GRADING", "CLOSED")
    grew = {k: v - baseline[k] for k, v in (await counts(sm, org.id)).items()}
    # one next cycle, one copy of the missed objective and of its key result, with
    # its carried check-in, two reflections
    assert {k: grew[k] for k in ("Cycle", "Objective", "KeyResult", "CheckIn", "Reflection")} == {
        "Cycle": 1, "Objective": 1, "KeyResult": 1, "CheckIn": 1, "Reflection": 2,
    }  # fmt: skip
    audit = await rows(sm, org.id, AuditEntry)
    assert [a.subject_id for a in audit if a.action == "cycle.closed"] == [org.due]
    graded = [a.subject_id for a in audit if a.action == "cycle.updated"]
    assert graded == [org.ended_yesterday]


async def test_each_organisation_in_its_own_tenant_and_time_zone_one_failure_stays_alone(
    committed: Committed,
) -> None:
    sm = committed.sessionmaker
    broken, other = await build_org(sm), await build_org(sm, timezone="Pacific/Kiritimati")
    async with tenant_session(sm, broken.id) as session:
        g = GraphBuilder(session, broken.id, broken.due)
        # Legacy data the close cannot copy (an INCREASE target below its start):
        # closing this cycle fails, and fails again on every run.
        failing = await g.cycle(
            starts_on=days_ago(100), ends_on=days_ago(20), state=CycleState.GRADING
        )
        bad = await g.objective(cycle_id=failing)
        await g.kr(bad, start=100.0, target=50.0)
    # It is already Saturday on Kiritimati (UTC+14): yesterday, Friday, was the last day.
    async with tenant_session(sm, other.id) as session:
        g = GraphBuilder(session, other.id, other.due)
        ended_friday = await g.cycle(starts_on=days_ago(100), ends_on=TODAY)
    async with tenant_session(sm, broken.id) as session:
        g = GraphBuilder(session, broken.id, broken.due)
        ends_friday = await g.cycle(starts_on=days_ago(100), ends_on=TODAY)
    before = await counts(sm, broken.id)

    result = await roll_cycles(job_ctx(committed))

    assert result == {"graded": 1 + 2, "closed": 2, "failed": 1}
    mine = await states(sm, broken.id)
    assert (mine[failing], mine[broken.due], mine[broken.ended_yesterday]) == (
        "GRADING", "CLOSED", "GRADING",
    )  # fmt: skip
    assert mine[ends_friday] == "ACTIVE"  # in UTC, Friday is not over
    (bad_row,) = [o for o in await rows(sm, broken.id, Objective) if o.id == bad]
    assert (bad_row.state, bad_row.final_score) == (ObjectiveState.ACTIVE, None)
    # The failed close left nothing behind: only the good close's next cycle, copy,
    # copied key result and check-in, reflections, and the audit entries.
    grew = {k: v - before[k] for k, v in (await counts(sm, broken.id)).items()}
    assert {k: grew[k] for k in ("Cycle", "Objective", "KeyResult", "Reflection")} == {
        "Cycle": 1, "Objective": 1, "KeyResult": 1, "Reflection": 2,
    }  # fmt: skip

    theirs = await states(sm, other.id)
    assert (theirs[other.due], theirs[other.ended_yesterday], theirs[ended_friday]) == (
        "CLOSED", "GRADING", "GRADING",
    )  # fmt: skip
    # Each organisation's rows stay its own: the copies live in their own tenant.
    copies = [o for o in await rows(sm, other.id, Objective) if o.carried_over_from_id]
    assert [(c.org_id, c.carried_over_from_id) for c in copies] == [(other.id, other.missed)]

    again = await roll_cycles(job_ctx(committed))
    assert again == {"graded": 0, "closed": 0, "failed": 1}


async def test_two_closes_of_one_cycle_at_once_close_it_once(committed: Committed) -> None:
    """Two transactions race to close the same cycle (say, an admin's closeCycle and
    the cron): the row lock makes the second wait, then refuse; one copy, one next cycle."""
    sm = committed.sessionmaker
    org = await build_org(sm)
    before = await counts(sm, org.id)
    principal = system_principal(org.id)

    async def close() -> Closing:
        async with tenant_session(sm, org.id) as session:
            return await close_cycle(session, principal, org.due, now=NOW)

    results = await asyncio.gather(close(), close(), return_exceptions=True)

    closings = [r for r in results if isinstance(r, Closing)]
    refusals = [r for r in results if isinstance(r, Conflict)]
    assert (len(closings), len(refusals)) == (1, 1), results
    assert "already closed" in str(refusals[0])
    assert closings[0].objectives_carried_over == 1
    after = await counts(sm, org.id)
    assert after["Cycle"] - before["Cycle"] == 1  # one next cycle
    assert after["Objective"] - before["Objective"] == 1  # one copy of `missed`
    copies = [o for o in await rows(sm, org.id, Objective) if o.carried_over_from_id]
    assert [o.carried_over_from_id for o in copies] == [org.missed]
