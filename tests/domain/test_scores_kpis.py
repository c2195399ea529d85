"""KPI measurements: idempotent bulk ingestion, latest value and health, KR sync."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.errors import NotFound, ValidationFailed
from okrgraph.domain.kpis.service import MeasurementInput, record_kpi_measurements
from okrgraph.domain.models import KeyResult, Kpi, KpiLink, KpiMeasurement, Objective, OutboxEvent
from okrgraph.domain.models.enums import Direction, Health, KeyResultDriver
from okrgraph.domain.scores.pending_events import process_pending_events
from tests.worker.graphs import MIDWAY, GraphBuilder


async def make_kpi(g: GraphBuilder) -> uuid.UUID:
    kpi = Kpi(
        org_id=g.org_id,
        id=uuid.uuid4(),
        name=f"DAU {uuid.uuid4().hex[:6]}",
        direction=Direction.HIGHER_IS_BETTER,
        target=500_000,
        warning_threshold=475_000,
        critical_threshold=450_000,
    )
    g.session.add(kpi)
    await g.session.flush()
    return kpi.id


def point(value: float, days_ago: int, ext: str | None) -> MeasurementInput:
    return MeasurementInput(value, MIDWAY - timedelta(days=days_ago), "crm", ext)


async def test_bulk_insert_is_idempotent_and_updates_latest_and_health(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    kpi_id = await make_kpi(g)
    items = [point(480_000, 1, "a"), point(440_000, 3, "b"), point(470_000, 2, None)]
    assert await record_kpi_measurements(
        db, principal=system_principal(g.org_id), kpi_id=kpi_id, items=items, now=MIDWAY
    ) == (3, 0)
    kpi = await db.scalar(select(Kpi).where(Kpi.id == kpi_id))
    assert kpi is not None
    assert (kpi.latest_value, kpi.health) == (480_000, Health.HEALTHY)
    again = [point(480_000, 1, "a"), point(1, 0, "b"), point(470_000, 0, "c"), point(5, 0, "c")]
    assert await record_kpi_measurements(
        db, principal=system_principal(g.org_id), kpi_id=kpi_id, items=again, now=MIDWAY
    ) == (1, 3)
    count = select(func.count()).select_from(KpiMeasurement)
    assert await db.scalar(count.where(KpiMeasurement.kpi_id == kpi_id)) == 4
    await db.refresh(kpi)
    assert (kpi.latest_value, kpi.health) == (470_000, Health.WARNING)
    events = (await db.scalars(select(OutboxEvent).where(OutboxEvent.type == "kpi.measured"))).all()
    assert sorted(e.payload["inserted"] for e in events) == [1, 3]


async def test_duplicates_only_write_no_event(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    kpi_id = await make_kpi(g)
    await record_kpi_measurements(
        db,
        principal=system_principal(g.org_id),
        kpi_id=kpi_id,
        items=[point(1, 1, "x")],
        now=MIDWAY,
    )
    assert await record_kpi_measurements(
        db,
        principal=system_principal(g.org_id),
        kpi_id=kpi_id,
        items=[point(1, 1, "x")],
        now=MIDWAY,
    ) == (0, 1)
    count = select(func.count()).select_from(OutboxEvent)
    assert await db.scalar(count) == 1


async def test_refuses_unknown_kpi_and_bad_points(db: AsyncSession) -> None:
    g = await GraphBuilder.create(db)
    kpi_id = await make_kpi(g)
    with pytest.raises(NotFound):
        await record_kpi_measurements(
            db, principal=system_principal(g.org_id), kpi_id=uuid.uuid4(), items=[]
        )
    future = MeasurementInput(1, MIDWAY + timedelta(days=1))
    with pytest.raises(ValidationFailed) as err:
        await record_kpi_measurements(
            db,
            principal=system_principal(g.org_id),
            kpi_id=kpi_id,
            items=[point(1, 1, "a"), future],
            now=MIDWAY,
        )
    assert err.value.field == "input.items.1.measuredAt"


async def test_kpi_driven_key_result_follows_the_kpi_through_the_pipeline(
    db: AsyncSession,
) -> None:
    g = await GraphBuilder.create(db)
    kpi_id = await make_kpi(g)
    o = await g.objective()
    kr = await g.kr(o, start=400_000, target=500_000, driver=KeyResultDriver.KPI)
    db.add(KpiLink(org_id=g.org_id, kpi_id=kpi_id, key_result_id=kr))
    await db.flush()
    await record_kpi_measurements(
        db,
        principal=system_principal(g.org_id),
        kpi_id=kpi_id,
        items=[point(460_000, 1, "a")],
        now=MIDWAY,
    )
    result = await process_pending_events(db, g.org_id, now=MIDWAY)
    assert result.events == 1
    current = await db.scalar(select(KeyResult.current_value).where(KeyResult.id == kr))
    assert current == 460_000
    progress = await db.scalar(select(Objective.progress).where(Objective.id == o))
    assert progress == pytest.approx(0.6)
    assert (await process_pending_events(db, g.org_id, now=MIDWAY)).events == 0
