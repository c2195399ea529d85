"""Token creation for operators (`okr token create`), outside any request."""

from __future__ import annotations

from sqlalchemy import select, text

from okrgraph.domain.auth.tokens import create_token
from okrgraph.domain.db import create_engine, create_sessionmaker, tenant_session
from okrgraph.domain.models import Organization, Person


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
        async with sessionmaker() as session:
            result = await session.execute(text("SELECT okr_organization_ids()"))
            org_ids = list(result.scalars())
        for org_id in org_ids:
            async with tenant_session(sessionmaker, org_id) as session:
                org = (await session.execute(select(Organization))).scalar_one()
                if org.slug != org_slug:
                    continue
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
        raise LookupError(f"no organisation with slug {org_slug!r}")
    finally:
        await engine.dispose()
