"""Tokens for operators (`okr token create|list|revoke`), outside any request.

The organisation is found by its slug before any tenant is set (the SECURITY
DEFINER `okr_organization_by_slug`); everything after runs in a transaction
scoped to it, so a token, a person or a revocation of another organisation
can't be reached.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.auth.service import revoke_api_token
from okrgraph.domain.auth.tokens import (
    SCOPES,
    TOKEN_PREFIX,
    create_token,
    hash_secret,
    system_principal,
)
from okrgraph.domain.db import set_tenant
from okrgraph.domain.errors import ValidationFailed
from okrgraph.domain.models import ApiToken, Person
from okrgraph.domain.organizations.operations import (
    check_email,
)
from okrgraph.domain.organizations.operations import (
    organization_id_by_slug as _org_id,
)
from okrgraph.domain.validation import NAME, text_field

PREFIX_LENGTH = len(TOKEN_PREFIX) + 6  # what `ApiToken.prefix` keeps of a secret


async def organization_id_by_slug(session: AsyncSession, slug: str) -> uuid.UUID:
    """The organisation's id (SECURITY DEFINER lookup); LookupError when unknown."""
    org_id = await _org_id(session, slug)
    if org_id is None:
        raise LookupError(f"no organisation with slug {slug!r}")
    return org_id


async def create_token_for(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_slug: str,
    name: str,
    scopes: list[str],
    *,
    person_email: str | None = None,
    integration_name: str | None = None,
) -> str:
    """A token of the slug's organisation for a person (by e-mail) or an
    integration; its secret. Inputs are checked first (ValidationFailed on
    `--name`, `--person`, `--integration`)."""
    name = text_field(name, "--name", max_length=NAME)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(
            "--scope",
            f"Unknown scope {unknown[0]!r}; use {', '.join(SCOPES)}"
            if unknown
            else "Give at least one scope",
        )
    if person_email is not None:
        person_email = check_email(person_email, "--person")
    if integration_name is not None:
        integration_name = text_field(integration_name, "--integration", max_length=NAME)
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


@dataclass(frozen=True)
class TokenSummary:
    id: uuid.UUID
    prefix: str
    name: str
    holder: str  # the person's e-mail, or "integration:<name>"
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "live"


async def list_tokens(
    sessionmaker: async_sessionmaker[AsyncSession], org_slug: str
) -> list[TokenSummary]:
    """The organisation's tokens, oldest first (no secrets: only their prefixes)."""
    async with sessionmaker() as session, session.begin():
        await set_tenant(session, await organization_id_by_slug(session, org_slug))
        rows = await session.execute(
            select(ApiToken, Person.email)
            .outerjoin(
                Person, (Person.org_id == ApiToken.org_id) & (Person.id == ApiToken.person_id)
            )
            .order_by(ApiToken.created_at, ApiToken.id)
        )
        return [
            TokenSummary(
                t.id,
                t.prefix,
                t.name,
                email if email is not None else f"integration:{t.integration_name}",
                list(t.scopes),
                t.created_at,
                t.last_used_at,
                t.expires_at,
                t.revoked_at,
            )
            for t, email in rows
        ]


async def revoke_token(
    sessionmaker: async_sessionmaker[AsyncSession], org_slug: str, token: str
) -> tuple[TokenSummary, bool]:
    """Revoke one of the organisation's tokens, named by its id, its prefix
    (`okr_abc123`, as `okr token list` shows it) or its secret; (the token, whether this call
    revoked it). Audited as the system. LookupError for no match, or a prefix
    two tokens share."""
    async with sessionmaker() as session, session.begin():
        org_id = await organization_id_by_slug(session, org_slug)
        await set_tenant(session, org_id)
        query = select(ApiToken)
        try:
            query = query.where(ApiToken.id == uuid.UUID(token))
        except ValueError:
            if not token.startswith(TOKEN_PREFIX):
                raise LookupError(
                    f"{token!r} is neither a token id nor a prefix ({TOKEN_PREFIX}...)"
                ) from None
            if len(token) > PREFIX_LENGTH:  # the secret itself
                query = query.where(ApiToken.token_hash == hash_secret(token))
            else:
                query = query.where(ApiToken.prefix == token)
        found = list((await session.execute(query)).scalars())
        if not found:
            raise LookupError(f"no token {token!r} in {org_slug}")
        if len(found) > 1:
            raise LookupError(
                f"{len(found)} tokens in {org_slug} have prefix {token!r}; use the id"
            )
        was_live = found[0].revoked_at is None
        row = await revoke_api_token(session, system_principal(org_id), found[0].id)
        email = None
        if row.person_id is not None:
            email = await session.scalar(select(Person.email).where(Person.id == row.person_id))
        summary = TokenSummary(
            row.id,
            row.prefix,
            row.name,
            email if email is not None else f"integration:{row.integration_name}",
            list(row.scopes),
            row.created_at,
            row.last_used_at,
            row.expires_at,
            row.revoked_at,
        )
        return summary, was_live
