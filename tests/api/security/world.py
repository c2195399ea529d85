"""A small organisation with a row of every kind and a caller of every kind, for the
security tests; a snapshot of everything an organisation holds; mutation documents
built from the schema itself.

The `client` fixture shares the test's transaction with `db`, so a request can be
undone with `undone(db)` (a savepoint rolled back) and every table can be read as
the database owner (past row-level security) in the middle of a test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import graphql
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import Base
from okrgraph.domain.models.enums import CycleState, KeyResultKind, Level, OrgRole, TeamRole
from okrgraph.schema import schema
from okrgraph.schema.node import from_global_id, to_global_id
from tests.factories import (
    make_alignment,
    make_check_in,
    make_cycle,
    make_initiative,
    make_key_result,
    make_kpi,
    make_kpi_link,
    make_measurement,
    make_membership,
    make_notification,
    make_notification_preference,
    make_objective,
    make_org,
    make_person,
    make_reflection,
    make_target_revision,
    make_team,
    make_token,
    make_webhook_delivery,
    make_webhook_endpoint,
)
from tests.gql import gql

# The callers of the permission matrix (DESIGN.md section 6 and issue 3).
PRINCIPALS = (
    "admin",  # an ADMIN person, token with read, write, admin
    "admin_rw",  # the same ADMIN person, token with read and write only
    "lead",  # a MEMBER who leads the team
    "owner",  # a MEMBER of the team who owns the individual objective and the KRs
    "member",  # a MEMBER of the team who owns nothing
    "viewer",  # a VIEWER still holding a read+write token (e.g. from before a demotion)
    "read_only",  # the ADMIN person's read-only token
    "integration_write",  # an integration with read and write
    "integration_read",  # an integration with read only
)
PERSON_OF = {
    "admin": "admin",
    "admin_rw": "admin",
    "read_only": "admin",
    "lead": "lead",
    "owner": "owner",
    "member": "member",
    "viewer": "viewer",
}

# Which named row of a world stands for each node type.
NODE_ROWS = {
    "Organization": "org",
    "Team": "team",
    "Person": "owner",
    "Membership": "membership",
    "ApiToken": "spare_token",
    "Kpi": "kpi",
    "KpiMeasurement": "measurement",
    "Notification": "note_admin",
    "NotificationPreference": "preference",
    "Cycle": "cycle",
    "Objective": "obj_team",
    "Alignment": "al_own",
    "KeyResult": "kr_own",
    "CheckIn": "check_in",
    "Initiative": "initiative",
    "TargetRevision": "revision",
    "Reflection": "reflection",
    "WebhookEndpoint": "endpoint",
    "WebhookDelivery": "delivery",
}


@dataclass
class World:
    org_id: uuid.UUID
    rows: dict[str, tuple[str, uuid.UUID]] = field(default_factory=dict)  # name -> (type, id)
    tokens: dict[str, str] = field(default_factory=dict)  # principal -> bearer secret

    def add(self, name: str, type_name: str, id: uuid.UUID) -> uuid.UUID:
        self.rows[name] = (type_name, id)
        return id

    def id(self, name: str) -> uuid.UUID:
        return self.rows[name][1]

    def gid(self, name: str) -> str:
        type_name, id = self.rows[name]
        return str(to_global_id(type_name, id))

    def all_ids(self) -> set[uuid.UUID]:
        return {id for _, id in self.rows.values()}


async def build_world(db: AsyncSession) -> World:
    """A new organisation with the cast of `PRINCIPALS` and a row of every node type.

    Team `team` (led by `lead`; `owner`, `member`, `viewer` are members), `team2`;
    cycle `cycle` (active); objectives `obj_company`, `obj_team` (of `team`),
    `obj_own` (INDIVIDUAL, of `owner`); cycle `graded` (GRADING) with the company
    objective `obj_graded`; alignments `al_own` (obj_own -> obj_team)
    and `al_team` (obj_team -> obj_company); key results `kr_own` (on obj_own),
    `kr_team` (on obj_team), both owned by `owner`, and `kr_company`; a check-in,
    an initiative and a target revision of kr_own; KPI `kpi` (of `team`) linked to
    obj_own and kr_team, with a measurement; `kpi_orphan` (no team); a notification per person
    (`note_<person>`), a preference of `owner`; a webhook endpoint with a delivery;
    `spare_token`, another token of `member`; cycle `next_cycle` (PLANNING, the
    quarter after `cycle`).
    """
    org = await make_org(db)
    w = World(org.id)
    o = org.id
    w.add("org", "Organization", o)
    team = w.add("team", "Team", (await make_team(db, o)).id)
    w.add("team2", "Team", (await make_team(db, o)).id)
    roles = {"admin": OrgRole.ADMIN, "viewer": OrgRole.VIEWER}
    for person in ("admin", "lead", "owner", "member", "viewer"):
        w.add(
            person, "Person", (await make_person(db, o, role=roles.get(person, OrgRole.MEMBER))).id
        )
    for person in ("lead", "owner", "member", "viewer"):
        role = TeamRole.LEAD if person == "lead" else TeamRole.MEMBER
        m = await make_membership(db, o, team_id=team, person_id=w.id(person), role=role)
        if person == "member":
            w.add("membership", "Membership", m.id)
    scopes = {
        "admin": ["read", "write", "admin"],
        "admin_rw": ["read", "write"],
        "read_only": ["read"],
    }
    for principal, person in PERSON_OF.items():
        _, w.tokens[principal] = await make_token(
            db, o, person_id=w.id(person), scopes=scopes.get(principal, ["read", "write"])
        )
    _, w.tokens["integration_write"] = await make_token(
        db, o, integration_name="sync-write", scopes=["read", "write"]
    )
    _, w.tokens["integration_read"] = await make_token(
        db, o, integration_name="sync-read", scopes=["read"]
    )
    spare, _ = await make_token(db, o, person_id=w.id("member"), scopes=["read", "write"])
    w.add("spare_token", "ApiToken", spare.id)

    active = await make_cycle(db, o)
    cycle = w.add("cycle", "Cycle", active.id)
    company = await make_objective(db, o, level=Level.COMPANY, cycle_id=cycle)
    w.add("obj_company", "Objective", company.id)
    obj_team = await make_objective(db, o, level=Level.TEAM, cycle_id=cycle, owner_team_id=team)
    w.add("obj_team", "Objective", obj_team.id)
    own = await make_objective(
        db, o, level=Level.INDIVIDUAL, cycle_id=cycle, owner_person_id=w.id("owner")
    )
    w.add("obj_own", "Objective", own.id)
    graded = w.add("graded", "Cycle", (await make_cycle(db, o, state=CycleState.GRADING)).id)
    next_cycle = await make_cycle(  # the quarter after `cycle`, whatever today is
        db,
        o,
        state=CycleState.PLANNING,
        starts_on=active.ends_on + timedelta(days=1),
        ends_on=active.ends_on + timedelta(days=91),
    )
    w.add("next_cycle", "Cycle", next_cycle.id)
    obj_graded = await make_objective(db, o, level=Level.COMPANY, cycle_id=graded)
    w.add("obj_graded", "Objective", obj_graded.id)
    al = await make_alignment(db, o, child_objective_id=own.id, parent_objective_id=obj_team.id)
    w.add("al_own", "Alignment", al.id)
    al = await make_alignment(db, o, child_objective_id=obj_team.id, parent_objective_id=company.id)
    w.add("al_team", "Alignment", al.id)
    for name, objective, owner in (
        ("kr_own", own.id, w.id("owner")),
        ("kr_team", obj_team.id, w.id("owner")),
        ("kr_company", company.id, w.id("admin")),
    ):
        kr = await make_key_result(
            db, o, kind=KeyResultKind.INCREASE, objective_id=objective, owner_person_id=owner
        )
        w.add(name, "KeyResult", kr.id)
    kr_own = w.id("kr_own")
    w.add("check_in", "CheckIn", (await make_check_in(db, o, key_result_id=kr_own)).id)
    initiative = await make_initiative(db, o, key_result_id=kr_own, owner_person_id=w.id("owner"))
    w.add("initiative", "Initiative", initiative.id)
    w.add(
        "revision", "TargetRevision", (await make_target_revision(db, o, key_result_id=kr_own)).id
    )
    reflection = await make_reflection(db, o, objective_id=company.id, cycle_id=cycle)
    w.add("reflection", "Reflection", reflection.id)

    kpi = w.add("kpi", "Kpi", (await make_kpi(db, o, owner_team_id=team)).id)
    w.add("kpi_orphan", "Kpi", (await make_kpi(db, o)).id)
    w.add("measurement", "KpiMeasurement", (await make_measurement(db, o, kpi_id=kpi)).id)
    await make_kpi_link(db, o, kpi_id=kpi, objective_id=own.id)
    await make_kpi_link(db, o, kpi_id=kpi, key_result_id=w.id("kr_team"))

    for person in ("admin", "lead", "owner", "member", "viewer"):
        note = await make_notification(db, o, person_id=w.id(person))
        w.add(f"note_{person}", "Notification", note.id)
    preference = await make_notification_preference(db, o, person_id=w.id("admin"))
    w.add("preference", "NotificationPreference", preference.id)
    endpoint = w.add("endpoint", "WebhookEndpoint", (await make_webhook_endpoint(db, o)).id)
    delivery = await make_webhook_delivery(db, o, endpoint_id=endpoint)
    w.add("delivery", "WebhookDelivery", delivery.id)
    return w


# --- snapshots ---------------------------------------------------------------

Snapshot = dict[tuple[str, str], tuple[int, str]]  # (org, table) -> (rows, hash)


def _snapshot_sql() -> str:
    parts = []
    for table in Base.metadata.sorted_tables:
        key = "id" if "org_id" not in table.c else "org_id"
        # `last_used_at` moves when a token is used, whatever the request does.
        parts.append(
            f"SELECT CAST(x.{key} AS text) AS org, '{table.name}' AS tbl, count(*) AS n, "
            "md5(string_agg((to_jsonb(x) - 'last_used_at')::text, ',' "
            "ORDER BY (to_jsonb(x) - 'last_used_at')::text)) AS h "
            f"FROM {table.name} x WHERE x.{key} = ANY(CAST(:orgs AS uuid[])) GROUP BY x.{key}"
        )
    return "\nUNION ALL\n".join(parts)


SNAPSHOT_SQL = text(_snapshot_sql())


_SUPERUSER: dict[str, bool] = {}


async def snapshot(db: AsyncSession, *org_ids: uuid.UUID) -> Snapshot:
    """Every table's rows of the organisations (count and a hash of their values), read
    as the session user (the database owner in tests: past row-level security) when it
    is a superuser, else through each organisation's own tenant scope."""
    if "session" not in _SUPERUSER:
        is_super = text("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
        _SUPERUSER["session"] = bool((await db.execute(is_super)).scalar())
    orgs = {"orgs": [str(o) for o in org_ids]}
    out: Snapshot = {}
    if _SUPERUSER["session"]:
        await db.execute(text("SET LOCAL ROLE NONE"))
        try:
            rows = (await db.execute(SNAPSHOT_SQL, orgs)).all()
        finally:
            await db.execute(text("RESET ROLE"))  # the connection's own: the app role
        return {(r.org, r.tbl): (r.n, r.h) for r in rows}
    async with db.begin_nested() as savepoint:
        for org_id in org_ids:
            await set_tenant(db, org_id)
            out |= {(r.org, r.tbl): (r.n, r.h) for r in await db.execute(SNAPSHOT_SQL, orgs)}
        await savepoint.rollback()  # back to the previous tenant
    return out


def changed(before: Snapshot, after: Snapshot) -> dict[tuple[str, str], tuple[Any, Any]]:
    """What differs, by (organisation, table)."""
    keys = before.keys() | after.keys()
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


@asynccontextmanager
async def undone(db: AsyncSession) -> AsyncIterator[None]:
    """Whatever requests do inside is rolled back at the end (a savepoint)."""
    savepoint = await db.begin_nested()
    await db.execute(text("SELECT 1"))  # emits the SAVEPOINT now, before any request
    try:
        yield
    finally:
        await savepoint.rollback()


# --- the schema's mutations ------------------------------------------------------

GRAPHQL_SCHEMA: graphql.GraphQLSchema = schema._schema
MUTATION_TYPE = GRAPHQL_SCHEMA.mutation_type
assert MUTATION_TYPE is not None
MUTATIONS: dict[str, graphql.GraphQLField] = dict(MUTATION_TYPE.fields)
USER_ERROR_TYPES = frozenset({"ValidationError", "NotFound", "Forbidden", "Conflict"})


def success_type(mutation: str) -> str:
    """The one member of a mutation's result union that is not a user error."""
    union = graphql.get_named_type(MUTATIONS[mutation].type)
    assert isinstance(union, graphql.GraphQLUnionType), mutation
    (name,) = [str(t.name) for t in union.types if t.name not in USER_ERROR_TYPES]
    return name


def mutation_document(mutation: str) -> str:
    """`mutation($a: T!, ...) { name(a: $a, ...) { __typename ... } }` with every argument
    as a variable (those not given are null: defaults are then not applied, which is
    why callers pass what they mean)."""
    args = MUTATIONS[mutation].args
    definitions = ", ".join(f"${name}: {arg.type}" for name, arg in args.items())
    passing = ", ".join(f"{name}: ${name}" for name in args)
    return (
        f"mutation({definitions}) {{ {mutation}({passing}) {{ __typename "
        "... on UserError { message } ... on ValidationError { field } } }"
    )


async def call(
    client: httpx.AsyncClient, token: str, mutation: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """Run one mutation; returns its result object (asserts no request-level error)."""
    body = await gql(client, token, mutation_document(mutation), **variables)
    assert "errors" not in body, (mutation, body)
    result: dict[str, Any] = body["data"][mutation]
    return result


def ids_in(value: Any) -> Iterator[uuid.UUID]:
    """The uuid of every global id under an `id` key anywhere in a response."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "id" and isinstance(item, str):
                parsed = from_global_id(item)
                assert parsed is not None, item
                yield parsed[1]
            else:
                yield from ids_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from ids_in(item)


def has_id_argument(type_: graphql.GraphQLInputType, seen: frozenset[str] = frozenset()) -> bool:
    """Whether an input type is, or holds somewhere inside, an `ID`."""
    named = graphql.get_named_type(type_)
    if isinstance(named, graphql.GraphQLScalarType):
        return named.name == "ID"
    if isinstance(named, graphql.GraphQLInputObjectType) and named.name not in seen:
        return any(has_id_argument(f.type, seen | {named.name}) for f in named.fields.values())
    return False
