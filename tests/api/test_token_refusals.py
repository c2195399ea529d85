"""Over HTTP a token is refused once it has expired, been revoked or its person
archived: each the same request, answered 200 just before and 401 just after."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import ApiToken, Person
from okrgraph.domain.models.enums import OrgRole
from tests.factories import make_org, make_person, make_token

QUERY = "{ viewer { __typename } }"
UNAUTHENTICATED = {
    "errors": [
        {
            "message": "Invalid, expired or revoked API token.",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ]
}


async def _post(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {secret}"}
    )


async def _expire(db: AsyncSession, token: ApiToken) -> None:
    # a second ago, by the clock the check reads (the API's)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await db.execute(update(ApiToken).where(ApiToken.id == token.id).values(expires_at=past))


async def _revoke(db: AsyncSession, token: ApiToken) -> None:
    now = datetime.now(UTC)
    await db.execute(update(ApiToken).where(ApiToken.id == token.id).values(revoked_at=now))


async def _archive(db: AsyncSession, token: ApiToken) -> None:
    now = datetime.now(UTC)
    await db.execute(update(Person).where(Person.id == token.person_id).values(archived_at=now))


LOSSES: dict[str, Callable[[AsyncSession, ApiToken], Awaitable[None]]] = {
    "expired": _expire,
    "revoked": _revoke,
    "person archived": _archive,
}


@pytest.mark.parametrize("loss", list(LOSSES))
async def test_a_lost_token_is_refused_over_http(
    client: httpx.AsyncClient, db: AsyncSession, loss: str
) -> None:
    org = await make_org(db)
    person = await make_person(db, org.id, org_role=OrgRole.MEMBER)
    # expiring in an hour: valid until the loss
    token, secret = await make_token(
        db,
        org.id,
        person_id=person.id,
        scopes=["read"],
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    await db.flush()
    before = await _post(client, secret)
    assert (before.status_code, before.json()) == (
        200,
        {"data": {"viewer": {"__typename": "Viewer"}}},
    )
    await LOSSES[loss](db, token)
    await db.flush()
    after = await _post(client, secret)
    assert after.status_code == 401, (loss, after.text)
    assert after.json() == UNAUTHENTICATED
