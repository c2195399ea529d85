"""Writes of cycles (admins): creation and forward-only state changes.

Closing a cycle (grading, freezing scores, carry-over) is `closing.close_cycle`'s.
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.starting import take_kpi_starts
from okrgraph.domain.errors import Conflict, ErrorCode, ValidationFailed
from okrgraph.domain.lookup import get_row
from okrgraph.domain.models import Cycle
from okrgraph.domain.models.enums import Cadence, CycleState, SubjectType
from okrgraph.domain.scores.requests import request_recalculation
from okrgraph.domain.validation import day, text_field

CYCLE_CHANGED = "cycle.changed"

# States move forward only; CLOSED is reached by closing (closing.py), never directly.
NEXT_STATES = {
    CycleState.PLANNING: {CycleState.ACTIVE},
    CycleState.ACTIVE: {CycleState.GRADING},
    CycleState.GRADING: set(),
    CycleState.CLOSED: set(),
}


async def get_cycle(session: AsyncSession, cycle_id: uuid.UUID) -> Cycle:
    return await get_row(session, Cycle, cycle_id)


async def _check_dates(
    session: AsyncSession, starts_on: date, ends_on: date, parent_cycle_id: uuid.UUID | None
) -> None:
    day(starts_on, "input.startsOn")
    day(ends_on, "input.endsOn")
    if ends_on <= starts_on:
        raise ValidationFailed(
            "input.endsOn", "A cycle ends after it starts.", ErrorCode.INVALID_PERIOD
        )
    if parent_cycle_id is not None:
        parent = await get_cycle(session, parent_cycle_id)
        if starts_on < parent.starts_on or ends_on > parent.ends_on:
            raise ValidationFailed(
                "input.parentCycleId",
                f"Must lie within {parent.name} ({parent.starts_on} to {parent.ends_on}).",
                ErrorCode.INVALID_PERIOD,
            )


async def create_cycle(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    cadence: Cadence,
    starts_on: date,
    ends_on: date,
    parent_cycle_id: uuid.UUID | None = None,
    state: CycleState = CycleState.PLANNING,
) -> Cycle:
    require_admin(principal)
    name = text_field(name, "input.name", max_length=100)
    if state not in (CycleState.PLANNING, CycleState.ACTIVE):
        raise ValidationFailed(
            "input.state", "A new cycle is PLANNING or ACTIVE.", ErrorCode.INVALID_STATE
        )
    await _check_dates(session, starts_on, ends_on, parent_cycle_id)
    if (await session.execute(select(Cycle.id).where(Cycle.name == name))).first():
        raise Conflict(f"A cycle named {name!r} exists.", ErrorCode.ALREADY_EXISTS)
    cycle = Cycle(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        name=name,
        cadence=cadence,
        starts_on=starts_on,
        ends_on=ends_on,
        parent_cycle_id=parent_cycle_id,
        state=state,
    )
    session.add(cycle)
    await session.flush()
    record_audit(session, principal, "cycle.created", SubjectType.CYCLE, cycle.id, {"name": name})
    return cycle


async def update_cycle(
    session: AsyncSession,
    principal: Principal,
    cycle_id: uuid.UUID,
    *,
    name: str | None = None,
    starts_on: date | None = None,
    ends_on: date | None = None,
    state: CycleState | None = None,
) -> Cycle:
    require_admin(principal)
    cycle = await get_cycle(session, cycle_id)
    if cycle.state is CycleState.CLOSED:
        raise Conflict("A closed cycle cannot change.", ErrorCode.CYCLE_CLOSED)
    changes: dict[str, object] = {}
    if name is not None:
        cycle.name = changes["name"] = text_field(name, "input.name", max_length=100)
    changed: list[str] = []  # the columns, for scores.requests
    if starts_on is not None or ends_on is not None:
        new_start, new_end = starts_on or cycle.starts_on, ends_on or cycle.ends_on
        await _check_dates(session, new_start, new_end, cycle.parent_cycle_id)
        cycle.starts_on, cycle.ends_on = new_start, new_end
        changes["dates"] = [new_start, new_end]
        changed += ["starts_on", "ends_on"]
    if state is not None and state is not cycle.state:
        if state not in NEXT_STATES[cycle.state]:
            raise Conflict(
                f"A cycle cannot go from {cycle.state.value} to {state.value}.",
                ErrorCode.INVALID_TRANSITION,
            )
        cycle.state = changes["state"] = state
    await session.flush()
    record_audit(session, principal, "cycle.updated", SubjectType.CYCLE, cycle.id, changes)
    # New dates move every node's expected progress, so its status.
    await request_recalculation(
        session,
        principal.org_id,
        cycle,
        type=CYCLE_CHANGED,
        subject_type=SubjectType.CYCLE,
        subject_id=cycle.id,
        changed=[*changed, *(["state"] if "state" in changes else [])],
    )
    if cycle.state is CycleState.ACTIVE:  # begun (by the org's date): KPI-driven starts
        await take_kpi_starts(session, principal, clock.now(), cycle_id=cycle.id)
    return cycle
