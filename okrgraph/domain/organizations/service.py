"""Writes of teams, people and memberships (admins only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import Conflict, ErrorCode, ValidationFailed
from okrgraph.domain.lookup import get_row
from okrgraph.domain.messages import AccessRevoked
from okrgraph.domain.models import Membership, Person, Team
from okrgraph.domain.models.enums import OrgRole, SubjectType, TeamRole
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.validation import LONG_TEXT, text_field


async def get_team(session: AsyncSession, team_id: uuid.UUID) -> Team:
    return await get_row(session, Team, team_id)


async def get_person(session: AsyncSession, person_id: uuid.UUID) -> Person:
    return await get_row(session, Person, person_id)


async def _would_loop(session: AsyncSession, team_id: uuid.UUID, parent_id: uuid.UUID) -> bool:
    """True when `parent_id` is `team_id` or lies under it."""
    sql = text(
        """
        WITH RECURSIVE up(id) AS (
            SELECT CAST(:parent AS uuid)
            UNION
            SELECT t.parent_team_id FROM teams t JOIN up ON t.id = up.id
            WHERE t.parent_team_id IS NOT NULL
        )
        SELECT EXISTS (SELECT 1 FROM up WHERE id = :team)
        """
    )
    return bool((await session.execute(sql, {"parent": parent_id, "team": team_id})).scalar())


async def create_team(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    description: str = "",
    parent_team_id: uuid.UUID | None = None,
) -> Team:
    require_admin(principal)
    name = text_field(name, "input.name", max_length=200)
    if parent_team_id is not None:
        await get_team(session, parent_team_id)
    if (await session.execute(select(Team.id).where(Team.name == name))).first():
        raise Conflict(f"A team named {name!r} exists.", ErrorCode.ALREADY_EXISTS)
    team = Team(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        name=name,
        description=text_field(
            description, "input.description", max_length=LONG_TEXT, required=False
        ),
        parent_team_id=parent_team_id,
    )
    session.add(team)
    await session.flush()
    record_audit(session, principal, "team.created", SubjectType.TEAM, team.id, {"name": name})
    return team


async def update_team(
    session: AsyncSession,
    principal: Principal,
    team_id: uuid.UUID,
    *,
    name: str | None = None,
    description: str | None = None,
    parent_team_id: uuid.UUID | None = None,
    clear_parent: bool = False,
) -> Team:
    require_admin(principal)
    team = await get_team(session, team_id)
    changes: dict[str, object] = {}
    if name is not None:
        team.name = changes["name"] = text_field(name, "input.name", max_length=200)
    if description is not None:
        team.description = changes["description"] = text_field(
            description, "input.description", max_length=LONG_TEXT, required=False
        )
    if parent_team_id is not None:
        await get_team(session, parent_team_id)
        if await _would_loop(session, team.id, parent_team_id):
            raise Conflict(
                "A team cannot sit under itself or one of its own sub-teams.", ErrorCode.TEAM_LOOP
            )
        team.parent_team_id = changes["parent_team_id"] = parent_team_id
    elif clear_parent:
        team.parent_team_id = changes["parent_team_id"] = None
    await session.flush()
    record_audit(session, principal, "team.updated", SubjectType.TEAM, team.id, changes)
    return team


async def archive_team(session: AsyncSession, principal: Principal, team_id: uuid.UUID) -> Team:
    require_admin(principal)
    team = await get_team(session, team_id)
    if team.archived_at is None:
        team.archived_at = datetime.now(UTC)
        await session.flush()
        record_audit(session, principal, "team.archived", SubjectType.TEAM, team.id)
    return team


async def create_person(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    email: str,
    org_role: OrgRole = OrgRole.MEMBER,
) -> Person:
    require_admin(principal)
    name = text_field(name, "input.name", max_length=200)
    email = text_field(email, "input.email", max_length=320).lower()
    if "@" not in email[1:]:
        raise ValidationFailed("input.email", "Not an e-mail address.", ErrorCode.INVALID_FORMAT)
    if (await session.execute(select(Person.id).where(Person.email == email))).first():
        raise Conflict(f"{email} is already a member.", ErrorCode.ALREADY_EXISTS)
    person = Person(
        org_id=principal.org_id, id=uuid.uuid4(), name=name, email=email, org_role=org_role
    )
    session.add(person)
    await session.flush()
    record_audit(
        session, principal, "person.created", SubjectType.PERSON, person.id, {"email": email}
    )
    return person


async def update_person(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    *,
    name: str | None = None,
    org_role: OrgRole | None = None,
) -> Person:
    require_admin(principal)
    person = await get_person(session, person_id)
    changes: dict[str, object] = {}
    if name is not None:
        person.name = changes["name"] = text_field(name, "input.name", max_length=200)
    if org_role is not None:
        if person.id == principal.person_id and org_role is not OrgRole.ADMIN:
            raise Conflict(
                "Admins cannot demote themselves; ask another admin.", ErrorCode.SELF_CHANGE
            )
        person.org_role = changes["org_role"] = org_role
    await session.flush()
    record_audit(session, principal, "person.updated", SubjectType.PERSON, person.id, changes)
    return person


async def archive_person(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID
) -> Person:
    require_admin(principal)
    person = await get_person(session, person_id)
    if person.id == principal.person_id:
        raise Conflict("You cannot archive yourself.", ErrorCode.SELF_CHANGE)
    if person.archived_at is None:
        person.archived_at = datetime.now(UTC)
        await session.flush()
        record_audit(session, principal, "person.archived", SubjectType.PERSON, person.id)
        # Once committed, the person's open subscriptions end, in every API process.
        AfterCommit.of(session).announce(
            AccessRevoked(person.org_id, person_ids=frozenset({person.id}))
        )
    return person


async def set_membership(
    session: AsyncSession,
    principal: Principal,
    *,
    team_id: uuid.UUID,
    person_id: uuid.UUID,
    role: TeamRole = TeamRole.MEMBER,
) -> Membership:
    """Add a person to a team, or change their role there."""
    require_admin(principal)
    await get_team(session, team_id)
    await get_person(session, person_id)
    membership = (
        await session.execute(
            select(Membership).where(
                Membership.team_id == team_id, Membership.person_id == person_id
            )
        )
    ).scalar_one_or_none()
    if membership is None:
        membership = Membership(
            org_id=principal.org_id, id=uuid.uuid4(), team_id=team_id, person_id=person_id
        )
        session.add(membership)
    membership.role = role
    await session.flush()
    record_audit(
        session, principal, "membership.set", SubjectType.MEMBERSHIP, membership.id, {"role": role}
    )
    return membership


async def remove_membership(
    session: AsyncSession, principal: Principal, membership_id: uuid.UUID
) -> uuid.UUID:
    require_admin(principal)
    membership = await get_row(session, Membership, membership_id)
    await session.delete(membership)
    await session.flush()
    record_audit(session, principal, "membership.removed", SubjectType.MEMBERSHIP, membership_id)
    return membership_id
