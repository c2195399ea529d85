"""Who may write what (DESIGN.md section 6): everyone in an organisation reads;
writes follow ownership — an individual's own objectives, a team lead's team
objectives (and those of the teams under it), admins everything. VIEWERs and
read-only tokens never write the organisation's data; a read-only token writes
nothing at all, and a VIEWER with a `write` token changes only their own inbox
(domain/notifications/inbox.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import ErrorCode, Forbidden
from okrgraph.domain.models import Objective
from okrgraph.domain.models.enums import Level, OrgRole


def require_write(principal: Principal) -> None:
    if not principal.has_scope("write"):
        raise Forbidden("This token lacks the `write` scope.", ErrorCode.MISSING_SCOPE)
    if principal.org_role is OrgRole.VIEWER:
        raise Forbidden("Viewers cannot change anything.", ErrorCode.VIEWER_READ_ONLY)


def require_admin(principal: Principal) -> None:
    require_write(principal)
    if not principal.is_admin:
        raise Forbidden(
            "Only an admin (with an `admin`-scoped token) may do this.", ErrorCode.ADMIN_REQUIRED
        )


async def leads_team(session: AsyncSession, person_id: uuid.UUID, team_id: uuid.UUID) -> bool:
    """True when the person leads the team or any team above it."""
    sql = text(
        """
        WITH RECURSIVE up(id) AS (
            SELECT CAST(:team AS uuid)
            UNION
            SELECT t.parent_team_id FROM teams t JOIN up ON t.id = up.id
            WHERE t.parent_team_id IS NOT NULL
        )
        SELECT EXISTS (
            SELECT 1 FROM memberships m JOIN up ON m.team_id = up.id
            WHERE m.person_id = :person AND m.role = 'LEAD'
        )
        """
    )
    return bool((await session.execute(sql, {"team": team_id, "person": person_id})).scalar())


async def may_edit_objective(
    session: AsyncSession, principal: Principal, objective: Objective
) -> bool:
    if principal.is_admin:
        return True
    if principal.person_id is None or principal.org_role is OrgRole.VIEWER:
        return False
    if objective.level is Level.COMPANY:
        return False
    if objective.level is Level.INDIVIDUAL and objective.owner_person_id == principal.person_id:
        return True
    return objective.owner_team_id is not None and await leads_team(
        session, principal.person_id, objective.owner_team_id
    )


async def require_objective_editor(
    session: AsyncSession, principal: Principal, objective: Objective
) -> None:
    require_write(principal)
    if not await may_edit_objective(session, principal, objective):
        raise Forbidden(
            "Only the objective's owner, a lead of its team, or an admin may do this.",
            ErrorCode.NOT_OWNER,
        )


async def require_key_result_writer(
    session: AsyncSession, principal: Principal, objective: Objective, owner_id: uuid.UUID | None
) -> None:
    """Check-ins and initiatives: the KR's owner, whoever may edit its objective, or an
    integration token with `write` (integrations push numbers in)."""
    require_write(principal)
    if principal.person_id is None:
        return
    if owner_id is not None and owner_id == principal.person_id:
        return
    if not await may_edit_objective(session, principal, objective):
        raise Forbidden(
            "Only the key result's owner, its objective's editors or an admin may.",
            ErrorCode.NOT_OWNER,
        )


async def may_manage_team_kpis(
    session: AsyncSession, principal: Principal, owner_team_id: uuid.UUID | None
) -> bool:
    if principal.is_admin:
        return True
    if principal.person_id is None or owner_team_id is None:
        return False
    return await leads_team(session, principal.person_id, owner_team_id)
