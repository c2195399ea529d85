"""Cycles, objectives, alignments, key results and check-ins through GraphQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import (
    Alignment,
    CheckIn,
    KeyResult,
    Objective,
    OutboxEvent,
    ScoreHistory,
)
from okrgraph.domain.models.enums import Level, OrgRole, TeamRole
from okrgraph.domain.seed import SeedResult
from tests.factories import make_membership, make_objective, make_org, make_token
from tests.gql import data

IDS = """{
  cycles(first: 10) { nodes { id name } }
  organization { teams(all: true, first: 10) { nodes { id name } } }
  objectives(first: 20) { nodes { id title level keyResults(first: 10) { nodes { id title } } } }
}"""

RESULT = "__typename ... on UserError { message } ... on ValidationError { field }"


async def ids(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    d = await data(client, token, IDS)
    out: dict[str, Any] = {c["name"]: c["id"] for c in d["cycles"]["nodes"]}
    out |= {t["name"]: t["id"] for t in d["organization"]["teams"]["nodes"]}
    for o in d["objectives"]["nodes"]:
        out[o["title"]] = o["id"]
        out |= {kr["title"]: kr["id"] for kr in o["keyResults"]["nodes"]}
    return out


async def count(db: AsyncSession, model: type[Any]) -> int:
    return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


CREATE_OBJECTIVE = f"""mutation($input: CreateObjectiveInput!) {{
  createObjective(input: $input) {{
    {RESULT} ... on ObjectiveSuccess {{ objective {{ id level }} }}
  }}
}}"""


async def quarter(client: httpx.AsyncClient, token: str) -> str:
    d = await data(client, token, "{ cycles(first: 5) { nodes { id cadence } } }")
    cycle_id: str = next(c["id"] for c in d["cycles"]["nodes"] if c["cadence"] == "QUARTER")
    return cycle_id


@pytest.mark.parametrize(
    ("role", "team_role", "level", "allowed"),
    [
        (OrgRole.ADMIN, None, "COMPANY", True),
        (OrgRole.MEMBER, None, "COMPANY", False),
        (OrgRole.MEMBER, TeamRole.LEAD, "TEAM", True),
        (OrgRole.MEMBER, TeamRole.MEMBER, "TEAM", False),
        (OrgRole.VIEWER, TeamRole.LEAD, "TEAM", False),
        (OrgRole.MEMBER, None, "INDIVIDUAL", True),
    ],
)
async def test_who_may_create_objectives(
    client: httpx.AsyncClient,
    demo: SeedResult,
    db: AsyncSession,
    role: OrgRole,
    team_role: TeamRole | None,
    level: str,
    allowed: bool,
) -> None:
    known = await ids(client, demo.admin_token or "")
    token, secret = await make_token(db, demo.org_id, role=role, scopes=["read", "write", "admin"])
    assert token.person_id is not None  # make_token gave it a new person
    team_id = known["Growth"]
    if team_role is not None:
        from okrgraph.schema.node import expect_id

        await make_membership(
            db,
            demo.org_id,
            team_id=expect_id(team_id, "Team"),
            person_id=token.person_id,
            role=team_role,
        )
    from okrgraph.schema.node import to_global_id

    before = await count(db, Objective)
    result = await data(
        client,
        secret,
        CREATE_OBJECTIVE,
        input={
            "cycleId": await quarter(client, secret),
            "title": "Try it",
            "level": level,
            "ownerTeamId": team_id if level != "INDIVIDUAL" else None,
            "ownerPersonId": to_global_id("Person", token.person_id),
        },
    )
    typename = result["createObjective"]["__typename"]
    assert typename == ("ObjectiveSuccess" if allowed else "Forbidden"), result
    assert await count(db, Objective) == before + (1 if allowed else 0)


ALIGN = f"""mutation($input: AlignObjectiveInput!) {{
  alignObjective(input: $input) {{ {RESULT} ... on AlignmentSuccess {{ alignment {{ weight }} }} }}
}}"""


async def test_alignment_loop_is_refused(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    known = await ids(client, demo.admin_token or "")
    company = known["Become the launch provider small satellites choose first"]
    eng = known["Make every launch boringly reliable"]
    dev = known["Ship the new telemetry pipeline"]
    before = await count(db, Alignment)
    # company <- eng <- dev exists; dev -> company would be fine, company -> dev a loop
    loop = await data(
        client, demo.admin_token, ALIGN, input={"childId": company, "parentObjectiveId": dev}
    )
    assert loop["alignObjective"]["__typename"] == "Conflict"
    selfloop = await data(
        client, demo.admin_token, ALIGN, input={"childId": eng, "parentObjectiveId": eng}
    )
    assert selfloop["alignObjective"]["__typename"] == "Conflict"
    # the company objective is in the year; a quarter objective may align up to it, not back
    both = await data(
        client, demo.admin_token, ALIGN, input={"childId": eng, "parentObjectiveId": dev}
    )
    assert both["alignObjective"]["__typename"] == "Conflict"
    bad_weight = await data(
        client,
        demo.admin_token,
        ALIGN,
        input={"childId": dev, "parentObjectiveId": company, "weight": -1},
    )
    assert bad_weight["alignObjective"]["field"] == "input.weight"
    assert await count(db, Alignment) == before
    ok = await data(
        client,
        demo.admin_token,
        ALIGN,
        input={"childId": dev, "parentObjectiveId": company, "weight": 0.5},
    )
    assert ok["alignObjective"]["alignment"]["weight"] == 0.5
    assert await count(db, Alignment) == before + 1


async def test_cannot_align_to_another_organisations_objective(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    known = await ids(client, demo.admin_token or "")
    other = await make_org(db)
    foreign = await make_objective(db, other.id, level=Level.COMPANY)
    await set_tenant(db, demo.org_id)
    from okrgraph.schema.node import to_global_id

    result = await data(
        client,
        demo.admin_token,
        ALIGN,
        input={
            "childId": known["Ship the new telemetry pipeline"],
            "parentObjectiveId": to_global_id("Objective", foreign.id),
        },
    )
    assert result["alignObjective"]["__typename"] == "NotFound"
    node = await data(
        client,
        demo.admin_token,
        "query($id: ID!) { node(id: $id) { id } }",
        id=to_global_id("Objective", foreign.id),
    )
    assert node["node"] is None


CHECK_IN = f"""mutation($input: CheckInInput!, $key: String) {{
  checkIn(input: $input, idempotencyKey: $key) {{
    {RESULT}
    ... on CheckInSuccess {{ checkIn {{ value keyResult {{ current score status }} }} }}
  }}
}}"""


async def test_check_in_updates_the_key_result_and_emits_an_event(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    known = await ids(client, demo.admin_token or "")
    kr = known["Raise customer NPS from 30 to 60"]
    events = await count(db, OutboxEvent)
    result = await data(
        client,
        demo.admin_token,
        CHECK_IN,
        input={"keyResultId": kr, "value": 45, "confidence": 8},
        key="ci-1",
    )
    kr_after = result["checkIn"]["checkIn"]["keyResult"]
    assert kr_after["current"] == 45
    assert kr_after["score"] == pytest.approx(0.5)
    again = await data(
        client,
        demo.admin_token,
        CHECK_IN,
        input={"keyResultId": kr, "value": 45, "confidence": 8},
        key="ci-1",
    )
    assert again == result
    # checkin.created, and score.changed for the score it wrote itself; the retry: none
    assert await count(db, OutboxEvent) == events + 2
    bad = await data(
        client, demo.admin_token, CHECK_IN, input={"keyResultId": kr, "value": 1, "confidence": 11}
    )
    assert bad["checkIn"]["__typename"] == "ValidationError"


async def test_members_check_in_only_on_their_own_key_results(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    known = await ids(client, demo.admin_token or "")
    _, member = await make_token(db, demo.org_id, role=OrgRole.MEMBER)
    before = await count(db, CheckIn)
    result = await data(
        client,
        member,
        CHECK_IN,
        input={"keyResultId": known["Raise customer NPS from 30 to 60"], "value": 50},
    )
    assert result["checkIn"]["__typename"] == "Forbidden"
    _, integration = await make_token(db, demo.org_id, integration_name="CRM sync")
    result = await data(
        client,
        integration,
        CHECK_IN,
        input={"keyResultId": known["Raise customer NPS from 30 to 60"], "value": 50},
    )
    assert result["checkIn"]["__typename"] == "CheckInSuccess"
    assert await count(db, CheckIn) == before + 1


async def test_target_revisions_are_kept(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    known = await ids(client, demo.admin_token or "")
    kr = known["Raise customer NPS from 30 to 60"]
    update = """mutation($input: UpdateKeyResultInput!) { updateKeyResult(input: $input) {
      __typename
      ... on KeyResultSuccess {
        keyResult { target targetRevisions { nodes { oldTarget newTarget reason } } } }
      ... on ValidationError { field } } }"""
    result = await data(
        client, demo.admin_token, update, input={"id": kr, "target": 70, "targetReason": "too easy"}
    )
    revised = result["updateKeyResult"]["keyResult"]
    assert revised["target"] == 70
    assert revised["targetRevisions"]["nodes"] == [
        {"oldTarget": 60.0, "newTarget": 70.0, "reason": "too easy"}
    ]
    bad = await data(client, demo.admin_token, update, input={"id": kr, "target": 10})
    assert bad["updateKeyResult"] == {"__typename": "ValidationError", "field": "input.target"}
    stored = (
        await db.execute(select(KeyResult.target_value).where(KeyResult.title.like("Raise%")))
    ).scalar_one()
    assert stored == 70


REFLECT = """mutation($input: WriteReflectionInput!) { writeReflection(input: $input) {
  __typename ... on UserError { message }
  ... on ReflectionSuccess { reflection { finalScore outcome whatWorked whatDidNot } } } }"""


async def test_reflections_are_written_at_grading(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    known = await ids(client, demo.admin_token or "")
    dev = known["Ship the new telemetry pipeline"]
    reflect = {"objectiveId": dev, "whatWorked": "batching", "whatDidNot": "estimates"}
    early = await data(client, demo.admin_token, REFLECT, input=reflect)
    assert early["writeReflection"]["__typename"] == "Conflict"  # the cycle is still ACTIVE
    cycle = await data(
        client,
        demo.admin_token,
        """mutation($input: UpdateCycleInput!) { updateCycle(input: $input) { __typename } }""",
        input={"id": await quarter(client, demo.admin_token or ""), "state": "GRADING"},
    )
    assert cycle["updateCycle"]["__typename"] == "CycleSuccess"
    _, stranger = await make_token(db, demo.org_id, role=OrgRole.MEMBER)
    refused = await data(client, stranger, REFLECT, input=reflect)
    assert refused["writeReflection"]["__typename"] == "Forbidden"
    written = (await data(client, demo.admin_token, REFLECT, input=reflect))["writeReflection"]
    assert written["reflection"]["whatWorked"] == "batching"
    progress = await data(
        client,
        demo.admin_token,
        "query($id: ID!) { node(id: $id) { ... on Objective { progress } } }",
        id=dev,
    )
    assert written["reflection"]["finalScore"] == pytest.approx(progress["node"]["progress"])
    expected = "ACHIEVED" if progress["node"]["progress"] >= 0.7 else "MISSED"
    assert written["reflection"]["outcome"] == expected


async def test_update_key_result_answers_and_shows_its_new_score_at_once(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    """DESIGN 4: the KR's own score is written by every mutation that changes it, so
    its payload and the next read already show it (issue 15)."""
    known = await ids(client, demo.admin_token or "")
    kr = known["Raise customer NPS from 30 to 60"]
    checked = await data(client, demo.admin_token, CHECK_IN, input={"keyResultId": kr, "value": 45})
    assert checked["checkIn"]["checkIn"]["keyResult"]["score"] == pytest.approx(0.5)  # 15 of 30
    update = """mutation($input: UpdateKeyResultInput!) { updateKeyResult(input: $input) {
      __typename ... on KeyResultSuccess { keyResult { score target } } } }"""
    history = select(func.count()).select_from(ScoreHistory)
    before = (await db.execute(history)).scalar_one()
    result = await data(client, demo.admin_token, update, input={"id": kr, "target": 90})
    assert result["updateKeyResult"]["keyResult"] == {"score": pytest.approx(0.25), "target": 90}
    read = await data(client, demo.admin_token, NODE_SCORE, id=kr)
    assert read["node"]["score"] == pytest.approx(0.25)  # 15 of 60, not 0.5 until the worker ran
    assert (await db.execute(history)).scalar_one() == before + 1
    # a title alone moves no number: no history row
    await data(client, demo.admin_token, update, input={"id": kr, "title": "NPS up"})
    assert (await db.execute(history)).scalar_one() == before + 1


NODE_SCORE = "query($id: ID!) { node(id: $id) { ... on KeyResult { score } } }"
