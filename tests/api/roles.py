"""A cast of callers for permission tests, and a second organisation to attack from.

The `client` fixture shares the test's transaction, and every request scopes it
to its token's organisation, so reads through `db` call `set_tenant` first
(`count` does).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import hash_secret
from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import ApiToken, Base
from okrgraph.domain.models.enums import OrgRole, TeamRole
from tests.factories import make_membership, make_org, make_person, make_team, make_token

ROLES = ("admin", "lead", "member", "viewer", "read_only_admin", "integration")


@dataclass
class Cast:
    org_id: uuid.UUID
    team_id: uuid.UUID  # led by `lead`
    lead_id: uuid.UUID
    member_id: uuid.UUID
    viewer_id: uuid.UUID
    tokens: dict[str, str]  # role -> bearer secret


async def cast(db: AsyncSession, org_id: uuid.UUID, admin_token: str) -> Cast:
    """In `org_id`: a team with its lead, a plain member, a viewer, an admin with a
    read-only token and an integration with read/write, plus the given admin token."""
    await set_tenant(db, org_id)
    team = await make_team(db, org_id)
    lead = await make_person(db, org_id, role=OrgRole.MEMBER)
    await make_membership(db, org_id, team_id=team.id, person_id=lead.id, role=TeamRole.LEAD)
    member = await make_person(db, org_id, role=OrgRole.MEMBER)
    await make_membership(db, org_id, team_id=team.id, person_id=member.id, role=TeamRole.MEMBER)
    viewer = await make_person(db, org_id, role=OrgRole.VIEWER)
    tokens = {
        "admin": admin_token,
        "lead": (await make_token(db, org_id, person_id=lead.id))[1],
        "member": (await make_token(db, org_id, person_id=member.id))[1],
        "viewer": (await make_token(db, org_id, person_id=viewer.id, scopes=["read"]))[1],
        "read_only_admin": (await make_token(db, org_id, role=OrgRole.ADMIN, scopes=["read"]))[1],
        "integration": (
            await make_token(db, org_id, integration_name="ci", scopes=["read", "write"])
        )[1],
    }
    return Cast(org_id, team.id, lead.id, member.id, viewer.id, tokens)


async def other_org(db: AsyncSession) -> tuple[uuid.UUID, str]:
    """A second organisation and its admin's token (all scopes). Leaves `db` scoped to it."""
    org = await make_org(db)
    _, secret = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read", "write", "admin"])
    return org.id, secret


async def count(db: AsyncSession, org_id: uuid.UUID, model: type[Base], *where: Any) -> int:
    """Rows of `model` in `org_id` (matching `where`)."""
    await set_tenant(db, org_id)
    stmt = select(func.count()).select_from(model).where(*where)
    return int((await db.execute(stmt)).scalar_one())


async def column(db: AsyncSession, org_id: uuid.UUID, col: Any, *where: Any) -> Any:
    """One value read fresh from the database (not from the session's identity map)."""
    await set_tenant(db, org_id)
    return (await db.execute(select(col).where(*where))).scalar_one()


async def person_of(db: AsyncSession, org_id: uuid.UUID, secret: str) -> uuid.UUID:
    """The person a bearer secret belongs to."""
    person_id: uuid.UUID = await column(
        db, org_id, ApiToken.person_id, ApiToken.token_hash == hash_secret(secret)
    )
    return person_id
