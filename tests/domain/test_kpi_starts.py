"""A KPI-driven key result takes its start from its KPI when its cycle starts
(DESIGN.md section 2), once: through updateCycle's move to ACTIVE, or the hourly
cycle sweep, whichever comes first; a second run changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.cycles.service import update_cycle
from okrgraph.domain.cycles.starting import KPI_STARTS_TAKEN, take_kpi_starts
from okrgraph.domain.models import KeyResult, OutboxEvent
from okrgraph.domain.models.enums import CycleState, KeyResultDriver, KeyResultKind
from tests.factories import (
    make_cycle,
    make_key_result,
    make_kpi,
    make_kpi_link,
    make_measurement,
    make_objective,
    make_org,
)

NOW = clock.now()
STARTS = NOW.date() - timedelta(days=10)


def at(day: date, hours: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


async def kpi_key_result(
    db: AsyncSession, org: uuid.UUID, cycle: uuid.UUID, *, target: float = 100.0
) -> tuple[uuid.UUID, uuid.UUID]:
    objective = await make_objective(db, org, cycle_id=cycle)
    kr = await make_key_result(
        db, org, objective_id=objective.id, progress_driver=KeyResultDriver.KPI,
        kind=KeyResultKind.INCREASE, start_value=0.0, target_value=target,
    )  # fmt: skip
    kpi = await make_kpi(db, org)
    await make_kpi_link(db, org, kpi_id=kpi.id, key_result_id=kr.id)
    return kr.id, kpi.id


async def start_of(db: AsyncSession, kr: uuid.UUID) -> tuple[float, datetime | None]:
    row = (
        await db.execute(
            select(KeyResult.start_value, KeyResult.start_taken_at).where(KeyResult.id == kr)
        )
    ).one()
    return row.start_value, row.start_taken_at


async def test_moving_a_cycle_to_active_takes_the_kpi_value_at_its_start_once(
    db: AsyncSession,
) -> None:
    org = await make_org(db)
    principal = system_principal(org.id)
    cycle = await make_cycle(
        db, org.id, state=CycleState.PLANNING, starts_on=STARTS, ends_on=STARTS + timedelta(80)
    )
    kr, kpi = await kpi_key_result(db, org.id, cycle.id)
    await make_measurement(
        db, org.id, kpi_id=kpi, value=25.0, measured_at=at(STARTS - timedelta(9))
    )
    await make_measurement(
        db, org.id, kpi_id=kpi, value=30.0, measured_at=at(STARTS - timedelta(5))
    )
    await make_measurement(
        db, org.id, kpi_id=kpi, value=40.0, measured_at=at(STARTS + timedelta(2))
    )
    assert await start_of(db, kr) == (0.0, None)  # PLANNING: nothing yet

    await update_cycle(db, principal, cycle.id, state=CycleState.ACTIVE)
    start, taken = await start_of(db, kr)
    assert start == 30.0  # the latest value at or before the cycle's first instant
    assert taken is not None
    asked = select(func.count()).where(OutboxEvent.type == KPI_STARTS_TAKEN)
    assert (await db.execute(asked)).scalar_one() == 1  # a roll-up for its new score

    # the KPI moves on; later sweeps change nothing
    await make_measurement(
        db, org.id, kpi_id=kpi, value=20.0, measured_at=at(STARTS - timedelta(1))
    )
    assert await take_kpi_starts(db, principal, NOW) == []
    assert await start_of(db, kr) == (30.0, taken)
    assert (await db.execute(asked)).scalar_one() == 1


async def test_the_sweep_takes_starts_of_begun_active_cycles_only(db: AsyncSession) -> None:
    org = await make_org(db)
    principal = system_principal(org.id)
    begun = await make_cycle(db, org.id, starts_on=STARTS, ends_on=STARTS + timedelta(80))
    later = await make_cycle(
        db, org.id, starts_on=NOW.date() + timedelta(5), ends_on=NOW.date() + timedelta(90)
    )
    planning = await make_cycle(
        db, org.id, state=CycleState.PLANNING, starts_on=STARTS, ends_on=STARTS + timedelta(80)
    )
    krs = {}
    for name, cycle in (("begun", begun), ("later", later), ("planning", planning)):
        krs[name], kpi = await kpi_key_result(db, org.id, cycle.id)
        await make_measurement(
            db, org.id, kpi_id=kpi, value=40.0, measured_at=at(STARTS + timedelta(3))
        )
    nothing_yet, _ = await kpi_key_result(db, org.id, begun.id)  # a KPI with no measurement
    at_target, kpi = await kpi_key_result(db, org.id, begun.id, target=35.0)
    await make_measurement(
        db, org.id, kpi_id=kpi, value=40.0, measured_at=at(STARTS - timedelta(1))
    )

    moved = await take_kpi_starts(db, principal, NOW)
    assert moved == [krs["begun"]]
    assert (await start_of(db, krs["begun"]))[0] == 40.0  # none before the start: the first after
    assert (await start_of(db, krs["later"]))[1] is None
    assert (await start_of(db, krs["planning"]))[1] is None
    assert (await start_of(db, nothing_yet))[1] is None  # tried again once the KPI is measured
    start, taken = await start_of(db, at_target)
    assert (start, taken is not None) == (0.0, True)  # an INCREASE cannot start at its target
    assert await take_kpi_starts(db, principal, NOW) == []
