"""A team's lead also leads every team below it (`leads_team` in domain/access.py):
authority flows down the parent_team_id chain, never up, and membership alone
gives none."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import Objective
from okrgraph.domain.models.enums import Level, TeamRole
from okrgraph.domain.seed import SeedResult
from okrgraph.schema.node import to_global_id
from tests.api.roles import cast, column
from tests.api.security.world import call, success_type
from tests.factories import (
    make_cycle,
    make_membership,
    make_objective,
    make_person,
    make_team,
    make_token,
)


async def rename(
    client: httpx.AsyncClient, db: AsyncSession, token: str, objective: Objective
) -> tuple[str, str]:
    """Asks to retitle an objective: (the result's type, the title now in the database)."""
    gid = str(to_global_id("Objective", objective.id))
    result = await call(client, token, "updateObjective", {"input": {"id": gid, "title": "New"}})
    title = await column(db, objective.org_id, Objective.title, Objective.id == objective.id)
    return result["__typename"], title


async def test_team_leads_rule_the_teams_below_theirs_only(
    client: httpx.AsyncClient, db: AsyncSession, demo: SeedResult
) -> None:
    # `people.team` (led by `lead`, with `member`) > `sub` (led by `sub_lead`) > `subsub`
    assert demo.admin_token is not None  # a fresh seed (the test's own) returns it
    people = await cast(db, demo.org_id, demo.admin_token)
    org = people.org_id
    sub = await make_team(db, org, parent_team_id=people.team_id)
    subsub = await make_team(db, org, parent_team_id=sub.id)
    sub_lead = await make_person(db, org)
    await make_membership(db, org, team_id=sub.id, person_id=sub_lead.id, role=TeamRole.LEAD)
    _, sub_lead_token = await make_token(db, org, person_id=sub_lead.id)
    cycle = await make_cycle(db, org)
    objectives: dict[uuid.UUID, Objective] = {}
    for team_id in (people.team_id, sub.id, subsub.id):
        objectives[team_id] = await make_objective(
            db, org, level=Level.TEAM, cycle_id=cycle.id, owner_team_id=team_id, title="Old"
        )
    lead, member = people.tokens["lead"], people.tokens["member"]
    parent, child, grandchild = (objectives[t] for t in (people.team_id, sub.id, subsub.id))

    # never up: the sub-team's lead may not touch the parent team's objective
    assert await rename(client, db, sub_lead_token, parent) == ("Forbidden", "Old")
    # a plain member of the parent team leads nothing below it
    assert await rename(client, db, member, child) == ("Forbidden", "Old")
    # down one level, and two (the recursion)
    updated = success_type("updateObjective")
    assert await rename(client, db, lead, child) == (updated, "New")
    assert await rename(client, db, lead, grandchild) == (updated, "New")
