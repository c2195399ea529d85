"""Dataloaders for every relation: the number of SQL statements of a query
depends on its shape, never on how many rows it returns (DESIGN.md section 6).

Each query runs on a small and a large organisation built in the test's
rolled-back transaction; the statement counts must be equal, and are pinned so
that a change adding a statement per level (or per row) fails here.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from okrgraph.domain.models.enums import Level, OrgRole
from okrgraph.schema.node import to_global_id
from tests.api.statements import SAVEPOINTS, statements_after_auth
from tests.factories import (
    make_alignment,
    make_check_in,
    make_cycle,
    make_key_result,
    make_kpi,
    make_kpi_link,
    make_measurement,
    make_objective,
    make_org,
    make_person,
    make_team,
    make_token,
)
from tests.gql import data

# organisation -> teams -> objectives -> key results -> check-ins, KPIs with their
# latest measurement and health (linked to objectives and key results, and the
# organisation's list), alignment parents with weights.
DEEP = """
{
  organization {
    name
    teams(all: true, first: 60) {
      nodes {
        name
        objectives(first: 5) {
          nodes {
            title progress status
            parents(first: 3) { nodes { weight parentObjective { title } } }
            keyResults(first: 5) {
              nodes {
                title score current
                checkIns(first: 5) { nodes { value confidence effectiveAt } }
                kpi { name health latest { value } }
              }
            }
            kpis { name health latest { value measuredAt } }
          }
        }
      }
    }
  }
  kpis(first: 60) { nodes { name health onTarget latest { value } } }
}
"""

# `pageInfo` is outside the compiled path (okrgraph/schema/compiled): this variant
# runs through the executor and its dataloaders.
DEEP_EXECUTED = DEEP.replace(
    "teams(all: true, first: 60) {", "teams(all: true, first: 60) {\n      pageInfo { hasNextPage }"
)
# The compiled path: one statement for everything (the token's statement set the tenant).
DEEP_COMPILED_STATEMENTS = ["compiled"]

LIST = """
{
  objectives(first: 50) {
    nodes {
      title level
      cycle { name }
      ownerTeam { name }
      ownerPerson { name }
      keyResults(first: 5) { nodes { title score owner { name } } }
    }
    pageInfo { hasNextPage }
  }
}
"""

# The statements each query needs after authentication (which set the transaction's
# tenant), by the table each reads: one per relation of the query, whatever the number
# of rows.
DEEP_STATEMENTS = sorted(
    [
        "organizations",
        "teams",  # by organisation
        "objectives",  # by owning team
        "alignments",  # parents, by child objective
        "objectives",  # parent objectives, by id
        "key_results",  # by objective
        "check_ins",  # by key result, a page each
        "kpi_links",  # by objective
        "kpi_links",  # by key result
        "kpis",  # linked KPIs, by id
        "kpis",  # the root list
        "kpi_measurements",  # latest, by KPI
    ]
)
LIST_STATEMENTS = sorted(
    [
        "objectives",  # the page
        "cycles",  # by id
        "teams",  # owning teams, by id
        "people",  # owning people, by id
        "people",  # key result owners, by id (a later batch of the same loader)
        "key_results",  # by objective
    ]
)
TABLE = re.compile(r"\bFROM\s+(\w+)")


def table_of(statement: str) -> str:
    """The first table a statement reads (`set_config` for the tenant's)."""
    if "set_config" in statement:
        return "set_config"
    if statement.startswith("SELECT json_build_object("):
        return "compiled"
    found = TABLE.search(statement)
    return found.group(1) if found else statement


@dataclass
class Built:
    org_id: uuid.UUID
    token: str
    teams: int
    objectives: int
    key_results: int
    check_ins: int


async def build_org(session: AsyncSession, teams: int) -> Built:
    """`teams` teams, each with one objective aligned to the company objective,
    two key results (with an owner, two check-ins, one measured by a KPI) and a
    KPI (two measurements) keeping the objective on course."""
    org = await make_org(session)
    cycle = await make_cycle(session, org.id)
    company = await make_objective(session, org.id, cycle_id=cycle.id)
    now = datetime.now(UTC)
    counts = {"objectives": 1, "key_results": 0, "check_ins": 0}
    for _ in range(teams):
        team = await make_team(session, org.id)
        owner = await make_person(session, org.id)
        kpi = await make_kpi(session, org.id, owner_team_id=team.id, latest_value=75.0)
        for days, value in ((14, 85.0), (7, 75.0)):
            await make_measurement(
                session, org.id, kpi_id=kpi.id, value=value, measured_at=now - timedelta(days)
            )
        objective = await make_objective(
            session, org.id, level=Level.TEAM, cycle_id=cycle.id, owner_team_id=team.id
        )
        await make_alignment(
            session,
            org.id,
            child_objective_id=objective.id,
            parent_objective_id=company.id,
            weight=2.0,
        )
        await make_kpi_link(session, org.id, kpi_id=kpi.id, objective_id=objective.id)
        for k in range(2):
            kr = await make_key_result(
                session, org.id, objective_id=objective.id, owner_person_id=owner.id
            )
            for days in (10, 3):
                await make_check_in(
                    session, org.id, key_result_id=kr.id, effective_at=now - timedelta(days)
                )
            if k == 0:
                await make_kpi_link(session, org.id, kpi_id=kpi.id, key_result_id=kr.id)
        counts["objectives"] += 1
        counts["key_results"] += 2
        counts["check_ins"] += 4
    _, secret = await make_token(session, org.id, role=OrgRole.ADMIN, scopes=["read"])
    return Built(org.id, secret, teams, **counts)


async def build_objectives(session: AsyncSession, objectives: int) -> Built:
    """`objectives` objectives over two cycles, each with two key results owned by
    two people; every third one is owned by a third person, the others by one of
    three teams. Key results owners are not objective owners: a `people` batch
    whose ids were all loaded earlier would be skipped, in one size only."""
    org = await make_org(session)
    cycles = [await make_cycle(session, org.id) for _ in range(2)]
    teams = [await make_team(session, org.id) for _ in range(3)]
    people = [await make_person(session, org.id) for _ in range(3)]
    for n in range(objectives):
        cycle_id = cycles[n % 2].id
        if n % 3 == 2:
            objective = await make_objective(
                session,
                org.id,
                level=Level.INDIVIDUAL,
                cycle_id=cycle_id,
                owner_person_id=people[2].id,
            )
        else:
            objective = await make_objective(
                session, org.id, level=Level.TEAM, cycle_id=cycle_id, owner_team_id=teams[n % 3].id
            )
        for k in range(2):
            await make_key_result(
                session, org.id, objective_id=objective.id, owner_person_id=people[k].id
            )
    _, secret = await make_token(session, org.id, role=OrgRole.ADMIN, scopes=["read"])
    return Built(org.id, secret, len(teams), objectives, 2 * objectives, 0)


async def counted(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    query: str,
) -> tuple[dict[str, object], list[str]]:
    """The query's data and the statements it ran (not the test transaction's
    savepoints, which stand in for BEGIN/COMMIT outside tests)."""
    with statements_after_auth(engine, monkeypatch) as sql:
        result = await data(client, token, query)
    return result, [s for s in sql if not SAVEPOINTS.match(s)]


def deep_sizes(result: dict[str, object]) -> tuple[int, int, int, int]:
    """(teams, objectives, key results, check-ins) in a DEEP response."""
    teams = result["organization"]["teams"]["nodes"]  # type: ignore[index]
    objectives = [o for t in teams for o in t["objectives"]["nodes"]]
    key_results = [kr for o in objectives for kr in o["keyResults"]["nodes"]]
    check_ins = [c for kr in key_results for c in kr["checkIns"]["nodes"]]
    return len(teams), len(objectives), len(key_results), len(check_ins)


@pytest.mark.parametrize(
    ("query", "statements"),
    [(DEEP_EXECUTED, DEEP_STATEMENTS), (DEEP, sorted(DEEP_COMPILED_STATEMENTS))],
    ids=["executed", "compiled"],
)
async def test_deep_query_statements_do_not_grow_with_the_organisation(
    client: httpx.AsyncClient,
    db: AsyncSession,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    statements: list[str],
) -> None:
    small = await build_org(db, teams=2)
    large = await build_org(db, teams=50)

    small_result, small_sql = await counted(client, app_engine, monkeypatch, small.token, query)
    large_result, large_sql = await counted(client, app_engine, monkeypatch, large.token, query)

    # The responses really hold every level (a broken relation would also be "cheap").
    assert deep_sizes(small_result) == (2, 2, 4, 8)
    assert deep_sizes(large_result) == (50, 50, 100, 200)
    objective = large_result["organization"]["teams"]["nodes"][0]["objectives"]["nodes"][0]  # type: ignore[index]
    assert objective["parents"]["nodes"][0]["weight"] == 2.0
    assert objective["parents"]["nodes"][0]["parentObjective"]["title"]
    assert objective["kpis"][0]["latest"]["value"] == 75.0
    measured = [kr["kpi"] for kr in objective["keyResults"]["nodes"] if kr["kpi"]]
    assert [kpi["health"] for kpi in measured] == ["WARNING"]  # 75 is under 80
    assert len(large_result["kpis"]["nodes"]) == 50  # type: ignore[index]

    assert len(large_sql) == len(small_sql), "\n\n".join([*small_sql, "=====", *large_sql])
    assert sorted(map(table_of, small_sql)) == statements, "\n\n".join(small_sql)
    assert sorted(map(table_of, large_sql)) == statements


async def test_objective_list_statements_do_not_grow_with_the_page(
    client: httpx.AsyncClient,
    db: AsyncSession,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = await build_objectives(db, objectives=5)
    large = await build_objectives(db, objectives=50)

    small_result, small_sql = await counted(client, app_engine, monkeypatch, small.token, LIST)
    large_result, large_sql = await counted(client, app_engine, monkeypatch, large.token, LIST)

    for built, result in ((small, small_result), (large, large_result)):
        nodes = result["objectives"]["nodes"]  # type: ignore[index]
        assert len(nodes) == built.objectives
        assert all(o["cycle"]["name"] for o in nodes)
        assert all((o["ownerTeam"] is None) != (o["ownerPerson"] is None) for o in nodes)
        owners = {kr["owner"]["name"] for o in nodes for kr in o["keyResults"]["nodes"]}
        assert len(owners) == 2
        assert sum(len(o["keyResults"]["nodes"]) for o in nodes) == built.key_results

    assert len(large_sql) == len(small_sql), "\n\n".join([*small_sql, "=====", *large_sql])
    assert sorted(map(table_of, small_sql)) == LIST_STATEMENTS, "\n\n".join(small_sql)
    assert sorted(map(table_of, large_sql)) == LIST_STATEMENTS


CHECK_IN = """
mutation($kr: ID!) {
  checkIn(input: {keyResultId: $kr, value: 40}) {
    __typename
    ... on CheckInSuccess { checkIn { value } }
  }
}
"""


async def test_a_check_in_by_its_owner_runs_a_pinned_set_of_statements(
    client: httpx.AsyncClient,
    db: AsyncSession,
    app_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The write path of a check-in, pinned: one locked read of key result, objective
    and cycle authorises it; nothing is read twice (issue 13)."""
    org = await make_org(db)
    owner = await make_person(db, org.id, role=OrgRole.MEMBER)
    cycle = await make_cycle(db, org.id)
    objective = await make_objective(
        db, org.id, cycle_id=cycle.id, level=Level.INDIVIDUAL, owner_person_id=owner.id
    )
    kr = await make_key_result(db, org.id, objective_id=objective.id, owner_person_id=owner.id)
    _, token = await make_token(db, org.id, person_id=owner.id, scopes=["read", "write"])
    with statements_after_auth(app_engine, monkeypatch) as sql:
        result = await data(client, token, CHECK_IN, kr=to_global_id("KeyResult", kr.id))
    statements = [s for s in sql if not SAVEPOINTS.match(s)]
    assert result["checkIn"]["__typename"] == "CheckInSuccess", result
    assert [written_or_read(s) for s in statements] == [
        "key_results",  # with its objective and cycle, locked
        "INSERT check_ins",
        "check_ins",  # the current check-in
        "organizations",  # its time zone, for the pace
        "score_history",  # the last record's time
        "INSERT audit_entries",
        "INSERT outbox_events",
        "INSERT score_history",
        "UPDATE key_results",
    ], "\n\n".join(statements)


def written_or_read(statement: str) -> str:
    """`INSERT t` / `UPDATE t` for a write, else the table it reads first."""
    write = re.match(r"\s*(INSERT INTO|UPDATE)\s+(\w+)", statement)
    if write:
        return f"{write.group(1).split()[0]} {write.group(2)}"
    return table_of(statement)
