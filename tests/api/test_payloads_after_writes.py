"""A mutation's payload shows the state its write left, also when an earlier
mutation of the same document loaded the same rows (issue 7: the second of two
`checkIn`s on one key result answered the first one's `keyResult` from the
dataloaders' cache).

Each document runs several mutations of one kind or mixed kinds on the same
subjects; its payloads must equal what the same mutations answer when each is
sent alone, one request after another, from the same starting state (each
request has fresh loaders). The selections read through the loaders (by id, by
parent, batches) and leave out what differs between two runs (new ids, times).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.seed import SeedResult
from tests.api.security.world import undone
from tests.gql import data

KR = """keyResult { title current score status confidence weight target
  checkIns(first: 5) { nodes { value comment } }
  objective { title progress keyResults(first: 20) { nodes { title current weight } } } }"""
CHECK_IN = f"... on CheckInSuccess {{ checkIn {{ value {KR} }} }}"
KEY_RESULT = f"... on KeyResultSuccess {{ {KR} }}"
OBJECTIVE = """... on ObjectiveSuccess { objective { title state
  keyResults(first: 20) { nodes { title objective { title state } } }
  parents { nodes { weight parentObjective { title } } } } }"""
KPI = """... on RecordKpiMeasurementsSuccess { inserted kpi { name health onTarget
  latest { value } measurements(first: 5) { nodes { value source } } } }"""
KPI_UPDATE = """... on KpiSuccess { kpi { name target health onTarget
  latest { value } measurements(first: 5) { nodes { value } } } }"""
TEAM = """... on TeamSuccess { team { name
  parent { name children(first: 20) { nodes { name parent { name } } } } } }"""
ALIGNMENT = """... on AlignmentSuccess { alignment { weight contributes
  child { title parents(first: 10) { nodes { weight parentObjective { title } } } } } }"""


@dataclass(frozen=True)
class Subjects:
    kr: str  # a key result driven by check-ins
    kr2: str  # another key result of the same objective
    objective: str  # its objective
    child: str  # an objective that is aligned to nothing yet
    parents: tuple[str, str]  # two objectives it may align to
    kpi: str
    team: str  # a top-level team


async def subjects(client: httpx.AsyncClient, token: str) -> Subjects:
    found = await data(
        client,
        token,
        """{ objectives(first: 50) { nodes { id level
               parents { nodes { parentObjective { id } } } children { nodes { id } }
               keyResults(first: 10) { nodes { id progressDriver kind } } } }
             kpis(first: 1) { nodes { id } }
             organization { teams { nodes { id } } } }""",
    )
    objectives = found["objectives"]["nodes"]
    owner = next(
        o
        for o in objectives
        if len([k for k in o["keyResults"]["nodes"] if k["progressDriver"] == "CHECK_INS"]) >= 2
    )
    krs = [k["id"] for k in owner["keyResults"]["nodes"] if k["progressDriver"] == "CHECK_INS"]
    # an objective with nothing aligned to it (no loop possible), and two others it
    # is not aligned to yet
    child = next(o for o in objectives if o["level"] != "COMPANY" and not o["children"]["nodes"])
    taken = {p["parentObjective"]["id"] for p in child["parents"]["nodes"] if p["parentObjective"]}
    parents = [o["id"] for o in objectives if o["id"] not in taken | {child["id"]}]
    return Subjects(
        kr=krs[0],
        kr2=krs[1],
        objective=owner["id"],
        child=child["id"],
        parents=(parents[0], parents[1]),
        kpi=found["kpis"]["nodes"][0]["id"],
        team=found["organization"]["teams"]["nodes"][0]["id"],
    )


def check_in(kr: str, value: float, comment: str) -> str:
    return f'checkIn(input: {{keyResultId: "{kr}", value: {value}, comment: "{comment}"}})'


def documents(s: Subjects) -> dict[str, list[str]]:
    """Per case, the mutation fields of one document, in order."""
    now = "2026-11-30T12:00:00Z"
    return {
        "two check-ins on one key result": [
            f"{check_in(s.kr, 11, 'first')} {{ {CHECK_IN} }}",
            f"{check_in(s.kr, 27, 'second')} {{ {CHECK_IN} }}",
        ],
        "check-ins on two key results of one objective": [
            f"{check_in(s.kr, 5, 'a')} {{ {CHECK_IN} }}",
            f"{check_in(s.kr2, 6, 'b')} {{ {CHECK_IN} }}",
            f"{check_in(s.kr, 7, 'c')} {{ {CHECK_IN} }}",
        ],
        "key result edits, then a check-in": [
            f'updateKeyResult(input: {{id: "{s.kr}", title: "Renamed once", weight: 3}}) '
            f"{{ {KEY_RESULT} }}",
            f'updateKeyResult(input: {{id: "{s.kr}", title: "Renamed twice", target: 1}}) '
            f"{{ {KEY_RESULT} }}",
            f"{check_in(s.kr, 42, 'after the edits')} {{ {CHECK_IN} }}",
        ],
        "new key results under one objective": [
            f'createKeyResult(input: {{objectiveId: "{s.objective}", title: "New one", '
            f"kind: INCREASE, target: 10}}) {{ {KEY_RESULT} }}",
            f'createKeyResult(input: {{objectiveId: "{s.objective}", title: "New two", '
            f"kind: ABOVE, target: 3}}) {{ {KEY_RESULT} }}",
        ],
        "objective edits and its key results": [
            f'updateObjective(input: {{id: "{s.objective}", title: "Objective, v1"}}) '
            f"{{ {OBJECTIVE} }}",
            f"{check_in(s.kr, 8, 'between')} {{ {CHECK_IN} }}",
            f'updateObjective(input: {{id: "{s.objective}", title: "Objective, v2"}}) '
            f"{{ {OBJECTIVE} }}",
        ],
        "measurements of one KPI": [
            f'recordKpiMeasurements(input: {{kpiId: "{s.kpi}", items: [{{value: 1, '
            f'measuredAt: "{now}", source: "one", externalId: "m1"}}]}}) {{ {KPI} }}',
            f'updateKpi(input: {{id: "{s.kpi}", target: 2}}) {{ {KPI_UPDATE} }}',
            f'recordKpiMeasurements(input: {{kpiId: "{s.kpi}", items: [{{value: 5, '
            f'measuredAt: "2026-11-30T13:00:00Z", source: "two", externalId: "m2"}}]}}) '
            f"{{ {KPI} }}",
        ],
        "teams under one parent": [
            f'createTeam(input: {{name: "Squad A", parentTeamId: "{s.team}"}}) {{ {TEAM} }}',
            f'createTeam(input: {{name: "Squad B", parentTeamId: "{s.team}"}}) {{ {TEAM} }}',
        ],
        "alignments of one child": [
            f'alignObjective(input: {{childId: "{s.child}", parentObjectiveId: '
            f'"{s.parents[0]}", weight: 2}}) {{ {ALIGNMENT} }}',
            f'alignObjective(input: {{childId: "{s.child}", parentObjectiveId: '
            f'"{s.parents[1]}", weight: 5}}) {{ {ALIGNMENT} }}',
        ],
    }


CASES = list(documents(Subjects("", "", "", "", ("", ""), "", "")))


@pytest.mark.parametrize("case", CASES)
async def test_each_payload_shows_what_its_write_left(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession, case: str
) -> None:
    token = demo.admin_token or ""
    fields = documents(await subjects(client, token))[case]

    def document(chosen: list[tuple[int, str]]) -> str:
        return "mutation { " + " ".join(f"m{i}: {f}" for i, f in chosen) + " }"

    async with undone(db):
        together = await data(client, token, document(list(enumerate(fields))))
    alone: dict[str, Any] = {}
    async with undone(db):
        for i, f in enumerate(fields):
            alone |= await data(client, token, document([(i, f)]))
    for key, payload in alone.items():
        assert payload, (key, "a user error, not a success")
        assert canonical(together[key]) == canonical(payload), (case, key)


def canonical(value: Any) -> str:
    """The JSON with every list sorted: rows created in one test transaction share
    `created_at` (its start), so their order is that of their random ids."""

    def sort(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: sort(x) for k, x in v.items()}
        if isinstance(v, list):
            return sorted((sort(x) for x in v), key=json.dumps)
        return v

    return json.dumps(sort(value))


async def test_the_second_check_in_sees_itself(client: httpx.AsyncClient, demo: SeedResult) -> None:
    """The case of the issue, spelled out."""
    token = demo.admin_token or ""
    s = await subjects(client, token)
    query = f"""mutation {{
      a: {check_in(s.kr, 11, "first")} {{ ... on CheckInSuccess {{ checkIn {{
        keyResult {{ current checkIns(first: 2) {{ nodes {{ comment }} }} }} }} }} }}
      b: {check_in(s.kr, 27, "second")} {{ ... on CheckInSuccess {{ checkIn {{
        keyResult {{ current checkIns(first: 2) {{ nodes {{ comment }} }} }} }} }} }}
    }}"""
    found = await data(client, token, query)
    second = found["b"]["checkIn"]["keyResult"]
    assert second["current"] == 27
    assert [n["comment"] for n in second["checkIns"]["nodes"]] == ["second", "first"]
    assert found["a"]["checkIn"]["keyResult"]["current"] == 11
