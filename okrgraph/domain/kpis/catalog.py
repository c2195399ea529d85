"""KPI definitions and their links to key results and objectives.

Who may: admins, or a lead of the KPI's owner team (or of a team above it).
A link also changes what it points at, so linking needs the right to edit the
target objective as well (for a key result: its objective); unlinking needs
either side. Measurements are ingested by `kpis.service`, not here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.access import may_edit_objective, may_manage_team_kpis, require_write
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import Conflict, ErrorCode, Forbidden, NotFound, ValidationFailed
from okrgraph.domain.kpis.service import refresh_kpis
from okrgraph.domain.lookup import get_row
from okrgraph.domain.models import KeyResult, Kpi, KpiLink, Objective, Team
from okrgraph.domain.models.enums import Direction, KpiCadence, SubjectType
from okrgraph.domain.scores.requests import request_recalculation
from okrgraph.domain.validation import number, optional_number, text_field

KPI_LINKED = "kpi.linked"
KPI_UNLINKED = "kpi.unlinked"


@dataclass(frozen=True)
class KpiChanges:
    """An update; None leaves a field as it is, `clear_*` empties a nullable one."""

    name: str | None = None
    description: str | None = None
    owner_team_id: uuid.UUID | None = None
    unit: str | None = None
    direction: Direction | None = None
    target: float | None = None
    warning_threshold: float | None = None
    critical_threshold: float | None = None
    cadence: KpiCadence | None = None
    clear_target: bool = False
    clear_warning_threshold: bool = False
    clear_critical_threshold: bool = False


async def get_kpi(session: AsyncSession, kpi_id: uuid.UUID) -> Kpi:
    return await get_row(session, Kpi, kpi_id)


async def _team(session: AsyncSession, team_id: uuid.UUID, field: str) -> Team:
    team = await get_row(session, Team, team_id)
    if team.archived_at is not None:
        raise ValidationFailed(field, "The team is archived.", ErrorCode.ARCHIVED)
    return team


async def _require_manager(
    session: AsyncSession, principal: Principal, owner_team_id: uuid.UUID | None
) -> None:
    require_write(principal)
    if not await may_manage_team_kpis(session, principal, owner_team_id):
        raise Forbidden(
            "Only an admin or a lead of the KPI's owner team may do this.", ErrorCode.NOT_OWNER
        )


def _check_thresholds(
    direction: Direction,
    warning: float | None,
    critical: float | None,
    field: str = "input.criticalThreshold",
) -> None:
    if warning is None or critical is None:
        return
    if direction is Direction.HIGHER_IS_BETTER and critical > warning:
        raise ValidationFailed(
            field,
            "Higher is better: the critical threshold must not lie above the warning one.",
            ErrorCode.THRESHOLD_ORDER,
        )
    if direction is Direction.LOWER_IS_BETTER and critical < warning:
        raise ValidationFailed(
            field,
            "Lower is better: the critical threshold must not lie below the warning one.",
            ErrorCode.THRESHOLD_ORDER,
        )


def _blame(changes: KpiChanges) -> str:
    """The input field to name when an update leaves the thresholds out of order."""
    if changes.critical_threshold is not None:
        return "input.criticalThreshold"
    if changes.warning_threshold is not None:
        return "input.warningThreshold"
    return "input.direction"


async def _name_taken(session: AsyncSession, name: str, except_id: uuid.UUID | None) -> bool:
    stmt = select(Kpi.id).where(Kpi.name == name)
    if except_id is not None:
        stmt = stmt.where(Kpi.id != except_id)
    return (await session.execute(stmt)).first() is not None


async def create_kpi(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    direction: Direction,
    description: str = "",
    owner_team_id: uuid.UUID | None = None,
    unit: str = "",
    target: float | None = None,
    warning_threshold: float | None = None,
    critical_threshold: float | None = None,
    cadence: KpiCadence = KpiCadence.WEEKLY,
) -> Kpi:
    require_write(principal)
    name = text_field(name, "input.name", max_length=200)
    description = text_field(description, "input.description", max_length=5000, required=False)
    unit = text_field(unit, "input.unit", max_length=32, required=False)
    target = optional_number(target, "input.target")
    warning_threshold = optional_number(warning_threshold, "input.warningThreshold")
    critical_threshold = optional_number(critical_threshold, "input.criticalThreshold")
    _check_thresholds(direction, warning_threshold, critical_threshold)
    if owner_team_id is not None:
        await _team(session, owner_team_id, "input.ownerTeamId")
    await _require_manager(session, principal, owner_team_id)
    if await _name_taken(session, name, None):
        raise Conflict(f"A KPI named {name!r} exists.", ErrorCode.ALREADY_EXISTS)
    kpi = Kpi(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        name=name,
        description=description,
        owner_team_id=owner_team_id,
        unit=unit,
        direction=direction,
        target=target,
        warning_threshold=warning_threshold,
        critical_threshold=critical_threshold,
        cadence=cadence,
    )
    session.add(kpi)
    await session.flush()
    record_audit(session, principal, "kpi.created", SubjectType.KPI, kpi.id, {"name": name})
    return kpi


async def update_kpi(
    session: AsyncSession, principal: Principal, kpi_id: uuid.UUID, changes: KpiChanges
) -> Kpi:
    kpi = await get_kpi(session, kpi_id)
    await _require_manager(session, principal, kpi.owner_team_id)
    if kpi.archived_at is not None:
        raise Conflict("The KPI is archived.", ErrorCode.ARCHIVED)
    done: dict[str, object] = {}
    if changes.name is not None:
        name = text_field(changes.name, "input.name", max_length=200)
        if await _name_taken(session, name, kpi.id):
            raise Conflict(f"A KPI named {name!r} exists.", ErrorCode.ALREADY_EXISTS)
        kpi.name = done["name"] = name
    if changes.description is not None:
        kpi.description = done["description"] = text_field(
            changes.description, "input.description", max_length=5000, required=False
        )
    if changes.unit is not None:
        kpi.unit = done["unit"] = text_field(
            changes.unit, "input.unit", max_length=32, required=False
        )
    if changes.cadence is not None:
        kpi.cadence = done["cadence"] = changes.cadence
    if changes.owner_team_id is not None and changes.owner_team_id != kpi.owner_team_id:
        await _team(session, changes.owner_team_id, "input.ownerTeamId")
        if not await may_manage_team_kpis(session, principal, changes.owner_team_id):
            raise Forbidden("You may only hand a KPI to a team you lead.", ErrorCode.NOT_OWNER)
        kpi.owner_team_id = done["owner_team_id"] = changes.owner_team_id
    health_inputs = (kpi.direction, kpi.warning_threshold, kpi.critical_threshold)
    for attr, value, clear, field in (
        ("target", changes.target, changes.clear_target, "input.target"),
        (
            "warning_threshold",
            changes.warning_threshold,
            changes.clear_warning_threshold,
            "input.warningThreshold",
        ),
        (
            "critical_threshold",
            changes.critical_threshold,
            changes.clear_critical_threshold,
            "input.criticalThreshold",
        ),
    ):
        if value is not None and clear:
            raise ValidationFailed(
                field, "Give a value or clear it, not both.", ErrorCode.EXACTLY_ONE_OF
            )
        if value is not None:
            setattr(kpi, attr, number(value, field))
            done[attr] = value
        elif clear:
            setattr(kpi, attr, None)
            done[attr] = None
    if changes.direction is not None:
        kpi.direction = done["direction"] = changes.direction
    _check_thresholds(kpi.direction, kpi.warning_threshold, kpi.critical_threshold, _blame(changes))
    await session.flush()
    if (kpi.direction, kpi.warning_threshold, kpi.critical_threshold) != health_inputs:
        await refresh_kpis(session, principal.org_id, [kpi.id])
        await session.refresh(kpi)
    record_audit(session, principal, "kpi.updated", SubjectType.KPI, kpi.id, done)
    return kpi


async def archive_kpi(session: AsyncSession, principal: Principal, kpi_id: uuid.UUID) -> Kpi:
    """Archived KPIs keep their series and links but take no more measurements or edits."""
    kpi = await get_kpi(session, kpi_id)
    await _require_manager(session, principal, kpi.owner_team_id)
    if kpi.archived_at is None:
        kpi.archived_at = datetime.now(UTC)
        await session.flush()
        record_audit(session, principal, "kpi.archived", SubjectType.KPI, kpi.id)
    return kpi


async def _target_objective(
    session: AsyncSession,
    key_result_id: uuid.UUID | None,
    objective_id: uuid.UUID | None,
) -> Objective:
    """The objective a link target belongs to (the KR's objective for a KR)."""
    if (key_result_id is None) == (objective_id is None):
        raise ValidationFailed(
            "input", "Give exactly one of keyResultId and objectiveId.", ErrorCode.EXACTLY_ONE_OF
        )
    if key_result_id is not None:
        objective_id = (await get_row(session, KeyResult, key_result_id)).objective_id
    assert objective_id is not None
    objective = await get_row(session, Objective, objective_id)
    return objective


async def _existing_link(
    session: AsyncSession,
    kpi_id: uuid.UUID | None,
    key_result_id: uuid.UUID | None,
    objective_id: uuid.UUID | None,
) -> KpiLink | None:
    stmt = select(KpiLink)
    if kpi_id is not None:
        stmt = stmt.where(KpiLink.kpi_id == kpi_id)
    if key_result_id is not None:
        stmt = stmt.where(KpiLink.key_result_id == key_result_id)
    else:
        stmt = stmt.where(KpiLink.objective_id == objective_id)
    return (await session.execute(stmt)).scalars().first()


async def link_kpi(
    session: AsyncSession,
    principal: Principal,
    kpi_id: uuid.UUID,
    *,
    key_result_id: uuid.UUID | None = None,
    objective_id: uuid.UUID | None = None,
) -> Kpi:
    """A KPI measuring a key result (one KPI per KR at most), or keeping an objective on
    course. Linking what is already linked changes nothing."""
    kpi = await get_kpi(session, kpi_id)
    objective = await _target_objective(session, key_result_id, objective_id)
    await _require_manager(session, principal, kpi.owner_team_id)
    if not await may_edit_objective(session, principal, objective):
        raise Forbidden(
            "Only those who may edit the objective may link a KPI to it.", ErrorCode.NOT_OWNER
        )
    if kpi.archived_at is not None:
        raise Conflict("The KPI is archived.", ErrorCode.ARCHIVED)
    if await _existing_link(session, kpi.id, key_result_id, objective_id):
        return kpi
    if key_result_id is not None and await _existing_link(session, None, key_result_id, None):
        raise Conflict(
            "The key result is already measured by another KPI; unlink that first.",
            ErrorCode.KEY_RESULT_ALREADY_MEASURED,
        )
    link = KpiLink(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        kpi_id=kpi.id,
        key_result_id=key_result_id,
        objective_id=objective_id,
    )
    session.add(link)
    await session.flush()
    target = {"key_result_id": key_result_id, "objective_id": objective_id}
    record_audit(session, principal, "kpi.linked", SubjectType.KPI, kpi.id, target)
    # A KPI-driven KR now follows the KPI's latest value (scores.requests decides).
    if await request_recalculation(
        session,
        principal.org_id,
        link,
        type=KPI_LINKED,
        subject_type=SubjectType.KPI,
        subject_id=kpi.id,
        created=True,
        payload={"kpi_id": str(kpi.id), "key_result_id": str(key_result_id)},
    ):
        await session.flush()
    return kpi


async def unlink_kpi(
    session: AsyncSession,
    principal: Principal,
    kpi_id: uuid.UUID,
    *,
    key_result_id: uuid.UUID | None = None,
    objective_id: uuid.UUID | None = None,
) -> Kpi:
    """Remove a link; the KPI's managers or the target's editors may."""
    kpi = await get_kpi(session, kpi_id)
    objective = await _target_objective(session, key_result_id, objective_id)
    require_write(principal)
    if not (
        await may_manage_team_kpis(session, principal, kpi.owner_team_id)
        or await may_edit_objective(session, principal, objective)
    ):
        raise Forbidden(
            "Only the KPI's managers or the objective's editors may unlink it.", ErrorCode.NOT_OWNER
        )
    link = await _existing_link(session, kpi.id, key_result_id, objective_id)
    if link is None:
        raise NotFound("KpiLink", key_result_id or objective_id)
    await session.delete(link)
    await session.flush()
    target = {"key_result_id": key_result_id, "objective_id": objective_id}
    record_audit(session, principal, "kpi.unlinked", SubjectType.KPI, kpi.id, target)
    await request_recalculation(
        session,
        principal.org_id,
        link,
        type=KPI_UNLINKED,
        subject_type=SubjectType.KPI,
        subject_id=kpi.id,
        removed=True,
        payload={"kpi_id": str(kpi.id), "key_result_id": str(key_result_id)},
    )
    return kpi
