"""Teams, people and memberships: who may write, what is written, idempotency."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import AuditEntry, Team
from okrgraph.domain.models.enums import OrgRole
from okrgraph.domain.seed import SeedResult
from tests.factories import make_token
from tests.gql import data

CREATE_TEAM = """
mutation($input: CreateTeamInput!, $key: String) {
  createTeam(input: $input, idempotencyKey: $key) {
    __typename
    ... on TeamSuccess { team { id name parent { name } } }
    ... on UserError { message }
    ... on ValidationError { field }
  }
}
"""


async def team_count(db: AsyncSession) -> int:
    return int((await db.execute(select(func.count()).select_from(Team))).scalar_one())


async def test_admin_creates_team(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    result = (await data(client, demo.admin_token, CREATE_TEAM, input={"name": "Research"}))[
        "createTeam"
    ]
    assert result["__typename"] == "TeamSuccess"
    assert result["team"]["name"] == "Research"
    audit = (
        await db.execute(select(AuditEntry.action).where(AuditEntry.action == "team.created"))
    ).all()
    assert len(audit) == 1


@pytest.mark.parametrize(
    ("role", "scopes"),
    [(OrgRole.MEMBER, ["read", "write"]), (OrgRole.VIEWER, ["read"]), (OrgRole.ADMIN, ["read"])],
)
async def test_non_admins_cannot_create_teams(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession, role: OrgRole, scopes: list[str]
) -> None:
    before = await team_count(db)
    _, secret = await make_token(db, demo.org_id, role=role, scopes=scopes)
    result = (await data(client, secret, CREATE_TEAM, input={"name": "Research"}))["createTeam"]
    assert result["__typename"] == "Forbidden"
    assert await team_count(db) == before


async def test_bad_input_changes_nothing(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    before = await team_count(db)
    for bad, field in [
        ({"name": "  "}, "input.name"),
        ({"name": "x" * 201}, "input.name"),
        ({"name": "Ok", "parentTeamId": "not-an-id"}, "input.parentTeamId"),
    ]:
        result = (await data(client, demo.admin_token, CREATE_TEAM, input=bad))["createTeam"]
        assert result["__typename"] == "ValidationError"
        assert result["field"] == field
    duplicate = (await data(client, demo.admin_token, CREATE_TEAM, input={"name": "Engineering"}))[
        "createTeam"
    ]
    assert duplicate["__typename"] == "Conflict"
    assert await team_count(db) == before


async def test_idempotency_key_replays_first_result(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    before = await team_count(db)
    first = await data(client, demo.admin_token, CREATE_TEAM, input={"name": "R&D"}, key="k-1")
    again = await data(client, demo.admin_token, CREATE_TEAM, input={"name": "R&D"}, key="k-1")
    assert first == again
    assert await team_count(db) == before + 1
    other = await data(client, demo.admin_token, CREATE_TEAM, input={"name": "Ops"}, key="k-1")
    assert other["createTeam"]["__typename"] == "Conflict"
    assert await team_count(db) == before + 1


async def test_team_cannot_move_under_its_own_subteam(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    teams = await data(
        client, demo.admin_token, "{ organization { teams(all: true) { nodes { id name } } } }"
    )
    ids = {t["name"]: t["id"] for t in teams["organization"]["teams"]["nodes"]}
    result = await data(
        client,
        demo.admin_token,
        """mutation($input: UpdateTeamInput!) { updateTeam(input: $input) {
             __typename ... on UserError { message } } }""",
        input={"id": ids["Engineering"], "parentTeamId": ids["Platform"]},
    )
    assert result["updateTeam"]["__typename"] == "Conflict"
