"""KPI definitions and links: who may, bad input changes nothing, other orgs see nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import AuditEntry, Kpi, KpiLink, OutboxEvent
from okrgraph.domain.models.enums import Direction, Health, Level
from okrgraph.domain.seed import SeedResult
from okrgraph.schema.node import to_global_id
from tests.api.roles import Cast, cast, column, count, other_org
from tests.factories import make_key_result, make_kpi, make_measurement, make_objective
from tests.gql import data

RESULT = """
    __typename
    ... on KpiSuccess { kpi { id name direction warningThreshold criticalThreshold health } }
    ... on UserError { message }
    ... on ValidationError { field }
"""
CREATE = f"""mutation($input: CreateKpiInput!, $key: String) {{
  createKpi(input: $input, idempotencyKey: $key) {{ {RESULT} }} }}"""
UPDATE = f"""mutation($input: UpdateKpiInput!) {{ updateKpi(input: $input) {{ {RESULT} }} }}"""
ARCHIVE = f"""mutation($id: ID!) {{ archiveKpi(id: $id) {{ {RESULT} }} }}"""
LINK = f"""mutation($input: KpiLinkInput!) {{ linkKpi(input: $input) {{ {RESULT} }} }}"""
UNLINK = f"""mutation($input: KpiLinkInput!) {{ unlinkKpi(input: $input) {{ {RESULT} }} }}"""

ALLOWED = {"admin", "lead"}


@pytest.fixture
async def people(db: AsyncSession, demo: SeedResult) -> Cast:
    assert demo.admin_token is not None
    return await cast(db, demo.org_id, demo.admin_token)


def gid(type_name: str, id: uuid.UUID) -> str:
    return str(to_global_id(type_name, id))


async def call(
    client: httpx.AsyncClient, token: str, query: str, name: str, **variables: Any
) -> dict[str, Any]:
    result: dict[str, Any] = (await data(client, token, query, **variables))[name]
    return result


@pytest.mark.parametrize(
    "role", ["admin", "lead", "member", "viewer", "read_only_admin", "integration"]
)
async def test_who_may_create_a_kpi(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    before = await count(db, people.org_id, Kpi)
    result = await call(
        client,
        people.tokens[role],
        CREATE,
        "createKpi",
        input={
            "name": "Weekly signups",
            "direction": "HIGHER_IS_BETTER",
            "ownerTeamId": gid("Team", people.team_id),
            "warningThreshold": 80,
            "criticalThreshold": 60,
        },
    )
    if role in ALLOWED:
        assert result["__typename"] == "KpiSuccess"
        assert result["kpi"]["name"] == "Weekly signups"
        assert result["kpi"]["health"] == "UNKNOWN"
        assert await count(db, people.org_id, Kpi) == before + 1
        assert await count(db, people.org_id, AuditEntry, AuditEntry.action == "kpi.created") == 1
    else:
        assert result["__typename"] == "Forbidden", result
        assert await count(db, people.org_id, Kpi) == before


async def test_only_admins_create_kpis_without_an_owner_team(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    input = {"name": "Orphan", "direction": "LOWER_IS_BETTER"}
    refused = await call(client, people.tokens["lead"], CREATE, "createKpi", input=input)
    assert refused["__typename"] == "Forbidden"
    created = await call(client, people.tokens["admin"], CREATE, "createKpi", input=input)
    assert created["__typename"] == "KpiSuccess"


async def test_bad_kpi_input_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    before = await count(db, people.org_id, Kpi)
    team = gid("Team", people.team_id)
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"name": "  "}, "ValidationError", "input.name"),
        ({"name": "x" * 201}, "ValidationError", "input.name"),
        ({"unit": "u" * 33}, "ValidationError", "input.unit"),
        (
            {"warningThreshold": 60, "criticalThreshold": 80},
            "ValidationError",
            "input.criticalThreshold",
        ),
        (
            {"direction": "LOWER_IS_BETTER", "warningThreshold": 20, "criticalThreshold": 10},
            "ValidationError",
            "input.criticalThreshold",
        ),
        ({"ownerTeamId": "not-an-id"}, "ValidationError", "input.ownerTeamId"),
        ({"ownerTeamId": gid("Kpi", uuid.uuid4())}, "ValidationError", "input.ownerTeamId"),
        ({"ownerTeamId": gid("Team", uuid.uuid4())}, "NotFound", None),
        ({"name": "Daily active users"}, "Conflict", None),  # the demo has it
    ]
    for change, typename, field in cases:
        input = {"name": "Fine", "direction": "HIGHER_IS_BETTER", "ownerTeamId": team, **change}
        result = await call(client, people.tokens["lead"], CREATE, "createKpi", input=input)
        assert result["__typename"] == typename, (change, result)
        assert result.get("field") == field
    assert await count(db, people.org_id, Kpi) == before


async def test_create_kpi_is_idempotent_by_key(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    before = await count(db, people.org_id, Kpi)
    input = {"name": "Churn", "direction": "LOWER_IS_BETTER"}
    first = await data(client, people.tokens["admin"], CREATE, input=input, key="kpi-1")
    again = await data(client, people.tokens["admin"], CREATE, input=input, key="kpi-1")
    assert first == again
    assert first["createKpi"]["__typename"] == "KpiSuccess"
    assert await count(db, people.org_id, Kpi) == before + 1


@pytest.mark.parametrize(
    "role", ["admin", "lead", "member", "viewer", "read_only_admin", "integration"]
)
async def test_who_may_update_a_kpi(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    kpi = await make_kpi(db, people.org_id, owner_team_id=people.team_id, name="Before")
    result = await call(
        client,
        people.tokens[role],
        UPDATE,
        "updateKpi",
        input={"id": gid("Kpi", kpi.id), "name": "After"},
    )
    name = await column(db, people.org_id, Kpi.name, Kpi.id == kpi.id)
    if role in ALLOWED:
        assert result["__typename"] == "KpiSuccess"
        assert name == "After"
    else:
        assert result["__typename"] == "Forbidden"
        assert name == "Before"


async def test_a_lead_manages_only_kpis_of_teams_they_lead(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    foreign = await make_kpi(db, people.org_id)  # no owner team: admins only
    mine = await make_kpi(db, people.org_id, owner_team_id=people.team_id)
    lead = people.tokens["lead"]
    refused = await call(
        client, lead, UPDATE, "updateKpi", input={"id": gid("Kpi", foreign.id), "unit": "x"}
    )
    assert refused["__typename"] == "Forbidden"
    # Handing a KPI to a team the lead does not lead is refused too.
    other_team = await column(
        db, people.org_id, Kpi.owner_team_id, Kpi.name == "Daily active users"
    )
    handed = await call(
        client,
        lead,
        UPDATE,
        "updateKpi",
        input={"id": gid("Kpi", mine.id), "ownerTeamId": gid("Team", other_team)},
    )
    assert handed["__typename"] == "Forbidden"
    assert await column(db, people.org_id, Kpi.owner_team_id, Kpi.id == mine.id) == people.team_id


async def test_thresholds_are_checked_per_direction_and_health_follows(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    # HIGHER_IS_BETTER, warning 80, critical 60; latest value 70: WARNING.
    kpi = await make_kpi(db, people.org_id, owner_team_id=people.team_id, health=Health.WARNING)
    await make_measurement(db, people.org_id, kpi_id=kpi.id, value=70.0)
    kpi_id = gid("Kpi", kpi.id)
    lead = people.tokens["lead"]
    for change, field in (
        ({"criticalThreshold": 90}, "input.criticalThreshold"),  # above warning 80
        ({"direction": "LOWER_IS_BETTER"}, "input.direction"),  # 80/60: wrong way round
        ({"warningThreshold": 50}, "input.warningThreshold"),  # below critical 60
        ({"criticalThreshold": 1, "clearCriticalThreshold": True}, "input.criticalThreshold"),
    ):
        result = await call(client, lead, UPDATE, "updateKpi", input={"id": kpi_id, **change})
        assert result["__typename"] == "ValidationError", (change, result)
        assert result["field"] == field
    assert await column(db, people.org_id, Kpi.warning_threshold, Kpi.id == kpi.id) == 80.0
    assert await column(db, people.org_id, Kpi.direction, Kpi.id == kpi.id) == (
        Direction.HIGHER_IS_BETTER
    )

    lowered = await call(
        client,
        lead,
        UPDATE,
        "updateKpi",
        input={"id": kpi_id, "warningThreshold": 65, "criticalThreshold": 50},
    )
    assert lowered["kpi"]["health"] == "HEALTHY"
    assert await column(db, people.org_id, Kpi.health, Kpi.id == kpi.id) == Health.HEALTHY

    flipped = await call(
        client,
        lead,
        UPDATE,
        "updateKpi",
        input={
            "id": kpi_id,
            "direction": "LOWER_IS_BETTER",
            "warningThreshold": 50,
            "criticalThreshold": 65,
        },
    )
    assert flipped["__typename"] == "KpiSuccess"
    assert flipped["kpi"]["health"] == "CRITICAL"  # 70 > 65
    assert await column(db, people.org_id, Kpi.health, Kpi.id == kpi.id) == Health.CRITICAL

    cleared = await call(
        client,
        lead,
        UPDATE,
        "updateKpi",
        input={"id": kpi_id, "clearWarningThreshold": True, "clearCriticalThreshold": True},
    )
    assert cleared["kpi"]["warningThreshold"] is None
    assert cleared["kpi"]["health"] == "HEALTHY"


async def test_names_stay_unique(client: httpx.AsyncClient, db: AsyncSession, people: Cast) -> None:
    kpi = await make_kpi(db, people.org_id, owner_team_id=people.team_id, name="Mine")
    result = await call(
        client,
        people.tokens["lead"],
        UPDATE,
        "updateKpi",
        input={"id": gid("Kpi", kpi.id), "name": "Daily active users"},
    )
    assert result["__typename"] == "Conflict"
    assert await column(db, people.org_id, Kpi.name, Kpi.id == kpi.id) == "Mine"


@pytest.mark.parametrize(
    "role", ["admin", "lead", "member", "viewer", "read_only_admin", "integration"]
)
async def test_who_may_archive_a_kpi(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    kpi = await make_kpi(db, people.org_id, owner_team_id=people.team_id)
    result = await call(client, people.tokens[role], ARCHIVE, "archiveKpi", id=gid("Kpi", kpi.id))
    archived_at = await column(db, people.org_id, Kpi.archived_at, Kpi.id == kpi.id)
    if role in ALLOWED:
        assert result["__typename"] == "KpiSuccess"
        assert archived_at is not None
    else:
        assert result["__typename"] == "Forbidden"
        assert archived_at is None


async def test_an_archived_kpi_takes_no_edits_or_links(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    kpi = await make_kpi(db, people.org_id, owner_team_id=people.team_id)
    objective = await make_objective(
        db, people.org_id, level=Level.TEAM, owner_team_id=people.team_id
    )
    kpi_id = gid("Kpi", kpi.id)
    admin = people.tokens["admin"]
    assert (await call(client, admin, ARCHIVE, "archiveKpi", id=kpi_id))["__typename"] == (
        "KpiSuccess"
    )
    first = await column(db, people.org_id, Kpi.archived_at, Kpi.id == kpi.id)
    again = await call(client, admin, ARCHIVE, "archiveKpi", id=kpi_id)
    assert again["__typename"] == "KpiSuccess"
    assert await column(db, people.org_id, Kpi.archived_at, Kpi.id == kpi.id) == first
    edit = await call(client, admin, UPDATE, "updateKpi", input={"id": kpi_id, "unit": "%"})
    assert edit["__typename"] == "Conflict"
    link = await call(
        client,
        admin,
        LINK,
        "linkKpi",
        input={"kpiId": kpi_id, "objectiveId": gid("Objective", objective.id)},
    )
    assert link["__typename"] == "Conflict"
    assert await count(db, people.org_id, KpiLink, KpiLink.kpi_id == kpi.id) == 0


@pytest.mark.parametrize(
    "role", ["admin", "lead", "member", "viewer", "read_only_admin", "integration"]
)
async def test_who_may_link_a_kpi(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    kpi = await make_kpi(db, people.org_id, owner_team_id=people.team_id)
    objective = await make_objective(
        db, people.org_id, level=Level.TEAM, owner_team_id=people.team_id
    )
    kr = await make_key_result(db, people.org_id, objective_id=objective.id)
    result = await call(
        client,
        people.tokens[role],
        LINK,
        "linkKpi",
        input={"kpiId": gid("Kpi", kpi.id), "keyResultId": gid("KeyResult", kr.id)},
    )
    links = await count(db, people.org_id, KpiLink, KpiLink.key_result_id == kr.id)
    events = await count(
        db,
        people.org_id,
        OutboxEvent,
        OutboxEvent.type == "kpi.linked",
        OutboxEvent.subject_id == kpi.id,
    )
    if role in ALLOWED:
        assert result["__typename"] == "KpiSuccess"
        assert (links, events) == (1, 1)
    else:
        assert result["__typename"] == "Forbidden"
        assert (links, events) == (0, 0)


async def test_link_rules(client: httpx.AsyncClient, db: AsyncSession, people: Cast) -> None:
    org = people.org_id
    kpi = await make_kpi(db, org, owner_team_id=people.team_id)
    rival = await make_kpi(db, org, owner_team_id=people.team_id)
    objective = await make_objective(db, org, level=Level.TEAM, owner_team_id=people.team_id)
    kr = await make_key_result(db, org, objective_id=objective.id)
    company = await make_objective(db, org, level=Level.COMPANY)
    lead = people.tokens["lead"]
    kpi_id, kr_id = gid("Kpi", kpi.id), gid("KeyResult", kr.id)

    def link(**input: Any) -> Any:
        return call(client, lead, LINK, "linkKpi", input=input)

    assert (await link(kpiId=kpi_id, keyResultId=kr_id))["__typename"] == "KpiSuccess"
    assert (await link(kpiId=kpi_id, keyResultId=kr_id))["__typename"] == "KpiSuccess"  # no-op
    taken = await link(kpiId=gid("Kpi", rival.id), keyResultId=kr_id)
    assert taken["__typename"] == "Conflict"  # a KR is measured by one KPI at most
    both = await link(kpiId=kpi_id, keyResultId=kr_id, objectiveId=gid("Objective", objective.id))
    assert both["__typename"] == "ValidationError"
    assert (await link(kpiId=kpi_id))["__typename"] == "ValidationError"
    assert (await link(kpiId=kpi_id, keyResultId=gid("KeyResult", uuid.uuid4())))[
        "__typename"
    ] == "NotFound"
    # The lead manages the KPI but may not edit the company objective.
    refused = await link(kpiId=kpi_id, objectiveId=gid("Objective", company.id))
    assert refused["__typename"] == "Forbidden"
    on_objective = await link(kpiId=kpi_id, objectiveId=gid("Objective", objective.id))
    assert on_objective["__typename"] == "KpiSuccess"
    assert await count(db, org, KpiLink, KpiLink.kpi_id.in_([kpi.id, rival.id])) == 2


async def test_unlink(client: httpx.AsyncClient, db: AsyncSession, people: Cast) -> None:
    org = people.org_id
    kpi = await make_kpi(db, org, owner_team_id=people.team_id)
    objective = await make_objective(db, org, level=Level.TEAM, owner_team_id=people.team_id)
    await set_tenant(db, org)
    db.add(KpiLink(org_id=org, kpi_id=kpi.id, objective_id=objective.id))
    await db.flush()
    input = {"kpiId": gid("Kpi", kpi.id), "objectiveId": gid("Objective", objective.id)}
    for role in ("member", "viewer", "read_only_admin", "integration"):
        refused = await call(client, people.tokens[role], UNLINK, "unlinkKpi", input=input)
        assert refused["__typename"] == "Forbidden", role
    assert await count(db, org, KpiLink, KpiLink.kpi_id == kpi.id) == 1
    done = await call(client, people.tokens["lead"], UNLINK, "unlinkKpi", input=input)
    assert done["__typename"] == "KpiSuccess"
    assert await count(db, org, KpiLink, KpiLink.kpi_id == kpi.id) == 0
    gone = await call(client, people.tokens["lead"], UNLINK, "unlinkKpi", input=input)
    assert gone["__typename"] == "NotFound"


async def test_another_org_cannot_touch_our_kpis(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    org = people.org_id
    kpi = await make_kpi(db, org, owner_team_id=people.team_id, name="Ours")
    objective = await make_objective(db, org, level=Level.TEAM, owner_team_id=people.team_id)
    kr = await make_key_result(db, org, objective_id=objective.id)
    other, attacker = await other_org(db)
    theirs = await make_kpi(db, other)
    kpi_id, kr_id = gid("Kpi", kpi.id), gid("KeyResult", kr.id)
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        (UPDATE, "updateKpi", {"input": {"id": kpi_id, "name": "Pwned"}}),
        (ARCHIVE, "archiveKpi", {"id": kpi_id}),
        (LINK, "linkKpi", {"input": {"kpiId": kpi_id, "keyResultId": kr_id}}),
        (LINK, "linkKpi", {"input": {"kpiId": gid("Kpi", theirs.id), "keyResultId": kr_id}}),
        (UNLINK, "unlinkKpi", {"input": {"kpiId": kpi_id, "keyResultId": kr_id}}),
        (
            CREATE,
            "createKpi",
            {
                "input": {
                    "name": "Spy",
                    "direction": "HIGHER_IS_BETTER",
                    "ownerTeamId": gid("Team", people.team_id),
                }
            },
        ),
    ]
    for query, name, variables in attempts:
        result = await call(client, attacker, query, name, **variables)
        assert result["__typename"] == "NotFound", (name, result)
        assert "Ours" not in str(result)
    seen = await data(client, attacker, "query($id: ID!) { node(id: $id) { id } }", id=kpi_id)
    assert seen["node"] is None
    assert await column(db, org, Kpi.name, Kpi.id == kpi.id) == "Ours"
    assert await column(db, org, Kpi.archived_at, Kpi.id == kpi.id) is None
    assert await count(db, org, KpiLink, KpiLink.key_result_id == kr.id) == 0
    assert await count(db, other, Kpi) == 1
