"""Grading a closing cycle: freeze the final scores, grade each objective, and
keep a reflection per graded objective (ACHIEVED at 0.7, the good stretch
result, else MISSED; CARRIED_OVER when a copy continues it in the next cycle).

Set-based: one statement for the grades and frozen scores, one for the
reflections, whatever the cycle's size.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.models.enums import ObjectiveState, Outcome
from okrgraph.domain.objectives.reflections import SUCCESS

# reflections.achieved() in SQL: the same float comparison, score >= SUCCESS - 1e-9.
_ACHIEVED_FROM = SUCCESS - 1e-9

# The cycle's objectives that get a grade (neither DRAFT nor CANCELLED) take their
# progress as final score and ACHIEVED or MISSED, and their key results that count
# (not cancelled) keep their score as final; the graded in the order of the summary,
# each row with how many key results count. One statement: the key results are found
# from the graded ids, not by a second scan of the cycle's objectives.
_FREEZE_AND_GRADE = """
WITH graded AS (
    UPDATE objectives
    SET final_score = progress,
        state = CASE WHEN progress >= :achieved THEN 'ACHIEVED' ELSE 'MISSED' END,
        updated_at = now()
    WHERE org_id = CAST(:org AS uuid) AND cycle_id = CAST(:cycle AS uuid)
      AND state NOT IN ('DRAFT', 'CANCELLED')
    RETURNING id, title, progress, state, created_at
),
counted AS (
    SELECT k.id, k.score FROM key_results k JOIN graded g ON g.id = k.objective_id
    WHERE k.org_id = CAST(:org AS uuid) AND k.state <> 'CANCELLED'
),
frozen AS (
    UPDATE key_results k SET final_score = c.score, updated_at = now()
    FROM counted c
    WHERE k.org_id = CAST(:org AS uuid) AND k.id = c.id
      AND k.final_score IS DISTINCT FROM c.score
)
SELECT id, title, progress, state, (SELECT count(*) FROM counted)
FROM graded ORDER BY created_at, id
"""

# One reflection per graded objective; an existing one keeps its texts.
_WRITE_REFLECTIONS = """
INSERT INTO reflections (org_id, id, objective_id, cycle_id, final_score, outcome)
SELECT CAST(:org AS uuid), gen_random_uuid(), g.objective_id, CAST(:cycle AS uuid),
       g.final_score, g.outcome
FROM unnest(CAST(:ids AS uuid[]), CAST(:scores AS float8[]), CAST(:outcomes AS text[]))
     AS g(objective_id, final_score, outcome)
ON CONFLICT (org_id, objective_id)
DO UPDATE SET final_score = excluded.final_score, outcome = excluded.outcome
"""


@dataclass(frozen=True)
class ObjectiveGrade:
    objective_id: uuid.UUID
    title: str
    final_score: float
    outcome: Outcome
    carried_over_to_id: uuid.UUID | None  # None in a dry run


@dataclass(frozen=True)
class Graded:
    """A graded objective: its frozen score and state (ACHIEVED or MISSED)."""

    id: uuid.UUID
    title: str
    final_score: float
    state: ObjectiveState


async def freeze_and_grade(
    session: AsyncSession, org_id: uuid.UUID, cycle_id: uuid.UUID
) -> tuple[list[Graded], int]:
    """The cycle's graded objectives (ACHIEVED or MISSED now, their progress frozen as
    final score), by creation; and how many counting key results were frozen."""
    params = {"org": org_id, "cycle": cycle_id, "achieved": _ACHIEVED_FROM}
    rows = (await session.execute(text(_FREEZE_AND_GRADE), params)).all()
    graded = [Graded(i, title, score, ObjectiveState(state)) for i, title, score, state, _ in rows]
    frozen = rows[0][4] if rows else 0
    return graded, int(frozen)


def grades_of(
    graded: Sequence[Graded], copies: Mapping[uuid.UUID, uuid.UUID]
) -> list[ObjectiveGrade]:
    """Each graded objective's outcome, given the ids of the copies carried into the
    next cycle (by the id of what each continues)."""
    grades = []
    for objective in graded:
        copy = copies.get(objective.id)
        outcome = (
            Outcome.CARRIED_OVER
            if copy is not None
            else Outcome.ACHIEVED
            if objective.state is ObjectiveState.ACHIEVED
            else Outcome.MISSED
        )
        grades.append(
            ObjectiveGrade(objective.id, objective.title, objective.final_score, outcome, copy)
        )
    return grades


async def write_reflections(
    session: AsyncSession,
    principal: Principal,
    cycle_id: uuid.UUID,
    grades: list[ObjectiveGrade],
) -> None:
    """One reflection per graded objective; an existing one keeps its texts."""
    if not grades:
        return
    await session.execute(
        text(_WRITE_REFLECTIONS),
        {
            "org": principal.org_id,
            "cycle": cycle_id,
            "ids": [g.objective_id for g in grades],
            "scores": [g.final_score for g in grades],
            "outcomes": [g.outcome.value for g in grades],
        },
    )
