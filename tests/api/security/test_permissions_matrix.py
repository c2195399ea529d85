"""Who may call each mutation: a table of every mutation (some in several variants)
against nine callers, from DESIGN.md section 6 and okrgraph/domain/access.py.

The rules the table encodes:
- Everyone reads; writes follow ownership: a person's own (INDIVIDUAL) objectives,
  a team lead's team objectives, an admin everything (DESIGN.md section 6).
- "Admin" means an ADMIN person calling with an `admin`-scoped token (or an integration
  with `admin`): the same person with a read+write token writes like anyone else.
- VIEWERs and `read`-only tokens change nothing of the goal graph, whatever the token's
  scopes. Check-ins, initiatives and KPI measurements may also come from a key
  result's owner and from integrations with `write` (DESIGN.md section 5).
- KPIs belong to admins and the leads of their owner team.
- One's own inbox (read marks, notification preferences) is one's own to change with a
  `write` token, also for a VIEWER; a `read`-only token never changes it (issue 12,
  finding 12; README "Permissions", domain/notifications/inbox.py).
- One's own tokens: created and revoked within one's role and calling token, which a
  `read` token may do for `read` tokens (domain/auth/service.py).

Every call runs in a savepoint that is rolled back, so each caller meets the same
state; a refused call must leave every table of the organisation as it was, an
allowed one must change something.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.api.security.world import (
    MUTATIONS,
    PERSON_OF,
    PRINCIPALS,
    Snapshot,
    World,
    build_world,
    call,
    changed,
    snapshot,
    success_type,
    undone,
)

ADMIN = frozenset({"admin"})
PEOPLE = frozenset(PERSON_OF)  # every principal that is a person
INTEGRATIONS = frozenset({"integration_write", "integration_read"})
# A person's `write` token: what may change the person's own state (inbox, tokens).
PERSONAL_WRITERS = PEOPLE - {"read_only"}


@dataclass(frozen=True)
class Case:
    mutation: str
    variant: str
    variables: Callable[[World, str], dict[str, Any]]  # (world, principal) -> variables
    allowed: frozenset[str]
    # how a refused principal is refused, when not `Forbidden`
    refused_as: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.mutation}/{self.variant}" if self.variant else self.mutation


def _i(**fields: Any) -> dict[str, Any]:
    return {"input": fields}


def _recent() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def _own_note(w: World, principal: str) -> dict[str, Any]:
    person = PERSON_OF.get(principal, "owner")  # integrations have no inbox
    return {"ids": [w.gid(f"note_{person}")]}


# Others' notifications and tokens are private: a stranger's id is NotFound for them.
NOT_THEIRS = dict.fromkeys(PRINCIPALS, "NotFound")

CASES = [
    # organisation: admins only
    Case("createTeam", "", lambda w, p: _i(name="Research"), ADMIN),
    Case("updateTeam", "", lambda w, p: _i(id=w.gid("team"), name="Renamed"), ADMIN),
    Case("archiveTeam", "", lambda w, p: {"id": w.gid("team2")}, ADMIN),
    Case("createPerson", "", lambda w, p: _i(name="New", email="new@example.test"), ADMIN),
    Case("updatePerson", "", lambda w, p: _i(id=w.gid("member"), name="Renamed"), ADMIN),
    Case("archivePerson", "", lambda w, p: {"id": w.gid("member")}, ADMIN),
    Case("setMembership", "",
         lambda w, p: _i(teamId=w.gid("team2"), personId=w.gid("member"), role="LEAD"), ADMIN),
    Case("removeMembership", "", lambda w, p: {"id": w.gid("membership")}, ADMIN),
    Case("createCycle", "",
         lambda w, p: _i(name="2027-Q1", cadence="QUARTER", startsOn="2027-01-01",
                         endsOn="2027-03-31"), ADMIN),
    Case("updateCycle", "", lambda w, p: _i(id=w.gid("cycle"), name="Renamed"), ADMIN),
    Case("closeCycle", "", lambda w, p: _i(id=w.gid("cycle")), ADMIN),
    # objectives: company -> admins, team -> its leads, individual -> its owner
    Case("createObjective", "company",
         lambda w, p: _i(cycleId=w.gid("cycle"), title="Win", level="COMPANY"), ADMIN),
    Case("createObjective", "team",
         lambda w, p: _i(cycleId=w.gid("cycle"), title="Win", level="TEAM",
                         ownerTeamId=w.gid("team")), ADMIN | {"lead"}),
    Case("createObjective", "individual",
         lambda w, p: _i(cycleId=w.gid("cycle"), title="Win", level="INDIVIDUAL",
                         ownerPersonId=w.gid("owner")), ADMIN | {"owner"}),
    Case("updateObjective", "company",
         lambda w, p: _i(id=w.gid("obj_company"), title="New"), ADMIN),
    Case("updateObjective", "team",
         lambda w, p: _i(id=w.gid("obj_team"), title="New"), ADMIN | {"lead"}),
    Case("updateObjective", "individual",
         lambda w, p: _i(id=w.gid("obj_own"), title="New"), ADMIN | {"owner"}),
    Case("updateObjective", "to a team one does not lead",  # the new owner is checked too
        lambda w, p: _i(id=w.gid("obj_team"), ownerTeamId=w.gid("team2")), ADMIN),
    # alignments: whoever may edit the child
    Case("alignObjective", "individual child",
         lambda w, p: _i(childId=w.gid("obj_own"), parentObjectiveId=w.gid("obj_company")),
         ADMIN | {"owner"}),
    Case("alignObjective", "team child",
         lambda w, p: _i(childId=w.gid("obj_team"), parentKeyResultId=w.gid("kr_company")),
         ADMIN | {"lead"}),
    Case("updateAlignment", "individual child",
         lambda w, p: _i(id=w.gid("al_own"), weight=2), ADMIN | {"owner"}),
    Case("updateAlignment", "team child",
         lambda w, p: _i(id=w.gid("al_team"), contributes=False), ADMIN | {"lead"}),
    Case("removeAlignment", "", lambda w, p: {"id": w.gid("al_own")}, ADMIN | {"owner"}),
    # reflections: the objective's editors, once its cycle is graded; the world's cycle
    # is active, so an editor passes the permission check and meets a Conflict
    Case("writeReflection", "active cycle",
         lambda w, p: _i(objectiveId=w.gid("obj_own"), whatWorked="x"), frozenset(),
         refused_as=dict.fromkeys(ADMIN | {"owner"}, "Conflict")),
    Case("writeReflection", "graded company objective",
         lambda w, p: _i(objectiveId=w.gid("obj_graded"), whatWorked="x", outcome="MISSED"),
         ADMIN),
    # key results: the objective's editors
    Case("createKeyResult", "individual",
         lambda w, p: _i(objectiveId=w.gid("obj_own"), title="K", kind="INCREASE", target=9),
         ADMIN | {"owner"}),
    Case("createKeyResult", "team",
         lambda w, p: _i(objectiveId=w.gid("obj_team"), title="K", kind="MILESTONE"),
         ADMIN | {"lead"}),
    Case("updateKeyResult", "individual",
         lambda w, p: _i(id=w.gid("kr_own"), title="New"), ADMIN | {"owner"}),
    Case("updateKeyResult", "team, owned by a member",  # owning the KR is not owning the goal
         lambda w, p: _i(id=w.gid("kr_team"), target=200, targetReason="more"),
         ADMIN | {"lead"}),
    # check-ins and initiatives: also the KR's owner, and integrations with `write`
    Case("checkIn", "individual",
         lambda w, p: _i(keyResultId=w.gid("kr_own"), value=50, confidence=7),
         ADMIN | {"owner", "integration_write"}),
    Case("checkIn", "team, owned by a member",
         lambda w, p: _i(keyResultId=w.gid("kr_team"), value=50),
         ADMIN | {"lead", "owner", "integration_write"}),
    Case("checkIn", "company, owned by the admin person",
         lambda w, p: _i(keyResultId=w.gid("kr_company"), value=50),
         ADMIN | {"admin_rw", "integration_write"}),
    Case("createInitiative", "",
         lambda w, p: _i(keyResultId=w.gid("kr_own"), title="Do it"),
         ADMIN | {"owner", "integration_write"}),
    Case("updateInitiative", "",
         lambda w, p: _i(id=w.gid("initiative"), status="IN_PROGRESS"),
         ADMIN | {"owner", "integration_write"}),
    # KPIs: admins and the leads of the owner team
    Case("createKpi", "of a team",
         lambda w, p: _i(name="Signups", direction="HIGHER_IS_BETTER",
                         ownerTeamId=w.gid("team")), ADMIN | {"lead"}),
    Case("createKpi", "of no team",
         lambda w, p: _i(name="Signups", direction="HIGHER_IS_BETTER"), ADMIN),
    Case("updateKpi", "of a team", lambda w, p: _i(id=w.gid("kpi"), unit="users"),
         ADMIN | {"lead"}),
    Case("updateKpi", "of no team", lambda w, p: _i(id=w.gid("kpi_orphan"), unit="users"),
         ADMIN),
    Case("archiveKpi", "", lambda w, p: {"id": w.gid("kpi")}, ADMIN | {"lead"}),
    Case("linkKpi", "to a team objective",  # manage the KPI and edit the objective
         lambda w, p: _i(kpiId=w.gid("kpi"), objectiveId=w.gid("obj_team")), ADMIN | {"lead"}),
    Case("linkKpi", "to the company objective",
         lambda w, p: _i(kpiId=w.gid("kpi"), objectiveId=w.gid("obj_company")), ADMIN),
    Case("unlinkKpi", "from someone's objective",  # manage the KPI or edit the objective
         lambda w, p: _i(kpiId=w.gid("kpi"), objectiveId=w.gid("obj_own")),
         ADMIN | {"lead", "owner"}),
    Case("unlinkKpi", "from a team key result",
         lambda w, p: _i(kpiId=w.gid("kpi"), keyResultId=w.gid("kr_team")), ADMIN | {"lead"}),
    Case("recordKpiMeasurements", "of a team",
         lambda w, p: _i(kpiId=w.gid("kpi"), items=[{"value": 3, "measuredAt": _recent()}]),
         ADMIN | {"lead", "integration_write"}),
    Case("recordKpiMeasurements", "of no team",
         lambda w, p: _i(kpiId=w.gid("kpi_orphan"), items=[{"value": 3, "measuredAt": _recent()}]),
         ADMIN | {"integration_write"}),
    # tokens: one's own (within one's role and calling token), admins any
    Case("createApiToken", "for oneself, read",
         lambda w, p: _i(name="mine", scopes=["read"]), PERSONAL_WRITERS),
    Case("createApiToken", "for a member",
         lambda w, p: _i(name="theirs", scopes=["read"], personId=w.gid("member")),
         ADMIN | {"member"}),
    Case("createApiToken", "for an integration",
         lambda w, p: _i(name="ci", scopes=["read"], integrationName="ci"), ADMIN),
    Case("revokeApiToken", "a member's", lambda w, p: {"id": w.gid("spare_token")},
         ADMIN | {"member"}, refused_as=NOT_THEIRS),
    # webhooks: admins only
    Case("createWebhookEndpoint", "", lambda w, p: _i(url="https://93.184.215.14/x"), ADMIN),
    Case("updateWebhookEndpoint", "", lambda w, p: _i(id=w.gid("endpoint"), enabled=False),
         ADMIN),
    Case("rotateWebhookSecret", "", lambda w, p: {"id": w.gid("endpoint")}, ADMIN),
    Case("redeliverWebhook", "", lambda w, p: {"id": w.gid("delivery")}, ADMIN),
    Case("setWebhookPolicy", "", lambda w, p: {"allowPrivateUrls": True}, ADMIN),
    Case("setSlackWebhook", "", lambda w, p: _i(url="https://93.184.215.14/services/T/B/x"),
         ADMIN),
    # notifications: one's own only, with a `write` token (a VIEWER's too)
    Case("markNotificationsRead", "one's own", _own_note, PERSONAL_WRITERS),
    Case("markNotificationsRead", "the owner's", lambda w, p: {"ids": [w.gid("note_owner")]},
         frozenset({"owner"}),
         refused_as=NOT_THEIRS | dict.fromkeys(INTEGRATIONS | {"read_only"}, "Forbidden")),
    Case("setNotificationPreference", "",
         lambda w, p: {"kind": "CHECK_IN_DUE", "channel": "EMAIL", "enabled": False},
         PERSONAL_WRITERS),
]  # fmt: skip


def test_every_mutation_is_in_the_table() -> None:
    assert {case.mutation for case in CASES} == set(MUTATIONS)


def test_the_table_names_real_principals() -> None:
    for case in CASES:
        assert case.allowed <= set(PRINCIPALS), case.id
        assert set(case.refused_as) <= set(PRINCIPALS), case.id
    assert len({case.id for case in CASES}) == len(CASES)


async def _check(
    client: httpx.AsyncClient,
    db: AsyncSession,
    w: World,
    before: Snapshot,
    case: Case,
    principal: str,
) -> str | None:
    """None when the principal gets what the table says, else what went wrong.
    `before`: the world's snapshot (every call starts from it)."""
    async with undone(db):
        result = await call(
            client, w.tokens[principal], case.mutation, case.variables(w, principal)
        )
        writes = changed(before, await snapshot(db, w.org_id))
    allowed = principal in case.allowed
    expected = (
        success_type(case.mutation) if allowed else case.refused_as.get(principal, "Forbidden")
    )
    if result["__typename"] != expected:
        return f"{case.id} as {principal}: {result} (expected {expected})"
    if allowed and not writes:
        return f"{case.id} as {principal}: succeeded without writing anything"
    if not allowed and writes:
        return f"{case.id} as {principal}: refused but wrote {sorted(writes)}"
    return None


async def test_permissions_matrix(client: httpx.AsyncClient, db: AsyncSession) -> None:
    w = await build_world(db)
    before = await snapshot(db, w.org_id)
    problems = []
    for case in CASES:
        for principal in PRINCIPALS:
            problem = await _check(client, db, w, before, case, principal)
            if problem:
                problems.append(problem)
    assert changed(before, await snapshot(db, w.org_id)) == {}
    assert problems == [], "\n".join(problems)
