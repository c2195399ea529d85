"""Writes of objectives and of the alignment DAG between them.

Every write asks `scores.requests.request_recalculation` for the roll-up it
needs; that module, not this one, decides which columns move numbers and which
nodes to recompute (an edge's parent, say, not its child).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.access import (
    may_edit_objective,
    require_objective_editor,
    require_write,
)
from okrgraph.domain.audit import record_audit, subject_type_of
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.service import get_cycle
from okrgraph.domain.errors import Conflict, ErrorCode, Forbidden, ValidationFailed
from okrgraph.domain.lookup import get_row
from okrgraph.domain.models import Alignment, KeyResult, Objective
from okrgraph.domain.models.enums import (
    CycleState,
    Level,
    ObjectiveDriver,
    ObjectiveState,
    SubjectType,
)
from okrgraph.domain.objectives.queries import related_objectives
from okrgraph.domain.organizations.service import get_person, get_team
from okrgraph.domain.scores.requests import request_recalculation
from okrgraph.domain.validation import LONG_TEXT, text_field, weight

OBJECTIVE_CHANGED = "objective.changed"
ALIGNMENT_CHANGED = "alignment.changed"


async def get_objective(session: AsyncSession, objective_id: uuid.UUID) -> Objective:
    return await get_row(session, Objective, objective_id)


async def require_open_cycle(session: AsyncSession, cycle_id: uuid.UUID) -> None:
    cycle = await get_cycle(session, cycle_id)
    if cycle.state in (CycleState.GRADING, CycleState.CLOSED):
        raise Conflict(
            f"Cycle {cycle.name} is {cycle.state.value}; its objectives are frozen.",
            ErrorCode.CYCLE_CLOSED,
        )


async def _check_owner(
    session: AsyncSession,
    level: Level,
    owner_team_id: uuid.UUID | None,
    owner_person_id: uuid.UUID | None,
) -> None:
    if owner_team_id is not None:
        await get_team(session, owner_team_id)
    if owner_person_id is not None:
        await get_person(session, owner_person_id)
    if level is Level.TEAM and owner_team_id is None:
        raise ValidationFailed(
            "input.ownerTeamId", "A team objective needs its team.", ErrorCode.REQUIRED
        )
    if level is Level.INDIVIDUAL and owner_person_id is None:
        raise ValidationFailed(
            "input.ownerPersonId", "An individual objective needs its person.", ErrorCode.REQUIRED
        )


async def _recalc(
    session: AsyncSession,
    principal: Principal,
    row: Objective | Alignment,
    event: str,
    *,
    changed: list[str] | None = None,
    created: bool = False,
    removed: bool = False,
) -> None:
    await request_recalculation(
        session,
        principal.org_id,
        row,
        type=event,
        subject_type=subject_type_of(row),
        subject_id=row.id,
        changed=changed or [],
        created=created,
        removed=removed,
        payload=_alignment_facts(row, created, removed) if isinstance(row, Alignment) else None,
    )


def _alignment_facts(alignment: Alignment, created: bool, removed: bool) -> dict[str, str | None]:
    """What an `alignment.changed` event says (the notifier tells the parent's owners
    of a new one): which change, and the objective and the parent it joins."""
    return {
        "change": "created" if created else "removed" if removed else "updated",
        "child_objective_id": str(alignment.child_objective_id),
        "parent_objective_id": _str_or_none(alignment.parent_objective_id),
        "parent_key_result_id": _str_or_none(alignment.parent_key_result_id),
    }


def _str_or_none(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def create_objective(
    session: AsyncSession,
    principal: Principal,
    *,
    cycle_id: uuid.UUID,
    title: str,
    level: Level,
    description: str = "",
    owner_team_id: uuid.UUID | None = None,
    owner_person_id: uuid.UUID | None = None,
    progress_driver: ObjectiveDriver = ObjectiveDriver.KEY_RESULTS,
    state: ObjectiveState = ObjectiveState.ACTIVE,
) -> Objective:
    require_write(principal)
    title = text_field(title, "input.title", max_length=300)
    if state not in (ObjectiveState.DRAFT, ObjectiveState.ACTIVE):
        raise ValidationFailed(
            "input.state", "A new objective is DRAFT or ACTIVE.", ErrorCode.INVALID_STATE
        )
    await require_open_cycle(session, cycle_id)
    await _check_owner(session, level, owner_team_id, owner_person_id)
    objective = Objective(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        cycle_id=cycle_id,
        title=title,
        description=text_field(
            description, "input.description", max_length=LONG_TEXT, required=False
        ),
        level=level,
        owner_team_id=owner_team_id,
        owner_person_id=owner_person_id,
        progress_driver=progress_driver,
        state=state,
    )
    if not await may_edit_objective(session, principal, objective):
        raise Forbidden(
            "Company objectives are for admins, team objectives for the team's leads, "
            "individual objectives for their owner.",
            ErrorCode.NOT_OWNER,
        )
    session.add(objective)
    await session.flush()
    record_audit(
        session,
        principal,
        "objective.created",
        SubjectType.OBJECTIVE,
        objective.id,
        {"title": title, "level": level},
    )
    await _recalc(session, principal, objective, OBJECTIVE_CHANGED, created=True)
    return objective


async def update_objective(
    session: AsyncSession,
    principal: Principal,
    objective_id: uuid.UUID,
    *,
    title: str | None = None,
    description: str | None = None,
    state: ObjectiveState | None = None,
    progress_driver: ObjectiveDriver | None = None,
    owner_team_id: uuid.UUID | None = None,
    owner_person_id: uuid.UUID | None = None,
) -> Objective:
    objective = await get_objective(session, objective_id)
    await require_objective_editor(session, principal, objective)
    await require_open_cycle(session, objective.cycle_id)
    changes: dict[str, object] = {}
    if title is not None:
        objective.title = changes["title"] = text_field(title, "input.title", max_length=300)
    if description is not None:
        objective.description = changes["description"] = text_field(
            description, "input.description", max_length=LONG_TEXT, required=False
        )
    if owner_team_id is not None or owner_person_id is not None:
        new_team = owner_team_id or objective.owner_team_id
        new_person = owner_person_id or objective.owner_person_id
        await _check_owner(session, objective.level, new_team, new_person)
        objective.owner_team_id, objective.owner_person_id = new_team, new_person
        changes["owner"] = [new_team, new_person]
        # The new owner must be one the caller may also act for.
        await require_objective_editor(session, principal, objective)
    if state is not None and state is not objective.state:
        objective.state = changes["state"] = state
    if progress_driver is not None and progress_driver is not objective.progress_driver:
        objective.progress_driver = changes["progress_driver"] = progress_driver
    await session.flush()
    # `updated_at` is set by the database on UPDATE and expired by the flush: load it
    # now, while IO is possible (the payload is built outside the session).
    await session.refresh(objective, ["updated_at"])
    record_audit(
        session, principal, "objective.updated", SubjectType.OBJECTIVE, objective.id, changes
    )
    # Every column written; scores.requests decides which of them move numbers.
    columns = {"owner": ["owner_team_id", "owner_person_id"]}
    changed = [column for name in changes for column in columns.get(name, [name])]
    await _recalc(session, principal, objective, OBJECTIVE_CHANGED, changed=changed)
    return objective


async def _cycle_within(session: AsyncSession, inner: uuid.UUID, outer: uuid.UUID) -> bool:
    """True when cycle `inner` is `outer` or lies inside it (a quarter in its year)."""
    sql = text(
        """
        WITH RECURSIVE up(id) AS (
            SELECT CAST(:inner AS uuid)
            UNION
            SELECT c.parent_cycle_id FROM cycles c JOIN up ON c.id = up.id
            WHERE c.parent_cycle_id IS NOT NULL
        )
        SELECT EXISTS (SELECT 1 FROM up WHERE id = :outer)
        """
    )
    return bool((await session.execute(sql, {"inner": inner, "outer": outer})).scalar())


async def align_objective(
    session: AsyncSession,
    principal: Principal,
    *,
    child_id: uuid.UUID,
    parent_objective_id: uuid.UUID | None = None,
    parent_key_result_id: uuid.UUID | None = None,
    weight_value: float = 1.0,
    contributes: bool = True,
) -> Alignment:
    """Add the edge child -> parent (objective or key result); refuse a loop."""
    if (parent_objective_id is None) == (parent_key_result_id is None):
        raise ValidationFailed(
            "input.parentObjectiveId",
            "Give exactly one of parentObjectiveId, parentKeyResultId.",
            ErrorCode.EXACTLY_ONE_OF,
        )
    weight_value = weight(weight_value, "input.weight")
    child = await get_objective(session, child_id)
    await require_objective_editor(session, principal, child)
    # One alignment change at a time per organisation: two concurrent edges
    # could otherwise close a loop that neither saw.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('okr-align:' || :org))"),
        {"org": str(principal.org_id)},
    )
    if parent_key_result_id is not None:
        kr = await get_row(session, KeyResult, parent_key_result_id)
        parent = await get_objective(session, kr.objective_id)
    else:
        assert parent_objective_id is not None
        parent = await get_objective(session, parent_objective_id)
    if parent.id == child.id:
        raise Conflict("An objective cannot support itself.", ErrorCode.ALIGNMENT_LOOP)
    descendants = await related_objectives(session, [child.id], "down")
    if parent.id in {id for id, _ in descendants.get(child.id, [])}:
        raise Conflict(
            "This alignment would make a loop: the parent already supports the child.",
            ErrorCode.ALIGNMENT_LOOP,
        )
    if not await _cycle_within(session, child.cycle_id, parent.cycle_id):
        raise Conflict(
            "A parent must be in the child's cycle or a cycle containing it.",
            ErrorCode.CYCLE_MISMATCH,
        )
    duplicate = await session.execute(
        select(Alignment.id).where(
            Alignment.child_objective_id == child.id,
            Alignment.parent_objective_id == parent_objective_id
            if parent_objective_id
            else Alignment.parent_key_result_id == parent_key_result_id,
        )
    )
    if duplicate.first():
        raise Conflict("This alignment exists.", ErrorCode.ALREADY_EXISTS)
    alignment = Alignment(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        child_objective_id=child.id,
        parent_objective_id=parent_objective_id,
        parent_key_result_id=parent_key_result_id,
        weight=weight_value,
        contributes=contributes,
    )
    session.add(alignment)
    await session.flush()
    record_audit(
        session,
        principal,
        "alignment.created",
        SubjectType.ALIGNMENT,
        alignment.id,
        {"child": child.id, "parent": parent.id, "weight": weight_value},
    )
    await _recalc(session, principal, alignment, ALIGNMENT_CHANGED, created=True)
    return alignment


async def get_alignment(session: AsyncSession, alignment_id: uuid.UUID) -> Alignment:
    return await get_row(session, Alignment, alignment_id)


async def update_alignment(
    session: AsyncSession,
    principal: Principal,
    alignment_id: uuid.UUID,
    *,
    weight_value: float | None = None,
    contributes: bool | None = None,
) -> Alignment:
    alignment = await get_alignment(session, alignment_id)
    await require_objective_editor(
        session, principal, await get_objective(session, alignment.child_objective_id)
    )
    changed = []
    if weight_value is not None:
        alignment.weight = weight(weight_value, "input.weight")
        changed.append("weight")
    if contributes is not None:
        alignment.contributes = contributes
        changed.append("contributes")
    await session.flush()
    record_audit(
        session,
        principal,
        "alignment.updated",
        SubjectType.ALIGNMENT,
        alignment.id,
        {"weight": alignment.weight, "contributes": alignment.contributes},
    )
    await _recalc(session, principal, alignment, ALIGNMENT_CHANGED, changed=changed)
    return alignment


async def remove_alignment(
    session: AsyncSession, principal: Principal, alignment_id: uuid.UUID
) -> uuid.UUID:
    alignment = await get_alignment(session, alignment_id)
    await require_objective_editor(
        session, principal, await get_objective(session, alignment.child_objective_id)
    )
    await session.delete(alignment)
    await session.flush()
    record_audit(session, principal, "alignment.removed", SubjectType.ALIGNMENT, alignment_id)
    await _recalc(session, principal, alignment, ALIGNMENT_CHANGED, removed=True)
    return alignment_id
