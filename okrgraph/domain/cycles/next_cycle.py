"""The cycle after a closing one: given, found, or created (name and period derived)."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.service import create_cycle, get_cycle
from okrgraph.domain.errors import Conflict, ErrorCode, ValidationFailed
from okrgraph.domain.models import Cycle
from okrgraph.domain.models.enums import CycleState
from okrgraph.domain.validation import MAX_DATE

_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^\d{4}$")


def next_cycle_name(name: str) -> str:
    """`2026-Q4` -> `2027-Q1`, `2026-Q1` -> `2026-Q2`, `2026` -> `2027`, else `<name> (next)`."""
    if quarter := _QUARTER.match(name):
        year, q = int(quarter[1]), int(quarter[2])
        return f"{year + 1}-Q1" if q == 4 else f"{year}-Q{q + 1}"
    if _YEAR.match(name):
        return str(int(name) + 1)
    return f"{name[:93]} (next)"


def next_period(starts_on: date, ends_on: date) -> tuple[date, date]:
    """The period after [starts_on, ends_on] of the same length: whole months when the
    cycle is whole months (a quarter, a year), else the same number of days.

    A period past validation.MAX_DATE is a Conflict (never an overflow): cycle
    dates are bounded, and one stored before the bounds has no next cycle.
    """
    if ends_on >= MAX_DATE or (ends_on - starts_on) > (MAX_DATE - ends_on):
        raise Conflict(
            f"A next cycle would end after {MAX_DATE.isoformat()}.", ErrorCode.VALUE_OUT_OF_RANGE
        )
    start = ends_on + timedelta(days=1)
    if starts_on.day == 1 and start.day == 1:
        months = (ends_on.year - starts_on.year) * 12 + ends_on.month - starts_on.month + 1
        years, month = divmod(start.month - 1 + months, 12)
        end = date(start.year + years, month + 1, 1) - timedelta(days=1)
        if end > MAX_DATE:
            raise Conflict(
                f"A next cycle would end after {MAX_DATE.isoformat()}.",
                ErrorCode.VALUE_OUT_OF_RANGE,
            )
        return start, end
    return start, start + (ends_on - starts_on)


async def next_cycle_for(
    session: AsyncSession, principal: Principal, cycle: Cycle, next_cycle_id: uuid.UUID | None
) -> Cycle:
    """The cycle that `cycle`'s carried objectives move into: `next_cycle_id` when given
    (PLANNING or ACTIVE, starting after `cycle`), else the next existing cycle of the same
    cadence, else a new PLANNING one of the same length named after `cycle`."""
    if next_cycle_id is not None:
        given = await get_cycle(session, next_cycle_id)
        if given.state not in (CycleState.PLANNING, CycleState.ACTIVE):
            raise ValidationFailed(
                "input.nextCycleId",
                "The next cycle is PLANNING or ACTIVE.",
                ErrorCode.INVALID_STATE,
            )
        if given.starts_on <= cycle.ends_on:
            raise ValidationFailed(
                "input.nextCycleId",
                f"The next cycle starts after {cycle.name} ends.",
                ErrorCode.INVALID_PERIOD,
            )
        return given
    existing = (
        await session.execute(
            select(Cycle)
            .where(
                Cycle.cadence == cycle.cadence,
                Cycle.starts_on > cycle.ends_on,
                Cycle.state.in_([CycleState.PLANNING, CycleState.ACTIVE]),
            )
            .order_by(Cycle.starts_on, Cycle.name)
            .limit(1)
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    starts_on, ends_on = next_period(cycle.starts_on, cycle.ends_on)
    parent_id = None
    if cycle.parent_cycle_id is not None:
        parent = await get_cycle(session, cycle.parent_cycle_id)
        if parent.starts_on <= starts_on and ends_on <= parent.ends_on:
            parent_id = parent.id
    return await create_cycle(
        session,
        principal,
        name=await _free_name(session, next_cycle_name(cycle.name)),
        cadence=cycle.cadence,
        starts_on=starts_on,
        ends_on=ends_on,
        parent_cycle_id=parent_id,
        state=CycleState.PLANNING,
    )


async def _free_name(session: AsyncSession, name: str) -> str:
    """`name`, or `name (2)`, ... when a cycle of that name exists (names are unique)."""
    taken = set((await session.execute(select(Cycle.name))).scalars())
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name[:90]} ({n})", n + 1
    return candidate
