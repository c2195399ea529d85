"""Organisations for operators (`okr org create|list`), outside any request.

Creating one needs no cross-tenant power: the transaction is scoped to the new
organisation's id before anything is written, so row-level security admits
exactly its rows. Finding a slug and listing organisations go through the
SECURITY DEFINER lookups of the first migration (`okr_organization_by_slug`,
`okr_organization_ids`), which reveal ids only; each organisation is then read
in a transaction scoped to it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Uuid, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import create_token, system_principal
from okrgraph.domain.db import set_tenant, tenant_session
from okrgraph.domain.errors import Conflict, ErrorCode, ValidationFailed
from okrgraph.domain.models import ApiToken, Organization, Person
from okrgraph.domain.models.enums import OrgRole, SubjectType
from okrgraph.domain.validation import NAME, text_field

SLUG_MAX = 100  # organizations.slug is varchar(100)
SLUG_RULE = "lower-case letters, digits and single hyphens, starting with a letter"
_SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
EMAIL_MAX = 320
FIRST_TOKEN_NAME = "first admin (okr org create)"


@dataclass(frozen=True)
class CreatedOrganization:
    org_id: uuid.UUID
    slug: str
    admin_person_id: uuid.UUID
    admin_token: str  # the secret, shown once


@dataclass(frozen=True)
class OrganizationSummary:
    id: uuid.UUID
    slug: str
    name: str
    people: int
    live_tokens: int
    created_at: datetime


def check_slug(slug: str, field: str) -> str:
    slug = text_field(slug, field, max_length=SLUG_MAX)
    if not _SLUG.fullmatch(slug):
        raise ValidationFailed(
            field, f"{slug!r} is not a slug: use {SLUG_RULE}.", ErrorCode.INVALID_FORMAT
        )
    return slug


def check_email(email: str, field: str) -> str:
    email = text_field(email, field, max_length=EMAIL_MAX).lower()
    if "@" not in email[1:] or any(c.isspace() for c in email):
        raise ValidationFailed(
            field, f"{email!r} is not an e-mail address.", ErrorCode.INVALID_FORMAT
        )
    return email


async def organization_id_by_slug(session: AsyncSession, slug: str) -> uuid.UUID | None:
    """The organisation's id, found before any tenant is set (SECURITY DEFINER)."""
    org_id: uuid.UUID | None = await session.scalar(
        select(func.okr_organization_by_slug(slug, type_=Uuid()))
    )
    return org_id


async def create_organization(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    slug: str,
    name: str,
    admin_email: str,
    admin_name: str | None = None,
    fields: dict[str, str] | None = None,
) -> CreatedOrganization:
    """A new organisation with one ADMIN person and an admin token for them.

    `fields` names the inputs in errors (default: `slug`, `name`, `admin_email`,
    `admin_name`; the CLI passes its option names). A taken slug is a Conflict;
    nothing is written on any error.
    """
    f = {"slug": "slug", "name": "name", "admin_email": "admin_email", "admin_name": "admin_name"}
    f.update(fields or {})
    slug = check_slug(slug, f["slug"])
    name = text_field(name, f["name"], max_length=NAME)
    admin_email = check_email(admin_email, f["admin_email"])
    admin_name = text_field(
        admin_name if admin_name is not None else admin_email.split("@")[0],
        f["admin_name"],
        max_length=NAME,
    )
    org_id = uuid.uuid4()
    try:
        async with tenant_session(sessionmaker, org_id) as session:
            if await organization_id_by_slug(session, slug) is not None:
                raise Conflict(
                    f"an organisation with slug {slug!r} exists", ErrorCode.ALREADY_EXISTS
                )
            session.add(Organization(id=org_id, name=name, slug=slug))
            await session.flush()
            person = Person(
                org_id=org_id,
                id=uuid.uuid4(),
                name=admin_name,
                email=admin_email,
                org_role=OrgRole.ADMIN,
            )
            session.add(person)
            await session.flush()
            token, secret = await create_token(
                session, org_id, name=FIRST_TOKEN_NAME, scopes=["admin"], person_id=person.id
            )
            system = system_principal(org_id)
            record_audit(
                session,
                system,
                "organization.created",
                SubjectType.ORGANIZATION,
                org_id,
                {"slug": slug},
            )
            record_audit(
                session,
                system,
                "person.created",
                SubjectType.PERSON,
                person.id,
                {"email": admin_email},
            )
            record_audit(
                session,
                system,
                "api_token.created",
                SubjectType.API_TOKEN,
                token.id,
                {"name": token.name, "prefix": token.prefix, "scopes": token.scopes},
            )
    except IntegrityError as exc:  # a concurrent create took the slug
        if "uq_organizations_slug" in str(exc.orig):
            raise Conflict(
                f"an organisation with slug {slug!r} exists", ErrorCode.ALREADY_EXISTS
            ) from None
        raise
    return CreatedOrganization(org_id, slug, person.id, secret)


async def list_organizations(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> list[OrganizationSummary]:
    """Every organisation with its head counts, ordered by slug."""
    out: list[OrganizationSummary] = []
    async with sessionmaker() as session, session.begin():
        ids = [r[0] for r in await session.execute(select(func.okr_organization_ids()))]
        for org_id in ids:  # one scope at a time: RLS shows each organisation alone
            await set_tenant(session, org_id)
            org = (await session.execute(select(Organization))).scalar_one_or_none()
            if org is None:
                continue
            people = await session.scalar(
                select(func.count()).select_from(Person).where(Person.archived_at.is_(None))
            )
            tokens = await session.scalar(
                select(func.count())
                .select_from(ApiToken)
                .where(
                    ApiToken.revoked_at.is_(None),
                    (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > func.now()),
                )
            )
            out.append(
                OrganizationSummary(
                    org.id, org.slug, org.name, int(people or 0), int(tokens or 0), org.created_at
                )
            )
    return sorted(out, key=lambda o: o.slug)
