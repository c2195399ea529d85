"""An idempotency key belongs to one token and one request: another token's key of
the same name is another key (its call writes), and the key reused for another
operation or another input is a Conflict that writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import CheckIn, Team
from okrgraph.domain.models.enums import OrgRole
from okrgraph.schema.node import to_global_id
from tests.factories import make_key_result, make_org, make_person, make_team, make_token
from tests.gql import data

CREATE_TEAM = """mutation($input: CreateTeamInput!, $key: String) {
  createTeam(input: $input, idempotencyKey: $key) {
    __typename ... on TeamSuccess { team { id name } }
    ... on Conflict { code }
  }
}"""
ARCHIVE_TEAM = """mutation($id: ID!, $key: String) {
  archiveTeam(id: $id, idempotencyKey: $key) {
    __typename ... on TeamSuccess { team { id } } ... on Conflict { code }
  }
}"""


async def _count(db: AsyncSession, model: type[Team] | type[CheckIn]) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def _teams(db: AsyncSession) -> int:
    return await _count(db, Team)


CHECK_IN = """mutation($input: CheckInInput!, $key: String) {
  checkIn(input: $input, idempotencyKey: $key) {
    __typename ... on CheckInSuccess { checkIn { id value } } ... on Conflict { code }
  }
}"""


async def test_a_key_is_the_token_s_own(client: httpx.AsyncClient, db: AsyncSession) -> None:
    org = await make_org(db)
    admin = await make_person(db, org.id, org_role=OrgRole.ADMIN)
    scopes = ["read", "write", "admin"]
    _, first_token = await make_token(db, org.id, person_id=admin.id, scopes=scopes)
    _, second_token = await make_token(db, org.id, person_id=admin.id, scopes=scopes)
    kr = await make_key_result(db, org.id)
    check_in = {"keyResultId": to_global_id("KeyResult", kr.id), "value": 10}
    before = await _count(db, CheckIn)

    async def call(token: str) -> dict[str, Any]:
        d = await data(client, token, CHECK_IN, input=check_in, key="shared-key")
        result: dict[str, Any] = d["checkIn"]
        return result

    first = await call(first_token)
    assert first["__typename"] == "CheckInSuccess"
    assert await call(first_token) == first  # replayed, nothing written
    assert await _count(db, CheckIn) == before + 1
    # the same person's other token, the same key and input: its own first call
    other = await call(second_token)
    assert other["__typename"] == "CheckInSuccess"
    assert other["checkIn"]["id"] != first["checkIn"]["id"]
    assert await _count(db, CheckIn) == before + 2
    assert await call(second_token) == other  # and under that token the key is its own


async def test_a_key_reused_for_another_operation_or_input_is_a_conflict(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org(db)
    _, token = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read", "write", "admin"])
    team = await make_team(db, org.id)
    team_id = team.id
    first = await data(client, token, CREATE_TEAM, input={"name": "Beta"}, key="k")
    assert first["createTeam"]["__typename"] == "TeamSuccess"
    before = await _teams(db)
    archived_before = await db.scalar(select(Team.archived_at).where(Team.id == team_id))

    other_op = await data(client, token, ARCHIVE_TEAM, id=to_global_id("Team", team_id), key="k")
    assert other_op["archiveTeam"] == {"__typename": "Conflict", "code": "IDEMPOTENCY_KEY_REUSED"}
    other_input = await data(client, token, CREATE_TEAM, input={"name": "Gamma"}, key="k")
    assert other_input["createTeam"] == {
        "__typename": "Conflict",
        "code": "IDEMPOTENCY_KEY_REUSED",
    }
    db.expire_all()
    assert await _teams(db) == before
    assert await db.scalar(select(Team.archived_at).where(Team.id == team_id)) == archived_before
