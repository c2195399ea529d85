"""recordKpiMeasurements: bulk, idempotent, permissions, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import KpiMeasurement
from okrgraph.domain.models.enums import OrgRole
from okrgraph.domain.seed import SeedResult
from tests.factories import make_token
from tests.gql import data

RECORD = """mutation($input: RecordKpiMeasurementsInput!) {
  recordKpiMeasurements(input: $input) {
    __typename
    ... on RecordKpiMeasurementsSuccess { inserted duplicates kpi { health latest { value } } }
    ... on UserError { message }
    ... on ValidationError { field }
  }
}"""


async def dau_id(client: httpx.AsyncClient, token: str) -> str:
    kpis = await data(client, token, "{ kpis(first: 10) { nodes { id name } } }")
    kpi_id: str = next(k["id"] for k in kpis["kpis"]["nodes"] if k["name"] == "Daily active users")
    return kpi_id


async def measurements(db: AsyncSession) -> int:
    return int((await db.execute(select(func.count()).select_from(KpiMeasurement))).scalar_one())


def items(n: int, value: float = 440_000) -> list[dict[str, object]]:
    at = datetime.now(UTC) - timedelta(hours=1)
    return [
        {"value": value + i, "measuredAt": (at + timedelta(seconds=i)).isoformat(),
         "source": "warehouse", "externalId": f"row-{i}"}
        for i in range(n)
    ]  # fmt: skip


async def test_bulk_and_idempotent(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    _, integration = await make_token(db, demo.org_id, integration_name="warehouse")
    kpi = await dau_id(client, demo.admin_token or "")
    before = await measurements(db)
    first = await data(client, integration, RECORD, input={"kpiId": kpi, "items": items(500)})
    result = first["recordKpiMeasurements"]
    assert (result["inserted"], result["duplicates"]) == (500, 0)
    assert result["kpi"]["health"] == "CRITICAL"
    assert result["kpi"]["latest"]["value"] == 440_499
    again = await data(client, integration, RECORD, input={"kpiId": kpi, "items": items(500)})
    assert again["recordKpiMeasurements"]["inserted"] == 0
    assert again["recordKpiMeasurements"]["duplicates"] == 500
    assert await measurements(db) == before + 500


async def test_refused_inputs_change_nothing(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    kpi = await dau_id(client, demo.admin_token or "")
    before = await measurements(db)
    too_many = await data(
        client, demo.admin_token, RECORD, input={"kpiId": kpi, "items": items(1001)}
    )
    assert too_many["recordKpiMeasurements"]["__typename"] == "ValidationError"
    future = items(3)
    future[2]["measuredAt"] = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    bad = await data(client, demo.admin_token, RECORD, input={"kpiId": kpi, "items": future})
    assert bad["recordKpiMeasurements"]["__typename"] == "ValidationError"
    _, member = await make_token(db, demo.org_id, role=OrgRole.MEMBER)
    forbidden = await data(client, member, RECORD, input={"kpiId": kpi, "items": items(2)})
    assert forbidden["recordKpiMeasurements"]["__typename"] == "Forbidden"
    assert await measurements(db) == before
