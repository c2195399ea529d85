"""Grading a closing cycle: freeze the final scores, grade each objective, and
keep a reflection per graded objective (ACHIEVED at 0.7, the good stretch
result, else MISSED; CARRIED_OVER when a copy continues it in the next cycle).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.models import KeyResult, Objective, Reflection
from okrgraph.domain.models.enums import KeyResultState, ObjectiveState, Outcome
from okrgraph.domain.objectives.reflections import achieved


@dataclass(frozen=True)
class ObjectiveGrade:
    objective_id: uuid.UUID
    title: str
    final_score: float
    outcome: Outcome
    carried_over_to_id: uuid.UUID | None  # None in a dry run


async def freeze_and_grade(
    session: AsyncSession, cycle_id: uuid.UUID
) -> tuple[list[Objective], list[KeyResult]]:
    """The cycle's graded objectives and their counting key results, each with its
    current score frozen as final; the objectives are ACHIEVED or MISSED."""
    objectives = await _graded_objectives(session, cycle_id)
    key_results = await _key_results(session, [o.id for o in objectives])
    for kr in key_results:
        kr.final_score = kr.score
    for objective in objectives:
        objective.final_score = objective.progress
        graded = achieved(objective.progress)
        objective.state = ObjectiveState.ACHIEVED if graded else ObjectiveState.MISSED
    return objectives, key_results


def grades_of(
    objectives: Sequence[Objective], copies: Mapping[uuid.UUID, Objective]
) -> list[ObjectiveGrade]:
    """Each graded objective's outcome, given the copies carried into the next cycle."""
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
    return grades


async def write_reflections(
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
