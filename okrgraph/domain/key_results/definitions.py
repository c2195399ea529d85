"""Writes that define key results (creation, target revisions, cancellation) and
their initiatives. Check-ins are `service.record_check_in`."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.access import require_key_result_writer, require_objective_editor
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import ErrorCode, ValidationFailed
from okrgraph.domain.key_results.own_score import rescore_own
from okrgraph.domain.lookup import get_row
from okrgraph.domain.messages import ScoreChange
from okrgraph.domain.models import Cycle, Initiative, KeyResult, TargetRevision
from okrgraph.domain.models.enums import (
    InitiativeStatus,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    SubjectType,
)
from okrgraph.domain.objectives.service import get_objective, require_open_cycle
from okrgraph.domain.organizations.service import get_person
from okrgraph.domain.scores.requests import request_recalculation
from okrgraph.domain.validation import number, text_field, weight

KEY_RESULT_CHANGED = "key_result.changed"


async def get_key_result(session: AsyncSession, key_result_id: uuid.UUID) -> KeyResult:
    return await get_row(session, KeyResult, key_result_id)


def check_target(kind: KeyResultKind, start: float, target: float | None) -> None:
    """The rules of DESIGN.md section 3 on what a target may be, per kind."""
    if kind is KeyResultKind.MILESTONE:
        return
    if target is None:
        raise ValidationFailed(
            "input.target", f"A {kind.value} key result needs a target.", ErrorCode.REQUIRED
        )
    number(target, "input.target")
    if kind is KeyResultKind.INCREASE and target <= start:
        raise ValidationFailed(
            "input.target",
            "An INCREASE key result's target is above start.",
            ErrorCode.INVALID_TARGET,
        )
    if kind is KeyResultKind.DECREASE and target >= start:
        raise ValidationFailed(
            "input.target",
            "A DECREASE key result's target is below start.",
            ErrorCode.INVALID_TARGET,
        )


async def _rescore(
    session: AsyncSession,
    principal: Principal,
    kr: KeyResult,
    *,
    changed: list[str] | None = None,
    created: bool = False,
    written: list[ScoreChange] | None = None,
) -> None:
    """Ask for the roll-up the change needs (scores.requests decides which)."""
    await request_recalculation(
        session,
        principal.org_id,
        kr,
        type=KEY_RESULT_CHANGED,
        subject_type=SubjectType.KEY_RESULT,
        subject_id=kr.id,
        changed=changed or [],
        created=created,
        written=written or [],
    )


# Columns a key result's own score is made of (besides its current value).
OWN_SCORE_COLUMNS = frozenset({"kind", "start_value", "target_value", "stretch",
                               "progress_driver", "state"})  # fmt: skip


async def create_key_result(
    session: AsyncSession,
    principal: Principal,
    *,
    objective_id: uuid.UUID,
    title: str,
    kind: KeyResultKind,
    start: float = 0.0,
    target: float | None = None,
    unit: str = "",
    weight_value: float = 1.0,
    owner_person_id: uuid.UUID | None = None,
    progress_driver: KeyResultDriver = KeyResultDriver.CHECK_INS,
    stretch: bool = False,
) -> KeyResult:
    objective = await get_objective(session, objective_id)
    await require_objective_editor(session, principal, objective)
    await require_open_cycle(session, objective.cycle_id)
    title = text_field(title, "input.title", max_length=300)
    unit = text_field(unit, "input.unit", max_length=32, required=False)
    number(start, "input.start")
    if kind is KeyResultKind.MILESTONE:
        start, target = 0.0, 1.0
    check_target(kind, start, target)
    owner = owner_person_id or principal.person_id
    if owner is not None:
        await get_person(session, owner)
    kr = KeyResult(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        objective_id=objective.id,
        title=title,
        kind=kind,
        unit=unit,
        start_value=start,
        target_value=target,
        weight=weight(weight_value, "input.weight"),
        owner_person_id=owner,
        progress_driver=progress_driver,
        stretch=stretch,
    )
    session.add(kr)
    await session.flush()
    record_audit(
        session, principal, "key_result.created", SubjectType.KEY_RESULT, kr.id, {"title": title}
    )
    await _rescore(session, principal, kr, created=True)
    return kr


async def update_key_result(
    session: AsyncSession,
    principal: Principal,
    key_result_id: uuid.UUID,
    *,
    title: str | None = None,
    target: float | None = None,
    target_reason: str = "",
    unit: str | None = None,
    weight_value: float | None = None,
    owner_person_id: uuid.UUID | None = None,
    stretch: bool | None = None,
    progress_driver: KeyResultDriver | None = None,
    state: KeyResultState | None = None,
) -> KeyResult:
    """Change a key result; a new target is recorded as a revision, the old one kept.
    Its own score follows at once (`rescore_own`)."""
    kr = await get_row(session, KeyResult, key_result_id, for_update=True)
    objective = await get_objective(session, kr.objective_id)
    await require_objective_editor(session, principal, objective)
    await require_open_cycle(session, objective.cycle_id)
    changes: dict[str, object] = {}
    changed: list[str] = []  # every column written; scores.requests decides what it moves
    if title is not None:
        kr.title = changes["title"] = text_field(title, "input.title", max_length=300)
        changed.append("title")
    if unit is not None:
        kr.unit = changes["unit"] = text_field(unit, "input.unit", max_length=32, required=False)
        changed.append("unit")
    if owner_person_id is not None:
        await get_person(session, owner_person_id)
        kr.owner_person_id = changes["owner"] = owner_person_id
        changed.append("owner_person_id")
    if target is not None and target != kr.target_value:
        if kr.kind is KeyResultKind.MILESTONE:
            raise ValidationFailed(
                "input.target", "A milestone's target is always done (1).", ErrorCode.INVALID_TARGET
            )
        check_target(kr.kind, kr.start_value, target)
        session.add(
            TargetRevision(
                org_id=principal.org_id,
                key_result_id=kr.id,
                old_target=kr.target_value,
                new_target=target,
                reason=text_field(
                    target_reason, "input.targetReason", max_length=2000, required=False
                ),
                revised_by_person_id=principal.person_id,
            )
        )
        kr.target_value = changes["target"] = target
        changed.append("target_value")
    if weight_value is not None:
        kr.weight = changes["weight"] = weight(weight_value, "input.weight")
        changed.append("weight")
    if stretch is not None and stretch != kr.stretch:
        kr.stretch = changes["stretch"] = stretch
        changed.append("stretch")
    if progress_driver is not None and progress_driver is not kr.progress_driver:
        kr.progress_driver = changes["progress_driver"] = progress_driver
        changed.append("progress_driver")
    if state is not None and state is not kr.state:
        kr.state = changes["state"] = state
        changed.append("state")
    written = []
    if OWN_SCORE_COLUMNS & set(changed):
        cycle = await get_row(session, Cycle, objective.cycle_id)
        written = await rescore_own(session, kr, cycle.starts_on, cycle.ends_on, clock.now())
    await session.flush()
    record_audit(session, principal, "key_result.updated", SubjectType.KEY_RESULT, kr.id, changes)
    await _rescore(session, principal, kr, changed=changed, written=written)
    return kr


async def create_initiative(
    session: AsyncSession,
    principal: Principal,
    *,
    key_result_id: uuid.UUID,
    title: str,
    owner_person_id: uuid.UUID | None = None,
    status: InitiativeStatus = InitiativeStatus.PLANNED,
    link: str | None = None,
) -> Initiative:
    kr = await get_key_result(session, key_result_id)
    objective = await get_objective(session, kr.objective_id)
    await require_key_result_writer(session, principal, objective, kr.owner_person_id)
    owner = owner_person_id or principal.person_id
    if owner is not None:
        await get_person(session, owner)
    initiative = Initiative(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        key_result_id=kr.id,
        title=text_field(title, "input.title", max_length=300),
        owner_person_id=owner,
        status=status,
        link=_link(link),
    )
    session.add(initiative)
    await session.flush()
    record_audit(session, principal, "initiative.created", SubjectType.INITIATIVE, initiative.id)
    return initiative


def _link(link: str | None) -> str | None:
    if link is None:
        return None
    link = text_field(link, "input.link", max_length=2000)
    if not link.startswith(("https://", "http://")):
        raise ValidationFailed("input.link", "A link is an http(s) URL.", ErrorCode.INVALID_FORMAT)
    return link


async def update_initiative(
    session: AsyncSession,
    principal: Principal,
    initiative_id: uuid.UUID,
    *,
    title: str | None = None,
    status: InitiativeStatus | None = None,
    link: str | None = None,
) -> Initiative:
    initiative = await get_row(session, Initiative, initiative_id)
    kr = await get_key_result(session, initiative.key_result_id)
    objective = await get_objective(session, kr.objective_id)
    await require_key_result_writer(session, principal, objective, kr.owner_person_id)
    if title is not None:
        initiative.title = text_field(title, "input.title", max_length=300)
    if status is not None:
        initiative.status = status
    if link is not None:
        initiative.link = _link(link)
    await session.flush()
    record_audit(session, principal, "initiative.updated", SubjectType.INITIATIVE, initiative.id)
    return initiative
