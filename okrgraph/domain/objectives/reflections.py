"""The "evaluate and reflect" step: at grading or after close, an objective's
owners write what worked and what did not, beside its final score."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.access import require_objective_editor
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.service import get_cycle
from okrgraph.domain.errors import Conflict, ErrorCode
from okrgraph.domain.models import Reflection
from okrgraph.domain.models.enums import CycleState, Outcome, SubjectType
from okrgraph.domain.objectives.service import get_objective
from okrgraph.domain.validation import text_field

SUCCESS = 0.7  # a score of 0.7 counts as a good (stretch) result


def achieved(score: float) -> bool:
    """Whether a final score counts as ACHIEVED: 0.7 or more, with float slack so a
    weighted mean worked out to 0.7 (70 and 70 weighted 1 and 2: 0.6999999999999998)
    counts; the one rule of closeCycle's grades and writeReflection's default."""
    return score >= SUCCESS - 1e-9


async def write_reflection(
    session: AsyncSession,
    principal: Principal,
    *,
    objective_id: uuid.UUID,
    what_worked: str,
    what_did_not: str,
    outcome: Outcome | None = None,
) -> Reflection:
    """Create or update the objective's reflection (one per objective)."""
    objective = await get_objective(session, objective_id)
    await require_objective_editor(session, principal, objective)
    cycle = await get_cycle(session, objective.cycle_id)
    if cycle.state not in (CycleState.GRADING, CycleState.CLOSED):
        raise Conflict(
            "Reflections are written once the cycle is being graded or closed.",
            ErrorCode.CYCLE_NOT_GRADED,
        )
    final = objective.final_score if objective.final_score is not None else objective.progress
    reflection = (
        await session.execute(select(Reflection).where(Reflection.objective_id == objective.id))
    ).scalar_one_or_none()
    if reflection is None:
        reflection = Reflection(
            org_id=principal.org_id,
            id=uuid.uuid4(),
            objective_id=objective.id,
            cycle_id=cycle.id,
            final_score=final,
            outcome=outcome or (Outcome.ACHIEVED if achieved(final) else Outcome.MISSED),
        )
        session.add(reflection)
    elif outcome is not None:
        reflection.outcome = outcome
    reflection.what_worked = text_field(
        what_worked, "input.whatWorked", max_length=10_000, required=False
    )
    reflection.what_did_not = text_field(
        what_did_not, "input.whatDidNot", max_length=10_000, required=False
    )
    reflection.author_person_id = principal.person_id
    await session.flush()
    record_audit(
        session,
        principal,
        "reflection.written",
        SubjectType.REFLECTION,
        reflection.id,
        {"objective": objective.id, "outcome": reflection.outcome},
    )
    return reflection
