"""Organisation A attacks organisation B: every node type by `node`/`nodes`, every
argument that takes an id (filters, nested fields, every mutation), and nested reads.

A foreign id is NotFound (or Forbidden, before any lookup), never data, and B is
unchanged afterwards (every table, read as the database owner). Each attack has a
control: the same call with A's own ids succeeds, so the refusal is the foreign id's.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import graphql
import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.live import LiveHub
from okrgraph.domain.messages import ProgressChanged, ScoreChange, progress_channel
from okrgraph.domain.models.enums import OrgRole, Status, SubjectType
from okrgraph.schema import schema
from okrgraph.schema.context import Context
from okrgraph.schema.node import NODE_KINDS, from_global_id
from tests.api.security.world import (
    GRAPHQL_SCHEMA,
    MUTATIONS,
    NODE_ROWS,
    World,
    build_world,
    call,
    changed,
    has_id_argument,
    ids_in,
    snapshot,
    success_type,
    undone,
)
from tests.gql import data


@pytest.fixture
async def worlds(db: AsyncSession) -> tuple[World, World]:
    return await build_world(db), await build_world(db)


# --- reads ---------------------------------------------------------------------

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


def test_every_node_type_has_a_row_to_attack() -> None:
    assert set(NODE_KINDS) == set(NODE_ROWS), "add the new node type to NODE_ROWS and the world"


async def test_node_of_another_organisation_is_null(
    client: httpx.AsyncClient, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    for type_name, row in NODE_ROWS.items():
        gid = b.gid(row)
        own = await data(client, b.tokens["admin"], NODE, id=gid)
        assert own["node"] == {"__typename": type_name, "id": gid}, type_name
        for attacker in ("admin", "integration_write"):
            foreign = await data(client, a.tokens[attacker], NODE, id=gid)
            assert foreign["node"] is None, (attacker, type_name)


async def test_nodes_of_another_organisation_are_null(
    client: httpx.AsyncClient, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    ids = [b.gid(row) for row in NODE_ROWS.values()]
    own = await data(client, b.tokens["admin"], NODES, ids=ids)
    assert [n["id"] for n in own["nodes"]] == ids
    mixed = ids + [a.gid("team")]
    foreign = await data(client, a.tokens["admin"], NODES, ids=mixed)
    assert foreign["nodes"] == [None] * len(ids) + [{"__typename": "Team", "id": a.gid("team")}]


FILTERED = """query($filter: ObjectiveFilter, $after: String) {
  objectives(filter: $filter, first: 50, after: $after) { nodes { id } pageInfo { endCursor } }
}"""


async def test_filters_by_another_organisations_ids_find_nothing(
    client: httpx.AsyncClient, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    for key, row, expected in (
        ("cycleId", "cycle", {"obj_company", "obj_team", "obj_own"}),
        ("ownerTeamId", "team", {"obj_team"}),
        ("ownerPersonId", "owner", {"obj_own"}),
    ):
        own = await data(client, b.tokens["admin"], FILTERED, filter={key: b.gid(row)})
        assert {n["id"] for n in own["objectives"]["nodes"]} == {b.gid(o) for o in expected}
        mine = await data(client, a.tokens["admin"], FILTERED, filter={key: a.gid(row)})
        assert {n["id"] for n in mine["objectives"]["nodes"]} == {a.gid(o) for o in expected}
        foreign = await data(client, a.tokens["admin"], FILTERED, filter={key: b.gid(row)})
        assert foreign["objectives"]["nodes"] == [], key


async def test_a_cursor_of_another_organisation_pages_only_ones_own(
    client: httpx.AsyncClient, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    theirs = await data(client, b.tokens["admin"], FILTERED)
    cursor = theirs["objectives"]["pageInfo"]["endCursor"]
    assert cursor is not None
    body = await data(client, a.tokens["admin"], FILTERED, after=cursor)
    got = {from_global_id(n["id"])[1] for n in body["objectives"]["nodes"]}  # type: ignore[index]
    assert got <= a.all_ids()
    assert not got & b.all_ids()


NESTED_OBJECTIVES = """query($id: ID!, $cycle: ID) { node(id: $id) {
  ... on Team { objectives(cycleId: $cycle, first: 50) { nodes { id } } }
  ... on Person { objectives(cycleId: $cycle, first: 50) { nodes { id } } }
} }"""


async def test_nested_cycle_arguments_of_another_organisation_find_nothing(
    client: httpx.AsyncClient, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    for holder, expected in (("team", "obj_team"), ("owner", "obj_own")):
        own = await data(
            client, a.tokens["admin"], NESTED_OBJECTIVES, id=a.gid(holder), cycle=a.gid("cycle")
        )
        assert own["node"]["objectives"]["nodes"] == [{"id": a.gid(expected)}]
        foreign = await data(
            client, a.tokens["admin"], NESTED_OBJECTIVES, id=a.gid(holder), cycle=b.gid("cycle")
        )
        assert foreign["node"]["objectives"]["nodes"] == [], holder


TREE = """
fragment O on Objective {
  id cycle { id } ownerTeam { id } ownerPerson { id } carriedOverFrom { id } reflection { id }
  kpis { id ownerTeam { id } } ancestors { nodes { id } } descendants { nodes { id } }
  parents(first: 5) { nodes { id child { id } parentObjective { id } parentKeyResult { id } } }
  children(first: 5) { nodes { id child { id } } }
  explanation { terms { subject { id } } }
  keyResults(first: 5) { nodes {
    id owner { id } objective { id } kpi { id } targetRevisions { nodes { id } }
    explanation { terms { subject { id } } }
    children(first: 5) { nodes { id child { id } } }
    checkIns(first: 5) { nodes { id author { id } supersedes { id } keyResult { id } } }
    initiatives(first: 5) { nodes { id owner { id } } }
  } }
}
{
  viewer { person { id } organization { id } }
  organization { id
    teams(all: true, first: 5) { nodes { id parent { id } children(first: 5) { nodes { id } }
      members(first: 5) { nodes { id team { id } person { id } } }
      objectives(first: 5) { nodes { ...O } } } }
    people(first: 5) { nodes { id memberships(first: 5) { nodes { id team { id } } }
      objectives(first: 5) { nodes { id } } } }
  }
  cycles(first: 5) { nodes { id parent { id } children(first: 5) { nodes { id } }
    objectives(first: 5) { nodes { id } } } }
  objectives(first: 5) { nodes { ...O } }
  kpis(first: 5) { nodes { id ownerTeam { id } latest { id }
    measurements(first: 5) { nodes { id } } } }
  apiTokens(first: 50, includeRevoked: true) { nodes { id person { id } } }
  webhookEndpoints(first: 5) { nodes { id deliveries(first: 5) { nodes { id endpoint { id } } } } }
  notifications(first: 5) { nodes { id subject { id } } }
  notificationPreferences(first: 5) { nodes { id } }
}"""


# What the tree reaches of a world, seen by its admin.
REACHABLE = set(NODE_ROWS.values()) | {"team2", "obj_company", "obj_own", "kr_team", "kr_company"}


async def test_nested_reads_never_reach_another_organisation(
    client: httpx.AsyncClient, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    for me, other in ((a, b), (b, a)):
        seen = set(ids_in(await data(client, me.tokens["admin"], TREE)))
        assert {me.id(row) for row in REACHABLE} <= seen  # the query does reach things
        assert not seen & other.all_ids()


SUBSCRIBE = """subscription($ids: [ID!]) {
  progressChanged(ids: $ids) { subject { ... on Objective { id title } } previousValue }
}"""


def progress(org: uuid.UUID, id: uuid.UUID) -> str:
    change = ScoreChange(SubjectType.OBJECTIVE, id, 0.5, Status.ON_TRACK, 0.1, Status.AT_RISK)
    return ProgressChanged(org, (change,)).encode()


async def test_subscribing_to_another_organisations_ids_relays_nothing_of_theirs(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    worlds: tuple[World, World],
) -> None:
    """Their channel is not ours; and a message on our channel naming their objective
    (misrouted, forged) shows nothing of it: the subject is read in our tenant."""
    a, b = worlds
    principal = Principal(
        org_id=a.org_id, token_id=uuid.uuid4(), scopes=frozenset({"read"}),
        person_id=uuid.uuid4(), org_role=OrgRole.ADMIN,
    )  # fmt: skip
    live = LiveHub(redis_client)
    ctx = Context(request=None, sessionmaker=sessionmaker, principal=principal, live=live)
    wanted = [b.gid("obj_company"), a.gid("obj_company")]
    stream = await schema.subscribe(SUBSCRIBE, context_value=ctx, variable_values={"ids": wanted})
    first = asyncio.ensure_future(stream.__anext__())
    channel = progress_channel(a.org_id)
    for _ in range(500):
        if dict(await redis_client.pubsub_numsub(channel)).get(channel.encode(), 0) >= 1:
            break
        await asyncio.sleep(0.01)  # Redis has no event for "someone subscribed"
    else:
        raise AssertionError("the subscription never subscribed")
    theirs = b.id("obj_company")
    await redis_client.publish(progress_channel(b.org_id), progress(b.org_id, theirs))
    await redis_client.publish(channel, progress(b.org_id, theirs))  # their org, our channel
    await redis_client.publish(channel, progress(a.org_id, theirs))  # our org, their objective
    await redis_client.publish(channel, progress(a.org_id, a.id("obj_company")))
    result = await asyncio.wait_for(first, 5)
    assert result.errors is None, result.errors
    assert result.data is not None
    assert result.data["progressChanged"]["subject"]["id"] == wanted[1]
    await stream.aclose()
    await live.aclose()


def query_id_arguments() -> set[str]:
    """`Type.field.argument` of every read that takes an id (also inside input objects)."""
    found = set()
    for name, type_ in GRAPHQL_SCHEMA.type_map.items():
        if name.startswith("__") or not isinstance(type_, graphql.GraphQLObjectType):
            continue
        if name == "Mutation":
            continue
        for field_name, field in type_.fields.items():
            for arg_name, arg in field.args.items():
                named = graphql.get_named_type(arg.type)
                if isinstance(named, graphql.GraphQLInputObjectType):
                    found |= {
                        f"{name}.{field_name}.{arg_name}.{inner}"
                        for inner, f in named.fields.items()
                        if has_id_argument(f.type)
                    }
                elif has_id_argument(arg.type):
                    found.add(f"{name}.{field_name}.{arg_name}")
    return found


READS_ATTACKED = {
    "Query.node.id": test_node_of_another_organisation_is_null,
    "Query.nodes.ids": test_nodes_of_another_organisation_are_null,
    "Query.objectives.filter.cycleId": test_filters_by_another_organisations_ids_find_nothing,
    "Query.objectives.filter.ownerTeamId": test_filters_by_another_organisations_ids_find_nothing,
    "Query.objectives.filter.ownerPersonId": test_filters_by_another_organisations_ids_find_nothing,
    "Team.objectives.cycleId": test_nested_cycle_arguments_of_another_organisation_find_nothing,
    "Person.objectives.cycleId": test_nested_cycle_arguments_of_another_organisation_find_nothing,
    "Subscription.progressChanged.ids": (
        test_subscribing_to_another_organisations_ids_relays_nothing_of_theirs
    ),
}


def test_every_read_that_takes_an_id_is_attacked() -> None:
    assert query_id_arguments() == set(READS_ATTACKED)


# --- writes ----------------------------------------------------------------------

Vars = Callable[[World, World], dict[str, Any]]


@dataclass(frozen=True)
class Attack:
    """`variables(a, x)`: the call made by A, with the attacked id taken from world x
    (B for the attack, A itself for the control)."""

    mutation: str
    path: str  # the argument holding the attacked id, e.g. `input.parentTeamId`
    variables: Vars

    @property
    def id(self) -> str:
        return f"{self.mutation}:{self.path}"


def _recent() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


# A month inside the world's cycle (tests.factories: today +- 45 days, okrgraph's clock).
_INSIDE = tuple((clock.now().date() + timedelta(days=d)).isoformat() for d in (-10, 20))


def _i(**fields: Any) -> dict[str, Any]:
    return {"input": fields}


ATTACKS = [
    Attack("createTeam", "input.parentTeamId",
           lambda a, x: _i(name="Sub", parentTeamId=x.gid("team"))),
    Attack("updateTeam", "input.id", lambda a, x: _i(id=x.gid("team"), name="Renamed")),
    Attack("updateTeam", "input.parentTeamId",
           lambda a, x: _i(id=a.gid("team2"), parentTeamId=x.gid("team"))),
    Attack("archiveTeam", "id", lambda a, x: {"id": x.gid("team2")}),
    Attack("updatePerson", "input.id", lambda a, x: _i(id=x.gid("member"), name="Renamed")),
    Attack("archivePerson", "id", lambda a, x: {"id": x.gid("member")}),
    Attack("setMembership", "input.teamId",
           lambda a, x: _i(teamId=x.gid("team2"), personId=a.gid("member"))),
    Attack("setMembership", "input.personId",
           lambda a, x: _i(teamId=a.gid("team2"), personId=x.gid("member"))),
    Attack("removeMembership", "id", lambda a, x: {"id": x.gid("membership")}),
    Attack("createCycle", "input.parentCycleId",
           lambda a, x: _i(name="Month", cadence="CUSTOM", startsOn=_INSIDE[0],
                           endsOn=_INSIDE[1], parentCycleId=x.gid("cycle"))),
    Attack("updateCycle", "input.id", lambda a, x: _i(id=x.gid("cycle"), name="Renamed")),
    Attack("closeCycle", "input.id", lambda a, x: _i(id=x.gid("cycle"))),
    Attack("closeCycle", "input.nextCycleId",
           lambda a, x: _i(id=a.gid("cycle"), nextCycleId=x.gid("next_cycle"))),
    Attack("createObjective", "input.cycleId",
           lambda a, x: _i(cycleId=x.gid("cycle"), title="Win", level="COMPANY")),
    Attack("createObjective", "input.ownerTeamId",
           lambda a, x: _i(cycleId=a.gid("cycle"), title="Win", level="TEAM",
                           ownerTeamId=x.gid("team"))),
    Attack("createObjective", "input.ownerPersonId",
           lambda a, x: _i(cycleId=a.gid("cycle"), title="Win", level="INDIVIDUAL",
                           ownerPersonId=x.gid("owner"))),
    Attack("updateObjective", "input.id", lambda a, x: _i(id=x.gid("obj_team"), title="Mine")),
    Attack("updateObjective", "input.ownerTeamId",
           lambda a, x: _i(id=a.gid("obj_team"), ownerTeamId=x.gid("team2"))),
    Attack("updateObjective", "input.ownerPersonId",
           lambda a, x: _i(id=a.gid("obj_own"), ownerPersonId=x.gid("member"))),
    Attack("writeReflection", "input.objectiveId",
           lambda a, x: _i(objectiveId=x.gid("obj_graded"), whatWorked="Shipping early")),
    Attack("alignObjective", "input.childId",
           lambda a, x: _i(childId=x.gid("obj_own"), parentObjectiveId=a.gid("obj_company"))),
    Attack("alignObjective", "input.parentObjectiveId",
           lambda a, x: _i(childId=a.gid("obj_own"), parentObjectiveId=x.gid("obj_company"))),
    Attack("alignObjective", "input.parentKeyResultId",
           lambda a, x: _i(childId=a.gid("obj_own"), parentKeyResultId=x.gid("kr_company"))),
    Attack("updateAlignment", "input.id", lambda a, x: _i(id=x.gid("al_own"), weight=2)),
    Attack("removeAlignment", "id", lambda a, x: {"id": x.gid("al_own")}),
    Attack("createKeyResult", "input.objectiveId",
           lambda a, x: _i(objectiveId=x.gid("obj_own"), title="K", kind="INCREASE", target=9)),
    Attack("createKeyResult", "input.ownerPersonId",
           lambda a, x: _i(objectiveId=a.gid("obj_own"), title="K", kind="INCREASE", target=9,
                           ownerPersonId=x.gid("owner"))),
    Attack("updateKeyResult", "input.id", lambda a, x: _i(id=x.gid("kr_own"), title="Mine")),
    Attack("updateKeyResult", "input.ownerPersonId",
           lambda a, x: _i(id=a.gid("kr_own"), ownerPersonId=x.gid("member"))),
    Attack("checkIn", "input.keyResultId", lambda a, x: _i(keyResultId=x.gid("kr_own"), value=50)),
    Attack("checkIn", "input.supersedesId",
           lambda a, x: _i(keyResultId=a.gid("kr_own"), value=50,
                           supersedesId=x.gid("check_in"))),
    Attack("createInitiative", "input.keyResultId",
           lambda a, x: _i(keyResultId=x.gid("kr_own"), title="Do it")),
    Attack("createInitiative", "input.ownerPersonId",
           lambda a, x: _i(keyResultId=a.gid("kr_own"), title="Do it",
                           ownerPersonId=x.gid("owner"))),
    Attack("updateInitiative", "input.id", lambda a, x: _i(id=x.gid("initiative"), title="Mine")),
    Attack("createKpi", "input.ownerTeamId",
           lambda a, x: _i(name="Signups", direction="HIGHER_IS_BETTER",
                           ownerTeamId=x.gid("team"))),
    Attack("updateKpi", "input.id", lambda a, x: _i(id=x.gid("kpi"), name="Mine")),
    Attack("updateKpi", "input.ownerTeamId",
           lambda a, x: _i(id=a.gid("kpi"), ownerTeamId=x.gid("team2"))),
    Attack("archiveKpi", "id", lambda a, x: {"id": x.gid("kpi")}),
    Attack("linkKpi", "input.kpiId",
           lambda a, x: _i(kpiId=x.gid("kpi"), keyResultId=a.gid("kr_own"))),
    Attack("linkKpi", "input.keyResultId",
           lambda a, x: _i(kpiId=a.gid("kpi"), keyResultId=x.gid("kr_own"))),
    Attack("linkKpi", "input.objectiveId",
           lambda a, x: _i(kpiId=a.gid("kpi"), objectiveId=x.gid("obj_team"))),
    Attack("unlinkKpi", "input.kpiId",
           lambda a, x: _i(kpiId=x.gid("kpi"), objectiveId=a.gid("obj_own"))),
    Attack("unlinkKpi", "input.objectiveId",
           lambda a, x: _i(kpiId=a.gid("kpi"), objectiveId=x.gid("obj_own"))),
    Attack("unlinkKpi", "input.keyResultId",
           lambda a, x: _i(kpiId=a.gid("kpi"), keyResultId=x.gid("kr_team"))),
    Attack("createApiToken", "input.personId",
           lambda a, x: _i(name="t", scopes=["read"], personId=x.gid("member"))),
    Attack("revokeApiToken", "id", lambda a, x: {"id": x.gid("spare_token")}),
    Attack("updateWebhookEndpoint", "input.id",
           lambda a, x: _i(id=x.gid("endpoint"), description="mine")),
    Attack("rotateWebhookSecret", "id", lambda a, x: {"id": x.gid("endpoint")}),
    Attack("redeliverWebhook", "id", lambda a, x: {"id": x.gid("delivery")}),
    Attack("markNotificationsRead", "ids", lambda a, x: {"ids": [x.gid("note_admin")]}),
    Attack("markNotificationsRead", "ids",  # with one's own: nothing is marked
           lambda a, x: {"ids": [a.gid("note_admin"), x.gid("note_admin")]}),
    Attack("recordKpiMeasurements", "input.kpiId",
           lambda a, x: _i(kpiId=x.gid("kpi"), items=[{"value": 1, "measuredAt": _recent()}])),
]  # fmt: skip


def id_paths(type_: graphql.GraphQLInputType, prefix: str) -> set[str]:
    named = graphql.get_named_type(type_)
    if isinstance(named, graphql.GraphQLInputObjectType):
        return {p for n, f in named.fields.items() for p in id_paths(f.type, f"{prefix}.{n}")}
    return (
        {prefix} if isinstance(named, graphql.GraphQLScalarType) and named.name == "ID" else set()
    )


def test_every_mutation_argument_that_takes_an_id_is_attacked() -> None:
    in_schema = {
        f"{name}:{path}"
        for name, field in MUTATIONS.items()
        for arg, spec in field.args.items()
        for path in id_paths(spec.type, arg)
    }
    assert in_schema == {attack.id for attack in ATTACKS}


async def _attack(
    client: httpx.AsyncClient, db: AsyncSession, a: World, b: World, attack: Attack
) -> None:
    variables = attack.variables(a, b)
    before = await snapshot(db, a.org_id, b.org_id)
    for attacker, refusals in (
        ("admin", {"NotFound"}),
        ("integration_write", {"NotFound", "Forbidden"}),
    ):
        result = await call(client, a.tokens[attacker], attack.mutation, variables)
        assert result["__typename"] in refusals, (attack.id, attacker, result)
        assert changed(before, await snapshot(db, a.org_id, b.org_id)) == {}, (attack.id, attacker)
    async with undone(db):  # the control: the same call with A's own ids writes, in A only
        own = await call(client, a.tokens["admin"], attack.mutation, attack.variables(a, a))
        assert own["__typename"] == success_type(attack.mutation), (attack.id, own)
        writes = changed(before, await snapshot(db, a.org_id, b.org_id))
        assert {org for org, _ in writes} == {str(a.org_id)}, (attack.id, writes)


async def test_another_organisations_ids_are_not_found_and_change_nothing(
    client: httpx.AsyncClient, db: AsyncSession, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    for attack in ATTACKS:
        await _attack(client, db, a, b, attack)


async def test_the_snapshot_sees_every_write(
    client: httpx.AsyncClient, db: AsyncSession, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    before = await snapshot(db, a.org_id, b.org_id)
    async with undone(db):
        renamed = await call(
            client, a.tokens["admin"], "updateTeam", _i(id=a.gid("team"), name="Renamed")
        )
        assert renamed["__typename"] == "TeamSuccess"
        writes = changed(before, await snapshot(db, a.org_id, b.org_id))
        # the same number of teams, one changed value; and its audit entry
        assert set(writes) == {(str(a.org_id), "teams"), (str(a.org_id), "audit_entries")}
        assert writes[(str(a.org_id), "teams")][0][0] == writes[(str(a.org_id), "teams")][1][0]
    assert changed(before, await snapshot(db, a.org_id, b.org_id)) == {}


# A crafted id of another organisation's row (right type, their uuid) is the same as
# theirs: `gid` already builds exactly that. And a global id for a type that is not a
# node kind, or a non-id string, is refused the same way as any unknown id.
async def test_forged_ids_are_not_found(
    client: httpx.AsyncClient, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    forged = [
        base64.urlsafe_b64encode(f"Secret:{b.id('team')}".encode()).decode(),
        base64.urlsafe_b64encode(f"Team:{b.id('team')}:{a.id('team')}".encode()).decode(),
        base64.urlsafe_b64encode(f"Team:{a.org_id}".encode()).decode(),  # an org id as a team
        base64.urlsafe_b64encode(f"Organization:{b.org_id}".encode()).decode(),
        "",
        "Team:" + str(b.id("team")),
    ]
    body = await data(client, a.tokens["admin"], NODES, ids=forged)
    assert body["nodes"] == [None] * len(forged)
