"""Closing a cycle (admins): grade, freeze, carry over, open the next cycle.

`close_cycle` brings the organisation's scores current (a full recalculation at
that moment, whatever events are pending: the frozen numbers never depend on
what the incremental roll-up has reached), freezes every key result's and
objective's final score, grades the objectives (ACHIEVED at 0.7, the good
stretch result, else MISSED) with a reflection each (grading.py), copies
the missed objectives with their unfinished key results into the next cycle
per `CarryOverPolicy` (carry_over.py), and marks the cycle CLOSED. A dry run
does all of it inside a savepoint that is rolled back, so its plan is exactly
what a real run does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.carry_over import CarriedOver, CarryOverPolicy, carry_over
from okrgraph.domain.cycles.grading import (
    ObjectiveGrade,
    freeze_and_grade,
    grades_of,
    write_reflections,
)
from okrgraph.domain.cycles.next_cycle import next_cycle_for
from okrgraph.domain.errors import Conflict, ErrorCode, NotFound
from okrgraph.domain.messages import ProgressChanged
from okrgraph.domain.models import Cycle
from okrgraph.domain.models.enums import ClosePhase, CycleState, Outcome, SubjectType
from okrgraph.domain.objectives.service import OBJECTIVE_CHANGED
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.outbox.jobs import Dispatch
from okrgraph.domain.outbox.service import emit, recalc_payload, recalc_pending
from okrgraph.domain.scores.rollup import RecalcResult
from okrgraph.domain.scores.service import full_recalculation, lock_scores

CYCLE_CLOSED = "cycle.closed"


@dataclass(frozen=True)
class Closing:
    """What a close did (or, in a dry run, would do): plain data, no rows."""

    cycle_id: uuid.UUID
    dry_run: bool
    next_cycle_name: str
    objectives: list[ObjectiveGrade]
    key_results_frozen: int
    objectives_carried_over: int
    key_results_carried_over: int

    def as_json(self) -> dict[str, Any]:
        return {
            "cycle_id": str(self.cycle_id),
            "dry_run": self.dry_run,
            "next_cycle_name": self.next_cycle_name,
            "objectives": [
                {
                    "objective_id": str(g.objective_id),
                    "title": g.title,
                    "final_score": g.final_score,
                    "outcome": g.outcome.value,
                    "carried_over_to_id": str(g.carried_over_to_id)
                    if g.carried_over_to_id
                    else None,
                }
                for g in self.objectives
            ],
            "key_results_frozen": self.key_results_frozen,
            "objectives_carried_over": self.objectives_carried_over,
            "key_results_carried_over": self.key_results_carried_over,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Closing:
        return cls(
            cycle_id=uuid.UUID(data["cycle_id"]),
            dry_run=data["dry_run"],
            next_cycle_name=data["next_cycle_name"],
            objectives=[
                ObjectiveGrade(
                    objective_id=uuid.UUID(g["objective_id"]),
                    title=g["title"],
                    final_score=g["final_score"],
                    outcome=Outcome(g["outcome"]),
                    carried_over_to_id=uuid.UUID(g["carried_over_to_id"])
                    if g["carried_over_to_id"]
                    else None,
                )
                for g in data["objectives"]
            ],
            key_results_frozen=data["key_results_frozen"],
            objectives_carried_over=data["objectives_carried_over"],
            key_results_carried_over=data["key_results_carried_over"],
        )


# What a close reports as it goes (the worker's job keeps it for the API): the phase
# it enters (a ClosePhase value) and the counts known so far.
Progress = Callable[[str, dict[str, int]], Awaitable[None]]


async def _no_progress(phase: str, counts: dict[str, int]) -> None:
    return None


async def close_cycle(
    session: AsyncSession,
    principal: Principal,
    cycle_id: uuid.UUID,
    *,
    dry_run: bool = False,
    carry_over: CarryOverPolicy = CarryOverPolicy.CARRY_REMAINDER,
    next_cycle_id: uuid.UUID | None = None,
    now: datetime | None = None,
    progress: Progress = _no_progress,
    scores_held: bool = False,
) -> Closing:
    """Close the cycle; with `dry_run`, return the same plan and write nothing (nor ask
    anything after commit).

    `scores_held`: the caller committed a full recalculation at `now` and has kept the
    organisation's roll-ups out since (close_jobs.py); unless a recalculation event is
    pending (a change committed since), that pass's numbers are what this close's own
    would be, and it is not run again."""
    require_admin(principal)
    now = now or clock.now()
    buffer = AfterCommit.of(session)
    mark = buffer.mark()
    savepoint = await session.begin_nested()
    try:
        closing = await _close(
            session, principal, cycle_id, carry_over, next_cycle_id, now, progress, scores_held
        )
    except BaseException:
        await savepoint.rollback()
        buffer.rollback_to(mark)
        raise
    if not dry_run:
        await savepoint.commit()
        return closing
    await savepoint.rollback()
    buffer.rollback_to(mark)
    planned = [replace(g, carried_over_to_id=None) for g in closing.objectives]
    return replace(closing, dry_run=True, objectives=planned)


async def _close(
    session: AsyncSession,
    principal: Principal,
    cycle_id: uuid.UUID,
    policy: CarryOverPolicy,
    next_cycle_id: uuid.UUID | None,
    now: datetime,
    progress: Progress,
    scores_held: bool,
) -> Closing:
    cycle = await locked_cycle(session, cycle_id)
    check_closable(cycle)
    next_cycle = await next_cycle_for(session, principal, cycle, next_cycle_id)
    # The frozen numbers are what a full recalculation gives now: every committed
    # change included, pending or not, and nothing the incremental path missed.
    await progress(ClosePhase.RECALCULATING.value, {})
    current = await _current_scores(session, principal.org_id, now, scores_held)

    await progress(ClosePhase.GRADING.value, {})
    graded, key_results_frozen = await freeze_and_grade(session, principal.org_id, cycle.id)
    counts = {"objectives_graded": len(graded), "key_results_frozen": key_results_frozen}
    await progress(ClosePhase.CARRYING_OVER.value, counts)
    carried = await carry_over(session, principal, policy, cycle, next_cycle, now)
    counts |= {
        "objectives_carried_over": len(carried.objectives),
        "key_results_carried_over": len(carried.key_results),
    }
    await progress(ClosePhase.REFLECTING.value, counts)
    grades = grades_of(graded, carried.objectives)
    await write_reflections(session, principal, cycle.id, grades)

    await progress(ClosePhase.ANNOUNCING.value, counts)
    cycle.state = CycleState.CLOSED
    cycle.closed_at = now
    closing = Closing(
        cycle_id=cycle.id,
        dry_run=False,
        next_cycle_name=next_cycle.name,
        objectives=grades,
        key_results_frozen=key_results_frozen,
        objectives_carried_over=len(carried.objectives),
        key_results_carried_over=len(carried.key_results),
    )
    await _announce(session, principal, closing, cycle, next_cycle, carried, current)
    return closing


async def _current_scores(
    session: AsyncSession, org_id: uuid.UUID, now: datetime, held: bool
) -> RecalcResult:
    """The organisation's scores as a full recalculation gives them at `now`: its
    changes to announce (none when a committed pass is still current, see close_cycle)."""
    if held:
        await lock_scores(session, org_id)  # the caller's own: taken at once
        if not await recalc_pending(session, org_id):
            return RecalcResult()
    return await full_recalculation(session, org_id, now=now)


def check_closable(cycle: Cycle) -> None:
    if cycle.state is CycleState.PLANNING:
        raise Conflict(
            f"Cycle {cycle.name} has not started; only a started cycle closes.",
            ErrorCode.CYCLE_NOT_STARTED,
        )
    if cycle.state is CycleState.CLOSED:
        raise Conflict(f"Cycle {cycle.name} is already closed.", ErrorCode.CYCLE_CLOSED)


async def _announce(
    session: AsyncSession,
    principal: Principal,
    closing: Closing,
    cycle: Cycle,
    next_cycle: Cycle,
    carried: CarriedOver,
    current: RecalcResult,
) -> None:
    """The audit entry and CYCLE_CLOSED event, and the score job for the copies."""
    copies, kr_copies = carried.objectives, carried.key_results
    summary = closing.as_json()
    await session.flush()
    record_audit(session, principal, CYCLE_CLOSED, SubjectType.CYCLE, cycle.id, summary)
    await emit(
        session,
        org_id=principal.org_id,
        type=CYCLE_CLOSED,
        subject_type=SubjectType.CYCLE,
        subject_id=cycle.id,
        payload=summary,
    )
    # The copies get their scores (one with neither key results nor children too).
    if copies:
        await emit(
            session,
            org_id=principal.org_id,
            type=OBJECTIVE_CHANGED,
            subject_type=SubjectType.CYCLE,
            subject_id=next_cycle.id,
            payload={
                "recalc": recalc_payload(key_result_ids=kr_copies, objective_ids=copies.values())
            },
        )
    announce_changes(session, principal.org_id, current)
    await session.flush()


def announce_changes(session: AsyncSession, org_id: uuid.UUID, result: RecalcResult) -> None:
    """What a full pass changed, announced once committed as the score jobs announce
    theirs (worker/jobs/scores.py), not as an event's `recalc.written` (the 40k changes
    of a 10k-objective cycle were megabytes of JSON in an outbox row)."""
    if result.changes:
        buffer = AfterCommit.of(session)
        buffer.announce(ProgressChanged(org_id, tuple(result.changes), result.through))
        # The pass wrote their `score.changed` events in SQL, not through emit().
        buffer.request(Dispatch(org_id))


async def locked_cycle(
    session: AsyncSession, cycle_id: uuid.UUID, *, nowait: bool = False
) -> Cycle:
    """The cycle, locked: a second close waits for the first and then sees it CLOSED
    (`nowait`: fails at once, SQLSTATE 55P03, when another transaction holds it)."""
    stmt = (
        select(Cycle)
        .where(Cycle.id == cycle_id)
        .with_for_update(nowait=nowait)
        .execution_options(populate_existing=True)
    )
    cycle = (await session.execute(stmt)).scalar_one_or_none()
    if cycle is None:
        raise NotFound("Cycle", cycle_id)
    return cycle
