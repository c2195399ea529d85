"""API tokens as a use case: who may create and revoke which token.

- Admins create tokens for anyone in the organisation or for an integration.
- Any person creates tokens for themselves, with scopes their role allows
  (VIEWER: read, write — `write` lets a VIEWER change their own inbox and
  nothing else; MEMBER: read, write; ADMIN: all) and no wider than the token
  they call with; a read-only token creates none.
- People revoke their own tokens (again no wider than the calling token);
  admins revoke any. A read-only token writes nothing but may revoke itself:
  that only takes access away (the kill switch for a leaked token).

The secret is returned once by `create_api_token` and never stored.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import SCOPES, Principal, create_token
from okrgraph.domain.errors import ErrorCode, Forbidden, NotFound, ValidationFailed
from okrgraph.domain.messages import AccessRevoked
from okrgraph.domain.models import ApiToken, Person
from okrgraph.domain.models.enums import OrgRole, SubjectType
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.validation import instant, text_field

ROLE_SCOPES: dict[OrgRole, frozenset[str]] = {
    OrgRole.VIEWER: frozenset({"read", "write"}),  # write: their own inbox only (access.py)
    OrgRole.MEMBER: frozenset({"read", "write"}),
    OrgRole.ADMIN: frozenset(SCOPES),
}
MAX_TOKENS_PER_PERSON = 50


def effective_scopes(principal: Principal) -> frozenset[str]:
    """What the calling token may do (`admin` implies the others)."""
    return frozenset(SCOPES) if "admin" in principal.scopes else frozenset(principal.scopes)


def _scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValidationFailed(
            "input.scopes", f"Unknown scope {unknown[0]!r}; use {SCOPES}.", ErrorCode.INVALID_FORMAT
        )
    if not scopes:
        raise ValidationFailed("input.scopes", "Give at least one scope.", ErrorCode.REQUIRED)
    return sorted(set(scopes))


async def _person(session: AsyncSession, person_id: uuid.UUID) -> Person:
    person = (
        await session.execute(select(Person).where(Person.id == person_id))
    ).scalar_one_or_none()
    if person is None:
        raise NotFound("Person", person_id)
    if person.archived_at is not None:
        raise ValidationFailed("input.personId", "The person is archived.", ErrorCode.ARCHIVED)
    return person


async def create_api_token(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    scopes: list[str],
    person_id: uuid.UUID | None = None,
    integration_name: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A token for a person (the caller unless given) or an integration; (row, secret)."""
    now = now or datetime.now(UTC)
    _check_may_create_tokens(principal)
    name = text_field(name, "input.name", max_length=200)
    wanted = _scopes(scopes)
    integration_name = _integration_name(person_id, integration_name)
    _check_expiry(expires_at, now)
    person_id = _holder(principal, person_id, integration_name)
    _check_grantable(principal, person_id, wanted)
    if person_id is not None:
        await _check_person_may_hold(session, person_id, wanted)
    token, secret = await create_token(
        session,
        principal.org_id,
        name=name,
        scopes=wanted,
        person_id=person_id,
        integration_name=integration_name,
        expires_at=expires_at,
    )
    record_audit(
        session,
        principal,
        "api_token.created",
        SubjectType.API_TOKEN,
        token.id,
        {
            "name": name,
            "prefix": token.prefix,
            "scopes": wanted,
            "person_id": person_id,
            "integration_name": integration_name,
        },
    )
    return token, secret


def _check_may_create_tokens(principal: Principal) -> None:
    if not principal.has_scope("write"):
        raise Forbidden(
            "A read-only token writes nothing, tokens included; use a write token.",
            ErrorCode.MISSING_SCOPE,
        )
    if principal.person_id is None and not principal.is_admin:
        raise Forbidden("Only admins create tokens for integrations.", ErrorCode.ADMIN_REQUIRED)


