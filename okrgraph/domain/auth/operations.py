"""Token creation for operators (`okr token create`), outside any request."""

from __future__ import annotations

import uuid

from sqlalchemy import Uuid, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import create_token
from okrgraph.domain.db import create_engine, create_sessionmaker, set_tenant
from okrgraph.domain.models import Person


async def organization_id_by_slug(session: AsyncSession, slug: str) -> uuid.UUID:
    """The organisation's id, found before any tenant is set (SECURITY DEFINER)."""
    org_id: uuid.UUID | None = await session.scalar(
        select(func.okr_organization_by_slug(slug, type_=Uuid()))
    )
    if org_id is None:
        raise LookupError(f"no organisation with slug {slug!r}")
    return org_id


async def create_token_for(
    database_url: str,
    org_slug: str,
    name: str,
    scopes: list[str],
    *,
    person_email: str | None = None,
    integration_name: str | None = None,
) -> str:
    engine = create_engine(database_url, pool_size=1)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session, session.begin():
            org_id = await organization_id_by_slug(session, org_slug)
            await set_tenant(session, org_id)
            person_id = None
            if person_email is not None:
                person_id = (
                    await session.execute(select(Person.id).where(Person.email == person_email))
                ).scalar_one_or_none()
                if person_id is None:
                    raise LookupError(f"no person {person_email} in {org_slug}")
            _, secret = await create_token(
                session,
                org_id,
                name=name,
                scopes=scopes,
                person_id=person_id,
                integration_name=integration_name,
            )
            return secret
    finally:
        await engine.dispose()
