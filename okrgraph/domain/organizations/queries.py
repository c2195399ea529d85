"""Reads of organisations, teams and people."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import Organization, Person


async def current_organization(session: AsyncSession) -> Organization:
    """The organisation the transaction is scoped to (row-level security shows only it)."""
    return (await session.execute(select(Organization))).scalar_one()


async def person(session: AsyncSession, org_id: uuid.UUID, person_id: uuid.UUID) -> Person | None:
    return await session.get(Person, (org_id, person_id))
