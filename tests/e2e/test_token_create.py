"""`okr token create` finds the organisation by its slug (row-level security
hides organisations until a tenant is set) and mints a token of that
organisation only; an unknown slug or person is a clear error that creates
nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.auth.tokens import authenticate
from okrgraph.domain.db import create_engine, create_sessionmaker, tenant_session
from okrgraph.domain.models import ApiToken, Organization, Person
from tests.e2e.cli import okr
from tests.factories import make_org, make_person

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Setup:
    url: str
    sessionmaker: async_sessionmaker[AsyncSession]
    a: Organization
    b: Organization
    person_a: Person
    person_b: Person


@pytest.fixture
async def setup(
    fresh_database: Callable[[], AbstractAsyncContextManager[str]],
) -> AsyncIterator[Setup]:
    """Two committed organisations with a person each."""
    async with fresh_database() as url:
        engine = create_engine(url, pool_size=1)
        sessionmaker = create_sessionmaker(engine)
        try:
            orgs, people = [], []
            for _ in range(2):
                async with tenant_session(sessionmaker, None) as session:
                    org = await make_org(session)
                    people.append(await make_person(session, org.id))
                    orgs.append(org)
            yield Setup(url, sessionmaker, orgs[0], orgs[1], people[0], people[1])
        finally:
            await engine.dispose()


async def token_count(setup: Setup) -> int:
    total = 0
    for org in (setup.a, setup.b):
        async with tenant_session(setup.sessionmaker, org.id) as session:
            total += (
                await session.execute(select(func.count()).select_from(ApiToken))
            ).scalar_one()
    return total


async def test_creates_a_token_of_the_slugs_organisation(
    setup: Setup, okr_env: dict[str, str]
) -> None:
    env = {**okr_env, "DATABASE_URL": setup.url}
    args = ("token", "create", "--org", setup.b.slug, "--name", "ops")
    code, out = await okr(
        *args, "--person", setup.person_b.email, "--scope", "admin", "--scope", "read", env=env
    )
    assert code == 0, out
    principal = await authenticate(setup.sessionmaker, out.strip())
    assert principal is not None
    assert (principal.org_id, principal.person_id) == (setup.b.id, setup.person_b.id)
    assert principal.scopes == {"admin", "read"}

    code, out = await okr(*args, "--integration", "ci", env=env)
    assert code == 0, out
    principal = await authenticate(setup.sessionmaker, out.strip())
    assert principal is not None
    assert (principal.org_id, principal.integration_name) == (setup.b.id, "ci")
    assert principal.scopes == {"read"}
    assert await token_count(setup) == 2


async def test_unknown_slug_or_person_is_a_clear_error(
    setup: Setup, okr_env: dict[str, str]
) -> None:
    env = {**okr_env, "DATABASE_URL": setup.url}
    code, out = await okr(
        "token", "create", "--org", "nope", "--name", "x", "--integration", "ci", env=env
    )
    assert (code, out.strip()) == (1, "okr: no organisation with slug 'nope'")

    # A's person is not B's: the lookup is scoped to the slug's organisation.
    code, out = await okr(
        *("token", "create", "--org", setup.b.slug, "--name", "x"),
        *("--person", setup.person_a.email),
        env=env,
    )
    assert (code, out.strip()) == (1, f"okr: no person {setup.person_a.email} in {setup.b.slug}")
    assert await token_count(setup) == 0
