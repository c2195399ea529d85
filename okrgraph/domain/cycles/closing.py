"""Closing a cycle (admins): grade, freeze, carry over, open the next cycle.

`close_cycle` brings the organisation's scores current (a full recalculation at
that moment, whatever events are pending: the frozen numbers never depend on
what the incremental roll-up has reached), freezes every key result's and
objective's final score, grades the objectives (ACHIEVED at 0.7, the good
stretch result, else MISSED) with a reflection each, copies the
missed objectives with their unfinished key results into the next cycle per
`CarryOverPolicy`, and marks the cycle CLOSED. A dry run does all of it inside
a savepoint that is rolled back, so its plan is exactly what a real run does.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock, scoring
from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.next_cycle import next_cycle_for
from okrgraph.domain.cycles.service import get_cycle
from okrgraph.domain.errors import Conflict, ErrorCode, NotFound
from okrgraph.domain.key_results.definitions import check_target
from okrgraph.domain.kpis.catalog import link_kpi
from okrgraph.domain.models import (
    Alignment,
    CheckIn,
    Cycle,
    KeyResult,
    Kpi,
    KpiLink,
    Objective,
    Reflection,
)
from okrgraph.domain.models.enums import (
    CycleState,
    KeyResultDriver,
    KeyResultState,
    ObjectiveState,
    Outcome,
    SubjectType,
)
from okrgraph.domain.objectives.reflections import achieved
from okrgraph.domain.objectives.service import OBJECTIVE_CHANGED
from okrgraph.domain.outbox.service import emit, recalc_payload
from okrgraph.domain.scores.queries import org_timezone
from okrgraph.domain.scores.service import full_recalculation

CYCLE_CLOSED = "cycle.closed"
DONE = 1.0 - 1e-9  # a key result at (about) 1.0 is finished and not carried over


class CarryOverPolicy(enum.Enum):
    CARRY_REMAINDER = "CARRY_REMAINDER"  # same start and target; current continues
    REBASELINE = "REBASELINE"  # starts at the old current value, same target
    CLOSE_AS_MISSED = "CLOSE_AS_MISSED"  # nothing carried over


@dataclass(frozen=True)
class ObjectiveGrade:
    objective_id: uuid.UUID
    title: str
    final_score: float
    outcome: Outcome
    carried_over_to_id: uuid.UUID | None  # None in a dry run


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


async def close_cycle(
    session: AsyncSession,
    principal: Principal,
    cycle_id: uuid.UUID,
    *,
    dry_run: bool = False,
    carry_over: CarryOverPolicy = CarryOverPolicy.CARRY_REMAINDER,
    next_cycle_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Closing:
    """Close the cycle; with `dry_run`, return the same plan and write nothing."""
    require_admin(principal)
    now = now or clock.now()
    savepoint = await session.begin_nested()
    try:
        closing = await _close(session, principal, cycle_id, carry_over, next_cycle_id, now)
    except BaseException:
        await savepoint.rollback()
        raise
    if not dry_run:
        await savepoint.commit()
        return closing
    await savepoint.rollback()
    planned = [replace(g, carried_over_to_id=None) for g in closing.objectives]
    return replace(closing, dry_run=True, objectives=planned)


async def _close(
    session: AsyncSession,
    principal: Principal,
    cycle_id: uuid.UUID,
    policy: CarryOverPolicy,
    next_cycle_id: uuid.UUID | None,
    now: datetime,
) -> Closing:
    cycle = await _locked_cycle(session, cycle_id)
    if cycle.state is CycleState.PLANNING:
        raise Conflict(
            f"Cycle {cycle.name} has not started; only a started cycle closes.",
            ErrorCode.CYCLE_NOT_STARTED,
        )
    if cycle.state is CycleState.CLOSED:
        raise Conflict(f"Cycle {cycle.name} is already closed.", ErrorCode.CYCLE_CLOSED)
    next_cycle = await next_cycle_for(session, principal, cycle, next_cycle_id)
    # The frozen numbers are what a full recalculation gives now: every committed
    # change included, pending or not, and nothing the incremental path missed.
    current = await full_recalculation(session, principal.org_id, now=now)

    objectives = await _graded_objectives(session, cycle.id)
    key_results = await _key_results(session, [o.id for o in objectives])
    for kr in key_results:
        kr.final_score = kr.score
    for objective in objectives:
        objective.final_score = objective.progress
        graded = achieved(objective.progress)
        objective.state = ObjectiveState.ACHIEVED if graded else ObjectiveState.MISSED

    carried = [o for o in objectives if o.state is ObjectiveState.MISSED]
    if policy is CarryOverPolicy.CLOSE_AS_MISSED:
        carried = []
    copies = await _copy_objectives(session, principal, carried, next_cycle)
    kr_copies = await _copy_key_results(
        session, principal, key_results, copies, policy, cycle, next_cycle, now
    )
    await _copy_alignments(session, principal, cycle, next_cycle, copies, kr_copies)
    await _copy_kpi_links(session, principal, copies, kr_copies)

    grades = []
    for objective in objectives:
        copy = copies.get(objective.id)
        outcome = (
            Outcome.CARRIED_OVER
            if copy is not None
            else Outcome.ACHIEVED
            if objective.state is ObjectiveState.ACHIEVED
            else Outcome.MISSED
        )
        grades.append(
            ObjectiveGrade(
                objective.id,
                objective.title,
                objective.progress,
                outcome,
                copy.id if copy else None,
            )
        )
    await _write_reflections(session, principal, cycle.id, grades)

    cycle.state = CycleState.CLOSED
    cycle.closed_at = now
    closing = Closing(
        cycle_id=cycle.id,
        dry_run=False,
        next_cycle_name=next_cycle.name,
        objectives=grades,
        key_results_frozen=len(key_results),
        objectives_carried_over=len(copies),
        key_results_carried_over=len(kr_copies),
    )
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
    # The copies get their scores (one with neither key results nor children too),
    # and the score job announces what the full pass above changed, once committed.
    if copies or current.changes:
        await emit(
            session,
            org_id=principal.org_id,
            type=OBJECTIVE_CHANGED,
            subject_type=SubjectType.CYCLE,
            subject_id=next_cycle.id,
            payload={
                "recalc": recalc_payload(
                    key_result_ids=[k.id for k in kr_copies.values()],
                    objective_ids=[c.id for c in copies.values()],
                    written=[c.as_record() for c in current.changes],
                )
            },
        )
    await session.flush()
    return closing


async def _locked_cycle(session: AsyncSession, cycle_id: uuid.UUID) -> Cycle:
    """The cycle, locked: a second close waits for the first and then sees it CLOSED."""
    stmt = (
        select(Cycle)
        .where(Cycle.id == cycle_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    cycle = (await session.execute(stmt)).scalar_one_or_none()
    if cycle is None:
        raise NotFound("Cycle", cycle_id)
    return cycle


# --- grading and carrying over ------------------------------------------------------


async def _graded_objectives(session: AsyncSession, cycle_id: uuid.UUID) -> list[Objective]:
    """The cycle's objectives that get a grade: neither DRAFT nor CANCELLED. Read fresh:
    the roll-up writes with plain SQL, behind the session's identity map."""
    stmt = (
        select(Objective)
        .where(
            Objective.cycle_id == cycle_id,
            Objective.state.not_in([ObjectiveState.DRAFT, ObjectiveState.CANCELLED]),
        )
        .order_by(Objective.created_at, Objective.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


async def _key_results(session: AsyncSession, objective_ids: list[uuid.UUID]) -> list[KeyResult]:
    """Their key results that count (not cancelled), read fresh."""
    stmt = (
        select(KeyResult)
        .where(
            KeyResult.objective_id.in_(objective_ids),
            KeyResult.state != KeyResultState.CANCELLED,
        )
        .order_by(KeyResult.created_at, KeyResult.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


async def _copy_objectives(
    session: AsyncSession, principal: Principal, carried: Sequence[Objective], next_cycle: Cycle
) -> dict[uuid.UUID, Objective]:
    """Copies of valid rows, built directly: one batched INSERT rather than a service
    call each (a service call per copy made closing 1,000 objectives take ~40 s). The
    close's own audit entry and event carry what was copied."""
    copies = {
        old.id: Objective(
            org_id=principal.org_id,
            id=uuid.uuid4(),
            cycle_id=next_cycle.id,
            title=old.title,
            description=old.description,
            level=old.level,
            owner_team_id=old.owner_team_id,
            owner_person_id=old.owner_person_id,
            progress_driver=old.progress_driver,
            state=ObjectiveState.ACTIVE,
            carried_over_from_id=old.id,
        )
        for old in carried
    }
    session.add_all(copies.values())
    await session.flush()
    return copies


async def _copy_key_results(
    session: AsyncSession,
    principal: Principal,
    key_results: Sequence[KeyResult],
    copies: dict[uuid.UUID, Objective],
    policy: CarryOverPolicy,
    cycle: Cycle,
    next_cycle: Cycle,
    now: datetime,
) -> dict[uuid.UUID, KeyResult]:
    """Copies of the carried objectives' unfinished key results, per policy."""
    tz = await org_timezone(session, principal.org_id)
    next_start, _ = scoring.cycle_bounds(next_cycle.starts_on, next_cycle.ends_on, tz)
    kr_copies: dict[uuid.UUID, KeyResult] = {}
    check_ins: list[CheckIn] = []
    for old in key_results:
        if old.objective_id not in copies or old.score >= DONE:
            continue
        start = old.start_value
        if policy is CarryOverPolicy.REBASELINE and old.current_value is not None:
            start = old.current_value
        check_target(old.kind, start, old.target_value)  # a rebaselined start, too
        new = KeyResult(
            org_id=principal.org_id,
            id=uuid.uuid4(),
            objective_id=copies[old.objective_id].id,
            title=old.title,
            kind=old.kind,
            unit=old.unit,
            start_value=start,
            target_value=old.target_value,
            weight=old.weight,
            owner_person_id=old.owner_person_id,
            progress_driver=old.progress_driver,
            stretch=old.stretch,
            carried_over_from_id=old.id,
        )
        kr_copies[old.id] = new
        carry_value = (
            policy is CarryOverPolicy.CARRY_REMAINDER
            and old.current_value is not None
            and old.progress_driver is KeyResultDriver.CHECK_INS
        )
        if carry_value:
            # at the next cycle's start, unless that is still ahead (no future check-ins)
            effective_at = min(next_start, now)
            check_ins.append(
                CheckIn(
                    org_id=principal.org_id,
                    id=uuid.uuid4(),
                    key_result_id=new.id,
                    value=old.current_value,
                    confidence=old.confidence,
                    comment=f"Carried over from {cycle.name}",
                    author_person_id=principal.person_id,
                    effective_at=effective_at,
                    recorded_at=now,
                )
            )
            new.current_value, new.confidence = old.current_value, old.confidence
            new.last_check_in_at = now
    session.add_all(kr_copies.values())
    await session.flush()  # the key results before the check-ins that reference them
    session.add_all(check_ins)
    await session.flush()
    return kr_copies


async def _enclosing_cycles(session: AsyncSession, cycle: Cycle) -> set[uuid.UUID]:
    """The cycle and every cycle containing it (a quarter's year)."""
    out = {cycle.id}
    parent_id = cycle.parent_cycle_id
    while parent_id is not None and parent_id not in out:
        out.add(parent_id)
        parent_id = (await get_cycle(session, parent_id)).parent_cycle_id
    return out


async def _copy_alignments(
    session: AsyncSession,
    principal: Principal,
    cycle: Cycle,
    next_cycle: Cycle,
    copies: dict[uuid.UUID, Objective],
    kr_copies: dict[uuid.UUID, KeyResult],
) -> None:
    """A copy supports its parent's copy when the parent was carried over too, or the
    same parent when that lives in a cycle containing the next one; else nothing."""
    if not copies:
        return
    reachable = await _enclosing_cycles(session, next_cycle)
    edges = (
        await session.execute(
            select(Alignment, Objective.cycle_id)
            .join(
                KeyResult,
                KeyResult.id == Alignment.parent_key_result_id,
                isouter=True,
            )
            .join(
                Objective,
                Objective.id.in_([Alignment.parent_objective_id, KeyResult.objective_id]),
            )
            .where(Alignment.child_objective_id.in_(list(copies)))
            .order_by(Alignment.created_at, Alignment.id)
        )
    ).all()
    for edge, parent_cycle_id in edges:
        parent_objective_id, parent_kr_id = edge.parent_objective_id, edge.parent_key_result_id
        if parent_objective_id in copies:
            parent_objective_id = copies[parent_objective_id].id
        elif parent_kr_id in kr_copies:
            parent_kr_id = kr_copies[parent_kr_id].id
        elif parent_cycle_id == cycle.id or parent_cycle_id not in reachable:
            continue
        session.add(
            Alignment(
                org_id=principal.org_id,
                id=uuid.uuid4(),
                child_objective_id=copies[edge.child_objective_id].id,
                parent_objective_id=parent_objective_id,
                parent_key_result_id=parent_kr_id,
                weight=edge.weight,
                contributes=edge.contributes,
            )
        )
    await session.flush()


async def _copy_kpi_links(
    session: AsyncSession,
    principal: Principal,
    copies: dict[uuid.UUID, Objective],
    kr_copies: dict[uuid.UUID, KeyResult],
) -> None:
    """The copies follow the same (not archived) KPIs: a KPI-driven key result's value
    keeps coming from its KPI, and an objective keeps its health metrics."""
    if not copies:
        return
    links = (
        await session.execute(
            select(KpiLink)
            .join(Kpi, Kpi.id == KpiLink.kpi_id)
            .where(
                or_(
                    KpiLink.key_result_id.in_(list(kr_copies)),
                    KpiLink.objective_id.in_(list(copies)),
                ),
                Kpi.archived_at.is_(None),
            )
            .order_by(KpiLink.id)
        )
    ).scalars()
    for link in list(links):
        new_kr = kr_copies.get(link.key_result_id) if link.key_result_id else None
        new_objective = copies.get(link.objective_id) if link.objective_id else None
        await link_kpi(
            session,
            principal,
            link.kpi_id,
            key_result_id=new_kr.id if new_kr else None,
            objective_id=new_objective.id if new_objective else None,
        )


async def _write_reflections(
    session: AsyncSession, principal: Principal, cycle_id: uuid.UUID, grades: list[ObjectiveGrade]
) -> None:
    """One reflection per graded objective; an existing one keeps its texts."""
    existing = {
        r.objective_id: r
        for r in (
            await session.execute(
                select(Reflection).where(
                    Reflection.objective_id.in_([g.objective_id for g in grades])
                )
            )
        ).scalars()
    }
    for grade in grades:
        reflection = existing.get(grade.objective_id)
        if reflection is None:
            reflection = Reflection(
                org_id=principal.org_id,
                id=uuid.uuid4(),
                objective_id=grade.objective_id,
                cycle_id=cycle_id,
                final_score=grade.final_score,
                outcome=grade.outcome,
            )
            session.add(reflection)
        reflection.final_score, reflection.outcome = grade.final_score, grade.outcome
    await session.flush()
