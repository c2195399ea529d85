"""User errors carry a machine-readable `code` (`UserErrorCode`): every code is
documented and raised somewhere, and real mutations answer the right one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import errors
from okrgraph.domain.errors import ErrorCode
from okrgraph.domain.models.enums import OrgRole
from okrgraph.domain.seed import SeedResult
from okrgraph.schema import schema
from okrgraph.schema.node import to_global_id
from tests.factories import make_token
from tests.gql import data, gql

PACKAGE = Path(__file__).resolve().parents[2] / "okrgraph"
USED = re.compile(r"ErrorCode\.([A-Z_]+)")


def test_every_code_is_documented_in_the_schema() -> None:
    enum = schema._schema.type_map["UserErrorCode"]
    assert set(enum.values) == {c.name for c in ErrorCode}  # type: ignore[attr-defined]
    undocumented = [
        name
        for name, value in enum.values.items()  # type: ignore[attr-defined]
        if len((value.description or "").strip()) < 10
    ]
    assert not undocumented
    for type_name in ("UserError", "FieldError", "ValidationError", "NotFound", "Conflict"):
        field = schema._schema.type_map[type_name].fields["code"]  # type: ignore[attr-defined]
        assert str(field.type) == "UserErrorCode!"


def test_every_code_is_raised_somewhere() -> None:
    """A code nothing raises is a promise to clients that never comes true."""
    raised = {
        errors.DomainError.default_code,
        errors.NotFound.default_code,
        errors.Forbidden.default_code,
        errors.Conflict.default_code,
    }
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent.name == "domain":
            continue
        raised |= {ErrorCode[name] for name in USED.findall(path.read_text())}
    assert set(ErrorCode) - raised == set()


RESULT = """__typename ... on UserError { code message }
  ... on ValidationError { field errors { field code } }"""


def mutation(name: str, args: str, signature: str) -> str:
    return f"mutation({signature}) {{ {name}({args}) {{ {RESULT} }} }}"


CHECK_IN = mutation("checkIn", "input: $input", "$input: CheckInInput!")
ALIGN = mutation("alignObjective", "input: $input", "$input: AlignObjectiveInput!")
CREATE_CYCLE = mutation("createCycle", "input: $input", "$input: CreateCycleInput!")
UPDATE_CYCLE = mutation("updateCycle", "input: $input", "$input: UpdateCycleInput!")
CLOSE_CYCLE = mutation("closeCycle", "input: $input", "$input: CloseCycleInput!")
CREATE_OBJECTIVE = mutation("createObjective", "input: $input", "$input: CreateObjectiveInput!")
CREATE_KR = mutation("createKeyResult", "input: $input", "$input: CreateKeyResultInput!")
CREATE_TEAM = mutation(
    "createTeam", "input: $input, idempotencyKey: $key", "$input: CreateTeamInput!, $key: String"
)
CREATE_PERSON = mutation("createPerson", "input: $input", "$input: CreatePersonInput!")
ARCHIVE_PERSON = mutation("archivePerson", "id: $id", "$id: ID!")
UPDATE_KPI = mutation("updateKpi", "input: $input", "$input: UpdateKpiInput!")
REFLECT = mutation("writeReflection", "input: $input", "$input: WriteReflectionInput!")
WEBHOOK = mutation("createWebhookEndpoint", "input: $input", "$input: CreateWebhookEndpointInput!")
MARK_READ = mutation("markNotificationsRead", "ids: $ids", "$ids: [ID!]!")

IDS = """{
  viewer { person { id } }
  cycles(first: 10) { nodes { id name cadence } }
  kpis(first: 10) { nodes { id name } }
  objectives(first: 20) { nodes { id title keyResults(first: 10) { nodes { id title } } } }
}"""


class World:
    """The demo organisation seen through the API, and a way to call it."""

    def __init__(self, client: httpx.AsyncClient, db: AsyncSession, demo: SeedResult) -> None:
        self.client, self.db, self.demo = client, db, demo
        self.token = demo.admin_token or ""
        self.ids: dict[str, str] = {}

    async def load(self) -> None:
        d = await data(self.client, self.token, IDS)
        self.ids["me"] = d["viewer"]["person"]["id"]
        for c in d["cycles"]["nodes"]:
            self.ids[c["cadence"]] = c["id"]
            self.ids[c["name"]] = c["id"]
        self.ids |= {k["name"]: k["id"] for k in d["kpis"]["nodes"]}
        for o in d["objectives"]["nodes"]:
            self.ids[o["title"]] = o["id"]
            self.ids |= {kr["title"]: kr["id"] for kr in o["keyResults"]["nodes"]}

    def id(self, prefix: str) -> str:
        return next(v for k, v in self.ids.items() if k.startswith(prefix))

    async def call(self, query: str, token: str | None = None, **variables: Any) -> Any:
        body = await gql(self.client, token or self.token, query, **variables)
        assert "errors" not in body, body
        return next(iter(body["data"].values()))

    async def role_token(self, role: OrgRole, scopes: list[str] | None = None) -> str:
        return (await make_token(self.db, self.demo.org_id, role=role, scopes=scopes))[1]


COMPANY = "Become the launch provider"
ENG = "Make every launch boringly reliable"
DEV = "Ship the new telemetry pipeline"
NPS = "Raise customer NPS"
SIGNED = "Sign 12 launch contracts"
SOON = (datetime.now(UTC) + timedelta(days=2)).isoformat()

Case = Callable[[World], Awaitable[Any]]


async def _loop(w: World) -> Any:
    return await w.call(ALIGN, input={"childId": w.id(COMPANY), "parentObjectiveId": w.id(DEV)})


async def _self_loop(w: World) -> Any:
    return await w.call(ALIGN, input={"childId": w.id(DEV), "parentObjectiveId": w.id(DEV)})


async def _duplicate_alignment(w: World) -> Any:
    return await w.call(ALIGN, input={"childId": w.id(ENG), "parentObjectiveId": w.id(COMPANY)})


async def _two_parents(w: World) -> Any:
    return await w.call(
        ALIGN,
        input={
            "childId": w.id(DEV),
            "parentObjectiveId": w.id(COMPANY),
            "parentKeyResultId": w.id(NPS),
        },
    )


async def _kpi_driven_check_in(w: World) -> Any:
    return await w.call(CHECK_IN, input={"keyResultId": w.id(SIGNED), "value": 3})


async def _confidence(w: World) -> Any:
    return await w.call(CHECK_IN, input={"keyResultId": w.id(NPS), "value": 40, "confidence": 11})


async def _huge_value(w: World) -> Any:
    return await w.call(CHECK_IN, input={"keyResultId": w.id(NPS), "value": 1e300})


async def _future_check_in(w: World) -> Any:
    return await w.call(
        CHECK_IN, input={"keyResultId": w.id(NPS), "value": 40, "effectiveAt": SOON}
    )


async def _unknown_key_result(w: World) -> Any:
    gone = to_global_id("KeyResult", uuid.UUID(int=7))
    return await w.call(CHECK_IN, input={"keyResultId": gone, "value": 40})


async def _not_an_id(w: World) -> Any:
    return await w.call(CHECK_IN, input={"keyResultId": w.id(COMPANY), "value": 40})


async def _target_below_start(w: World) -> Any:
    return await w.call(
        CREATE_KR,
        input={
            "objectiveId": w.id(ENG),
            "title": "Backwards",
            "kind": "INCREASE",
            "start": 10,
            "target": 5,
        },
    )


async def _ends_before_start(w: World) -> Any:
    return await w.call(
        CREATE_CYCLE,
        input={
            "name": "Oops",
            "cadence": "CUSTOM",
            "startsOn": "2030-02-01",
            "endsOn": "2030-01-01",
        },
    )


async def _cycle_name_taken(w: World) -> Any:
    name = next(k for k, v in w.ids.items() if v == w.ids["QUARTER"] and k != "QUARTER")
    return await w.call(
        CREATE_CYCLE,
        input={"name": name, "cadence": "CUSTOM", "startsOn": "2030-01-01", "endsOn": "2030-02-01"},
    )


async def _backwards_transition(w: World) -> Any:
    return await w.call(UPDATE_CYCLE, input={"id": w.ids["QUARTER"], "state": "PLANNING"})


async def _frozen_cycle(w: World) -> Any:
    graded = await w.call(UPDATE_CYCLE, input={"id": w.ids["QUARTER"], "state": "GRADING"})
    assert graded["__typename"] == "CycleSuccess", graded
    return await w.call(
        CREATE_OBJECTIVE,
        input={"cycleId": w.ids["QUARTER"], "title": "Late", "level": "COMPANY"},
    )


async def _close_unstarted(w: World) -> Any:
    created = await data(
        w.client,
        w.token,
        "mutation($input: CreateCycleInput!) { createCycle(input: $input) "
        "{ ... on CycleSuccess { cycle { id } } } }",
        input={
            "name": "Later",
            "cadence": "CUSTOM",
            "startsOn": "2030-01-01",
            "endsOn": "2030-02-01",
        },
    )
    return await w.call(CLOSE_CYCLE, input={"id": created["createCycle"]["cycle"]["id"]})


async def _reflection_too_early(w: World) -> Any:
    return await w.call(REFLECT, input={"objectiveId": w.id(ENG), "whatWorked": "x"})


async def _long_text(w: World) -> Any:
    return await w.call(CREATE_TEAM, input={"name": "x" * 10_000})


async def _nul_text(w: World) -> Any:
    return await w.call(CREATE_TEAM, input={"name": "a\x00b"})


async def _bad_email(w: World) -> Any:
    return await w.call(CREATE_PERSON, input={"name": "No Mail", "email": "nope"})


async def _archive_myself(w: World) -> Any:
    return await w.call(ARCHIVE_PERSON, id=w.ids["me"])


async def _key_reused(w: World) -> Any:
    first = await w.call(CREATE_TEAM, input={"name": "Keyed"}, key="k-1")
    assert first["__typename"] == "TeamSuccess", first
    return await w.call(CREATE_TEAM, input={"name": "Other"}, key="k-1")


async def _thresholds(w: World) -> Any:
    return await w.call(
        UPDATE_KPI,
        input={
            "id": w.id("Daily active users"),
            "warningThreshold": 100,
            "criticalThreshold": 200,
        },
    )


async def _webhook_url(w: World) -> Any:
    return await w.call(WEBHOOK, input={"url": "ftp://example.com/hook"})


async def _no_ids(w: World) -> Any:
    return await w.call(MARK_READ, ids=[])


async def _viewer_writes(w: World) -> Any:
    return await w.call(CREATE_TEAM, await w.role_token(OrgRole.VIEWER), input={"name": "V"})


async def _read_only_writes(w: World) -> Any:
    token = await w.role_token(OrgRole.ADMIN, ["read"])
    return await w.call(CREATE_TEAM, token, input={"name": "R"})


async def _member_makes_team(w: World) -> Any:
    return await w.call(CREATE_TEAM, await w.role_token(OrgRole.MEMBER), input={"name": "M"})


async def _member_company_objective(w: World) -> Any:
    return await w.call(
        CREATE_OBJECTIVE,
        await w.role_token(OrgRole.MEMBER),
        input={"cycleId": w.ids["QUARTER"], "title": "Mine", "level": "COMPANY"},
    )


CASES: list[tuple[str, Case, str, ErrorCode]] = [
    ("alignment loop", _loop, "Conflict", ErrorCode.ALIGNMENT_LOOP),
    ("self alignment", _self_loop, "Conflict", ErrorCode.ALIGNMENT_LOOP),
    ("alignment exists", _duplicate_alignment, "Conflict", ErrorCode.ALREADY_EXISTS),
    ("two parents", _two_parents, "ValidationError", ErrorCode.EXACTLY_ONE_OF),
    ("KPI-driven KR", _kpi_driven_check_in, "Conflict", ErrorCode.DRIVER_MISMATCH),
    ("confidence 11", _confidence, "ValidationError", ErrorCode.VALUE_OUT_OF_RANGE),
    ("value 1e300", _huge_value, "ValidationError", ErrorCode.VALUE_OUT_OF_RANGE),
    ("future check-in", _future_check_in, "ValidationError", ErrorCode.IN_THE_FUTURE),
    ("unknown KR", _unknown_key_result, "NotFound", ErrorCode.NOT_FOUND),
    ("objective id for a KR", _not_an_id, "ValidationError", ErrorCode.INVALID_ID),
    ("target below start", _target_below_start, "ValidationError", ErrorCode.INVALID_TARGET),
    ("ends before start", _ends_before_start, "ValidationError", ErrorCode.INVALID_PERIOD),
    ("cycle name taken", _cycle_name_taken, "Conflict", ErrorCode.ALREADY_EXISTS),
    ("backwards", _backwards_transition, "Conflict", ErrorCode.INVALID_TRANSITION),
    ("frozen cycle", _frozen_cycle, "Conflict", ErrorCode.CYCLE_CLOSED),
    ("close a planned cycle", _close_unstarted, "Conflict", ErrorCode.CYCLE_NOT_STARTED),
    ("early reflection", _reflection_too_early, "Conflict", ErrorCode.CYCLE_NOT_GRADED),
    ("long name", _long_text, "ValidationError", ErrorCode.TEXT_TOO_LONG),
    ("NUL in a name", _nul_text, "ValidationError", ErrorCode.UNSTORABLE_TEXT),
    ("bad e-mail", _bad_email, "ValidationError", ErrorCode.INVALID_FORMAT),
    ("archive myself", _archive_myself, "Conflict", ErrorCode.SELF_CHANGE),
    ("key reused", _key_reused, "Conflict", ErrorCode.IDEMPOTENCY_KEY_REUSED),
    ("thresholds", _thresholds, "ValidationError", ErrorCode.THRESHOLD_ORDER),
    ("ftp webhook", _webhook_url, "ValidationError", ErrorCode.INVALID_FORMAT),
    ("no ids", _no_ids, "ValidationError", ErrorCode.REQUIRED),
    ("viewer writes", _viewer_writes, "Forbidden", ErrorCode.VIEWER_READ_ONLY),
    ("read-only token", _read_only_writes, "Forbidden", ErrorCode.MISSING_SCOPE),
    ("member makes a team", _member_makes_team, "Forbidden", ErrorCode.ADMIN_REQUIRED),
    ("member's company objective", _member_company_objective, "Forbidden", ErrorCode.NOT_OWNER),
]


@pytest.mark.parametrize(
    ("case", "typename", "code"),
    [pytest.param(c, t, e, id=name) for name, c, t, e in CASES],
)
async def test_mutations_answer_the_rule_that_refused_them(
    client: httpx.AsyncClient,
    db: AsyncSession,
    demo: SeedResult,
    case: Case,
    typename: str,
    code: ErrorCode,
) -> None:
    world = World(client, db, demo)
    await world.load()
    result = await case(world)
    assert (result["__typename"], result["code"]) == (typename, code.name), result
    assert result["message"]
    if typename == "ValidationError":
        assert result["errors"] == [{"field": result["field"], "code": code.name}]
