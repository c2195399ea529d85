"""Rolling cycles on the calendar: ended cycles go to GRADING, graded ones close.

Both steps are guarded by the cycle's state, so a sweep that runs twice, or in
two workers at once, moves and closes each cycle once.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.carry_over import CarryOverPolicy
from okrgraph.domain.cycles.closing import Closing, close_cycle
from okrgraph.domain.models import Cycle
from okrgraph.domain.models.enums import CycleState, SubjectType
from okrgraph.domain.scores.queries import org_timezone

# Days after a cycle's end for reflections and final check-ins before it closes.
GRADING_DAYS = 14


async def org_today(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> date:
    """The date at `now` in the organisation's time zone."""
    return now.astimezone(await org_timezone(session, org_id)).date()


async def start_grading(
    session: AsyncSession, principal: Principal, today: date
) -> list[uuid.UUID]:
    """ACTIVE cycles that ended before `today` become GRADING, each with an audit entry.

    A guarded UPDATE: a concurrent sweep waits for the row and then no longer
    matches `state = 'ACTIVE'`, so each cycle moves (and is audited) once."""
    moved = list(
        (
            await session.execute(
                update(Cycle)
                .where(Cycle.state == CycleState.ACTIVE, Cycle.ends_on < today)
                .values(state=CycleState.GRADING)
                .returning(Cycle.id)
            )
        ).scalars()
    )
    for cycle_id in moved:
        record_audit(
            session,
            principal,
            "cycle.updated",
            SubjectType.CYCLE,
            cycle_id,
            {"state": CycleState.GRADING},
        )
    await session.flush()
    return moved


def closing_cutoff(today: date) -> date:
    """GRADING cycles that ended on or before this date are due to close."""
    return today - timedelta(days=GRADING_DAYS)


async def due_to_close(session: AsyncSession, today: date) -> list[uuid.UUID]:
    """The GRADING cycles whose grading window is over, oldest first."""
    stmt = (
        select(Cycle.id)
        .where(Cycle.state == CycleState.GRADING, Cycle.ends_on <= closing_cutoff(today))
        .order_by(Cycle.ends_on, Cycle.name)
    )
    return list((await session.execute(stmt)).scalars())


async def close_if_due(
    session: AsyncSession, principal: Principal, cycle_id: uuid.UUID, now: datetime, today: date
) -> Closing | None:
    """Close the cycle (carrying the remainder over) if it is still due; None when
    another sweep holds it or has closed it (it locks the row: SKIP LOCKED, so two
    sweeps do not queue up behind one close)."""
    claimed = await session.scalar(
        select(Cycle.id)
        .where(
            Cycle.id == cycle_id,
            Cycle.state == CycleState.GRADING,
            Cycle.ends_on <= closing_cutoff(today),
        )
        .with_for_update(skip_locked=True)
    )
    if claimed is None:
        return None
    return await close_cycle(
        session, principal, cycle_id, carry_over=CarryOverPolicy.CARRY_REMAINDER, now=now
    )
