"""API tokens: `okr_<random>` secrets, stored as SHA-256, resolved to a Principal."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import ApiToken
from okrgraph.domain.models.enums import OrgRole

TOKEN_PREFIX = "okr_"
SCOPES = ("read", "write", "admin")
# `last_used_at` is refreshed at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (with their org role), an integration, or the
    system (the worker's crons: admin, no person, no token)."""

    org_id: uuid.UUID
    token_id: uuid.UUID | None  # None only for the system: audit rows name no token
    scopes: frozenset[str]
    person_id: uuid.UUID | None = None
    org_role: OrgRole | None = None
    integration_name: str | None = None
    expires_at: datetime | None = None  # the token's expiry, if it has one

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes and (self.person_id is None or self.org_role is OrgRole.ADMIN)


def system_principal(org_id: uuid.UUID) -> Principal:
    """The worker acting on its own (a cron, nobody calling) for the organisation."""
    return Principal(org_id=org_id, token_id=None, scopes=frozenset({"admin"}))


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    name: str,
    scopes: list[str],
    person_id: uuid.UUID | None = None,
    integration_name: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; the secret is returned once and never stored."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    secret = new_secret()
    token = ApiToken(
        org_id=org_id,
        name=name,
        token_hash=hash_secret(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        scopes=sorted(set(scopes)),
        person_id=person_id,
        integration_name=integration_name,
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    return token, secret


# The token with its person's role and the checks' inputs (migration 0003_auth).
_FIND = text("SELECT * FROM okr_authenticate(:h)")
# The same row, and the transaction scoped to its organisation by the same statement:
# one round trip. A token refused after this (revoked, expired...) runs nothing more,
# and its transaction is rolled back.
_FIND_AND_SCOPE = text(
    "SELECT a.*, set_config('app.org_id', a.org_id::text, true) AS tenant"
    " FROM okr_authenticate(:h) AS a"
)


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    # `last_used_at` is older than LAST_USED_RESOLUTION: refresh it (`touch`).
    stale: bool


async def authenticate(
    sessionmaker: async_sessionmaker[AsyncSession], secret: str
) -> Principal | None:
    """The principal for a bearer secret, or None for unknown, revoked or expired
    (one statement; `last_used_at` is refreshed at most once a minute)."""
    if not well_formed(secret):
        return None
    async with sessionmaker() as session:
        found = await _checked(session, _FIND, secret)
    if found is None:
        return None
    if found.stale:
        await touch(sessionmaker, found.principal)
    return found.principal


async def authenticate_in(session: AsyncSession, secret: str) -> Authenticated | None:
    """`authenticate` inside the caller's transaction (an HTTP request's), which the
    lookup's statement scopes to the principal's organisation: one round trip. The
    caller runs `touch` when `stale`, after that transaction, so that a request never
    holds two connections, nor a lock on the token's row."""
    return await _checked(session, _FIND_AND_SCOPE, secret) if well_formed(secret) else None


def well_formed(secret: str) -> bool:
    return secret.startswith(TOKEN_PREFIX) and len(secret) <= 200


async def _checked(session: AsyncSession, statement: Any, secret: str) -> Authenticated | None:
    row = (await session.execute(statement, {"h": hash_secret(secret)})).first()
    if row is None:
        return None
    now = datetime.now(UTC)
    if row.revoked_at is not None or row.person_archived_at is not None:
        return None
    if row.person_id is not None and row.org_role is None:
        return None  # the person is gone
    if row.expires_at is not None and row.expires_at <= now:
        return None
    principal = Principal(
        org_id=row.org_id,
        token_id=row.token_id,
        scopes=frozenset(row.scopes),
        person_id=row.person_id,
        org_role=OrgRole(row.org_role) if row.org_role else None,
        integration_name=row.integration_name,
        expires_at=row.expires_at,
    )
    stale = row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION
    return Authenticated(principal, stale)


async def touch(sessionmaker: async_sessionmaker[AsyncSession], principal: Principal) -> None:
    """The token was used now (`last_used_at`), in a transaction of its own."""
    async with tenant_session(sessionmaker, principal.org_id) as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == principal.token_id)
            .values(last_used_at=datetime.now(UTC))
        )
