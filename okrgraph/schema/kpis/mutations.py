"""Writes of KPI definitions and their links (measurements are `recordKpiMeasurements`)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import ErrorCode, ValidationFailed
from okrgraph.domain.kpis import catalog
from okrgraph.domain.models.enums import Direction, KpiCadence
from okrgraph.schema import bounds
from okrgraph.schema.context import Info
from okrgraph.schema.kpis.types import Kpi
from okrgraph.schema.node import input_kwargs, parse_id, parse_optional_id
from okrgraph.schema.payloads import UserErrors, run_mutation


@strawberry.type(description="The KPI after the change.")
class KpiSuccess:
    kpi: Kpi = strawberry.field(description="The KPI.")


KpiResult = Annotated[
    KpiSuccess | UserErrors,
    strawberry.union("KpiResult", description="KpiSuccess or a user error."),
]


@strawberry.input(description="A new KPI.")
class CreateKpiInput:
    name: str = bounds.text("Unique in the organisation.", validation.NAME)
    direction: Direction = strawberry.field(description="Which way is better.")
    description: str = bounds.text("Why it matters.", validation.LONG_TEXT, default="")
    owner_team_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The team that owns it; its leads manage it. Only admins may leave it out.",
    )
    unit: str = bounds.text("Unit of its values.", validation.UNIT, default="")
    target: float | None = bounds.number("The aim.", default=None)
    warning_threshold: float | None = bounds.number("Past it: WARNING.", default=None)
    critical_threshold: float | None = bounds.number(
        "Past it: CRITICAL. Higher is better: at most the warning threshold; "
        "lower is better: at least it.",
        default=None,
    )
    cadence: KpiCadence = strawberry.field(
        default=KpiCadence.WEEKLY, description="How often it is measured."
    )


@strawberry.input(description="Changes to a KPI; omitted fields stay.")
class UpdateKpiInput:
    id: strawberry.ID = strawberry.field(description="The KPI.")
    name: str | None = bounds.text("New name.", validation.NAME, default=None)
    description: str | None = bounds.text("New description.", validation.LONG_TEXT, default=None)
    owner_team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Hand it to another team (non-admins: one they lead)."
    )
    unit: str | None = bounds.text("New unit.", validation.UNIT, default=None)
    direction: Direction | None = strawberry.field(default=None, description="New direction.")
    target: float | None = bounds.number("New target.", default=None)
    warning_threshold: float | None = bounds.number("New warning threshold.", default=None)
    critical_threshold: float | None = bounds.number("New critical threshold.", default=None)
    cadence: KpiCadence | None = strawberry.field(default=None, description="New cadence.")
    clear_target: bool = strawberry.field(default=False, description="Remove the target.")
    clear_warning_threshold: bool = strawberry.field(
        default=False, description="Remove the warning threshold."
    )
    clear_critical_threshold: bool = strawberry.field(
        default=False, description="Remove the critical threshold."
    )


@strawberry.input(description="A KPI and what it is linked to: one key result or one objective.")
class KpiLinkInput:
    kpi_id: strawberry.ID = strawberry.field(description="The KPI.")
    key_result_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A key result it measures (a key result is measured by at most one KPI).",
    )
    objective_id: strawberry.ID | None = strawberry.field(
        default=None, description="An objective it keeps on course."
    )


def _kpi(row: Any) -> KpiSuccess:
    return KpiSuccess(kpi=Kpi.from_row(row))


def _link_target(input: KpiLinkInput) -> dict[str, Any]:
    targets = {
        "key_result_id": parse_optional_id(input.key_result_id, "KeyResult", "input.keyResultId"),
        "objective_id": parse_optional_id(input.objective_id, "Objective", "input.objectiveId"),
    }
    if (targets["key_result_id"] is None) == (targets["objective_id"] is None):
        raise ValidationFailed(
            "input", "Give exactly one of keyResultId and objectiveId.", ErrorCode.EXACTLY_ONE_OF
        )
    return targets


@strawberry.type
class KpiMutations:
    @strawberry.mutation(description="Define a KPI (admins, or leads of its owner team).")
    async def create_kpi(
        self, info: Info, input: CreateKpiInput, idempotency_key: str | None = None
    ) -> KpiResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await catalog.create_kpi(
                session, principal, **input_kwargs(input, ids={"owner_team_id": "Team"})
            )

        return await run_mutation(info, "createKpi", input, idempotency_key, action, _kpi)

    @strawberry.mutation(
        description="Change a KPI's definition (admins, or leads of its owner team). "
        "Changed thresholds or direction re-evaluate its health at once."
    )
    async def update_kpi(
        self, info: Info, input: UpdateKpiInput, idempotency_key: str | None = None
    ) -> KpiResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            changes = catalog.KpiChanges(
                **input_kwargs(input, ids={"owner_team_id": "Team"}, skip={"id"})
            )
            return await catalog.update_kpi(
                session, principal, parse_id(input.id, "Kpi", "input.id"), changes
            )

        return await run_mutation(info, "updateKpi", input, idempotency_key, action, _kpi)

    @strawberry.mutation(
        description="Archive a KPI (admins, or leads of its owner team): its series and "
        "links stay, it takes no more measurements or edits."
    )
    async def archive_kpi(
        self, info: Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> KpiResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await catalog.archive_kpi(session, principal, parse_id(id, "Kpi", "id"))

        return await run_mutation(info, "archiveKpi", id, idempotency_key, action, _kpi)

    @strawberry.mutation(
        description="Link a KPI to a key result it measures or an objective it keeps on "
        "course. Needs both the right to manage the KPI (admins, its owner team's leads) "
        "and to edit the objective. Linking again changes nothing."
    )
    async def link_kpi(
        self, info: Info, input: KpiLinkInput, idempotency_key: str | None = None
    ) -> KpiResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await catalog.link_kpi(
                session,
                principal,
                parse_id(input.kpi_id, "Kpi", "input.kpiId"),
                **_link_target(input),
            )

        return await run_mutation(info, "linkKpi", input, idempotency_key, action, _kpi)

    @strawberry.mutation(
        description="Remove a KPI's link (the KPI's managers or the objective's editors)."
    )
    async def unlink_kpi(
        self, info: Info, input: KpiLinkInput, idempotency_key: str | None = None
    ) -> KpiResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await catalog.unlink_kpi(
                session,
                principal,
                parse_id(input.kpi_id, "Kpi", "input.kpiId"),
                **_link_target(input),
            )

        return await run_mutation(info, "unlinkKpi", input, idempotency_key, action, _kpi)
