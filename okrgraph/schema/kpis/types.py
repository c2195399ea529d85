"""KPIs and their measurement series."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from okrgraph.domain import scoring
from okrgraph.domain.graph.queries import Filter, Order, Page
from okrgraph.domain.models import Kpi as KpiRow
from okrgraph.domain.models import KpiLink as KpiLinkRow
from okrgraph.domain.models import KpiMeasurement as KpiMeasurementRow
from okrgraph.domain.models import Team as TeamRow
from okrgraph.schema.context import Info
from okrgraph.schema.enums import Direction, Health, KpiCadence
from okrgraph.schema.node import Node, node_kind, to_global_id
from okrgraph.schema.organizations.types import Team
from okrgraph.schema.pagination import Connection, build_connection, page_args

NEWEST_FIRST = Order("measured_at", descending=True)
LATEST = Page(first=1)


async def kpis_linked(info: Info, column: str, target_id: uuid.UUID) -> list[Kpi]:
    """KPIs linked to a key result or an objective."""
    links = await info.context.loaders.by_parent(KpiLinkRow, column).load(target_id)
    rows = await info.context.loaders.by_id(KpiRow).load_many([link.kpi_id for link in links])
    return [Kpi.from_row(r) for r in rows if r is not None]


@node_kind(KpiRow)
@strawberry.type(description="A long-lived health metric with a target and alarm thresholds.")
class Kpi(Node):
    row: strawberry.Private[KpiRow]
    name: str = strawberry.field(description="What is measured.")
    description: str = strawberry.field(description="Why it matters.")
    unit: str = strawberry.field(description="Unit of its values.")
    direction: Direction = strawberry.field(description="Which way is better.")
    target: float | None = strawberry.field(description="The aim.")
    warning_threshold: float | None = strawberry.field(description="Past it: WARNING.")
    critical_threshold: float | None = strawberry.field(description="Past it: CRITICAL.")
    cadence: KpiCadence = strawberry.field(description="How often it is measured.")

    @classmethod
    def from_row(cls, row: KpiRow) -> Kpi:
        return cls(
            id=to_global_id("Kpi", row.id),
            row=row,
            name=row.name,
            description=row.description,
            unit=row.unit,
            direction=row.direction,
            target=row.target,
            warning_threshold=row.warning_threshold,
            critical_threshold=row.critical_threshold,
            cadence=row.cadence,
        )

    @strawberry.field(description="HEALTHY, WARNING, CRITICAL (thresholds) or UNKNOWN.")
    def health(self) -> Health:
        # Stored with latest_value, in the same transaction (kpis.service.refresh_kpis).
        return Health(self.row.health)

    @strawberry.field(description="Whether the latest value meets the target.")
    def on_target(self) -> bool | None:
        return scoring.kpi_on_target(self.row.direction, self.row.latest_value, self.row.target)

    @strawberry.field(description="The most recent measurement.")
    async def latest(self, info: Info) -> KpiMeasurement | None:
        rows = await info.context.loaders.by_parent(
            KpiMeasurementRow, "kpi_id", order=NEWEST_FIRST, page=LATEST
        ).load(self.row.id)
        return KpiMeasurement.from_row(rows[0]) if rows else None

    @strawberry.field(description="Measurements, newest first, optionally in a time range.")
    async def measurements(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Connection[KpiMeasurement]:
        page = page_args(first, after)
        filters: list[Filter] = []
        if since is not None:
            filters.append(("measured_at", ">=", since))
        if until is not None:
            filters.append(("measured_at", "<", until))
        loader = info.context.loaders.by_parent(
            KpiMeasurementRow,
            "kpi_id",
            order=NEWEST_FIRST,
            page=page,
            filters=tuple(filters),
        )
        rows = await loader.load(self.row.id)
        return build_connection(rows, page, NEWEST_FIRST, KpiMeasurement.from_row)

    @strawberry.field(description="The team that owns it.")
    async def owner_team(self, info: Info) -> Team | None:
        if self.row.owner_team_id is None:
            return None
        row = await info.context.loaders.by_id(TeamRow).load(self.row.owner_team_id)
        return Team.from_row(row) if row else None


@node_kind(KpiMeasurementRow)
@strawberry.type(description="One point of a KPI's series.")
class KpiMeasurement(Node):
    row: strawberry.Private[KpiMeasurementRow]
    value: float = strawberry.field(description="The measured value.")
    measured_at: datetime = strawberry.field(description="When it was true.")
    source: str = strawberry.field(description="Where it came from.")
    external_id: str | None = strawberry.field(description="The source's id (idempotency).")

    @classmethod
    def from_row(cls, row: KpiMeasurementRow) -> KpiMeasurement:
        return cls(
            id=to_global_id("KpiMeasurement", row.id),
            row=row,
            value=row.value,
            measured_at=row.measured_at,
            source=row.source,
            external_id=row.external_id,
        )