def _integration_name(person_id: uuid.UUID | None, integration_name: str | None) -> str | None:
    """The integration's name, checked; a token is a person's or an integration's."""
    if person_id is not None and integration_name is not None:
        raise ValidationFailed(
            "input.integrationName",
            "A token is a person's or an integration's.",
            ErrorCode.EXACTLY_ONE_OF,
        )
    if integration_name is None:
        return None
    return text_field(integration_name, "input.integrationName", max_length=200)


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None:
        instant(expires_at, "input.expiresAt")
        if expires_at <= now:
            raise ValidationFailed(
                "input.expiresAt", "Must lie in the future.", ErrorCode.NOT_IN_THE_FUTURE
            )


def _holder(
    principal: Principal, person_id: uuid.UUID | None, integration_name: str | None
) -> uuid.UUID | None:
    """The person the token is for: the one named, else (no integration) the caller."""
    if person_id is None and integration_name is None:
        if principal.person_id is None:  # an admin integration: it has no self
            raise ValidationFailed(
                "input.personId", "Name a person or an integration.", ErrorCode.EXACTLY_ONE_OF
            )
        return principal.person_id
    return person_id


def _check_grantable(principal: Principal, person_id: uuid.UUID | None, wanted: list[str]) -> None:
    """The caller may create this token: its own, or an admin's for anyone, and with no
    scope the calling token lacks."""
    own = person_id is not None and person_id == principal.person_id
    if not own and not principal.is_admin:
        raise Forbidden(
            "Only admins create tokens for others or for integrations.", ErrorCode.ADMIN_REQUIRED
        )
    if not set(wanted) <= effective_scopes(principal):
        raise Forbidden(
            "A token cannot grant scopes the calling token lacks.", ErrorCode.MISSING_SCOPE
        )


async def _check_person_may_hold(
    session: AsyncSession, person_id: uuid.UUID, wanted: list[str]
) -> None:
    """The person's role allows the scopes, and they hold fewer than the most live tokens."""
    person = await _person(session, person_id)
    allowed = ROLE_SCOPES[person.org_role]
    if not set(wanted) <= allowed:
        raise ValidationFailed(
            "input.scopes",
            f"A {person.org_role.value} may hold at most: {', '.join(sorted(allowed))}.",
            ErrorCode.SCOPE_NOT_ALLOWED,
        )
    live = (
        await session.execute(
            select(ApiToken.id).where(
                ApiToken.person_id == person_id, ApiToken.revoked_at.is_(None)
            )
        )
    ).all()
    if len(live) >= MAX_TOKENS_PER_PERSON:
        raise ValidationFailed(
            "input",
            f"At most {MAX_TOKENS_PER_PERSON} live tokens per person.",
            ErrorCode.TOO_MANY,
        )


def may_see_token(principal: Principal | None, token: ApiToken) -> bool:
    """Admins see every token; others their own (an integration: the one it calls with)."""
    if principal is None:
        return False
    if principal.is_admin or token.id == principal.token_id:
        return True
    return principal.person_id is not None and token.person_id == principal.person_id


async def revoke_api_token(
    session: AsyncSession, principal: Principal, token_id: uuid.UUID, *, now: datetime | None = None
) -> ApiToken:
    """Revoke a token: the next request with it gets a 401. Revoking twice changes nothing."""
    token = (
        await session.execute(select(ApiToken).where(ApiToken.id == token_id))
    ).scalar_one_or_none()
    if token is None or not may_see_token(principal, token):
        raise NotFound("ApiToken", token_id)
    if not principal.has_scope("write") and token.id != principal.token_id:
        raise Forbidden(
            "A read-only token may revoke only itself; use a write token.", ErrorCode.MISSING_SCOPE
        )
    if not principal.is_admin and not set(token.scopes) <= effective_scopes(principal):
        raise Forbidden(
            "Revoke a token with wider scopes using a token that has them.", ErrorCode.MISSING_SCOPE
        )
    if token.revoked_at is None:
        token.revoked_at = now or datetime.now(UTC)
        await session.flush()
        record_audit(
            session,
            principal,
            "api_token.revoked",
            SubjectType.API_TOKEN,
            token.id,
            {"name": token.name},
        )
        # Once committed, its open subscriptions end, in every API process.
        AfterCommit.of(session).announce(
            AccessRevoked(token.org_id, token_ids=frozenset({token.id}))
        )
    return token
