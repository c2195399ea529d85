"""`recordKpiMeasurements`: integrations push KPI numbers in, in bulk, idempotently."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.kpis.service import (
    MAX_MEASUREMENTS,
    MeasurementInput,
    record_kpi_measurements,
)
from okrgraph.domain.models import Kpi as KpiRow
from okrgraph.schema import bounds
from okrgraph.schema.context import Info
from okrgraph.schema.kpis.types import Kpi
from okrgraph.schema.node import parse_id
from okrgraph.schema.payloads import UserErrors, run_mutation


@strawberry.input(description="One point of a KPI's series.")
class MeasurementItem:
    value: float = bounds.number("The measured value.")
    measured_at: datetime = bounds.moment("When it was true (with time zone).")
    source: str = bounds.text("Where it comes from.", validation.SHORT_TEXT, default="manual")
    external_id: str | None = bounds.text(
        "The source's id: a point sent again is ignored.", validation.KEY, default=None
    )


@strawberry.input(description="Measurements of one KPI.")
class RecordKpiMeasurementsInput:
    kpi_id: strawberry.ID = strawberry.field(description="The KPI.")
    items: list[MeasurementItem] = strawberry.field(description=f"Up to {MAX_MEASUREMENTS} points.")


@strawberry.type(description="What was recorded.")
class RecordKpiMeasurementsSuccess:
    kpi: Kpi = strawberry.field(description="The KPI, with its new latest value and health.")
    inserted: int = strawberry.field(description="Points recorded now.")
    duplicates: int = strawberry.field(description="Points already recorded (ignored).")


RecordKpiMeasurementsResult = Annotated[
    RecordKpiMeasurementsSuccess | UserErrors,
    strawberry.union(
        "RecordKpiMeasurementsResult", description="RecordKpiMeasurementsSuccess or a user error."
    ),
]


@strawberry.type
class KpiMeasurementMutations:
    @strawberry.mutation(
        description="Record KPI measurements in bulk; idempotent by (source, externalId). "
        "Admins, leads of the KPI's team, and integration tokens with `write` may."
    )
    async def record_kpi_measurements(
        self, info: Info, input: RecordKpiMeasurementsInput, idempotency_key: str | None = None
    ) -> RecordKpiMeasurementsResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            kpi_id = parse_id(input.kpi_id, "Kpi", "input.kpiId")
            inserted, duplicates = await record_kpi_measurements(
                session,
                principal,
                kpi_id,
                [
                    MeasurementInput(
                        value=i.value,
                        measured_at=i.measured_at,
                        source=i.source,
                        external_id=i.external_id,
                    )
                    for i in input.items
                ],
            )
            return {"kpi": str(kpi_id), "inserted": inserted, "duplicates": duplicates}

        async def success(result: dict[str, Any]) -> RecordKpiMeasurementsSuccess:
            return RecordKpiMeasurementsSuccess(
                kpi=await _kpi(info, result["kpi"]),
                inserted=result["inserted"],
                duplicates=result["duplicates"],
            )

        return await run_mutation(
            info, "recordKpiMeasurements", input, idempotency_key, action, success
        )


async def _kpi(info: Info, kpi_id: str) -> Kpi:
    row = await info.context.loaders.by_id(KpiRow).load(uuid.UUID(kpi_id))
    return Kpi.from_row(row)
