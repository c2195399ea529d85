"""The compiled read path answers exactly what normal execution answers.

Every field the registry lists is asked for, on every type, both ways, and the
two `data` are compared; a field whose SQL drifts from its resolver fails here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from okrgraph.domain.seed import SeedResult
from okrgraph.schema.compiled import compiler as compiler_module
from okrgraph.schema.compiled import extension
from okrgraph.schema.compiled.compiler import NotCompilable
from okrgraph.schema.compiled.registry import TYPES
from tests.api.roles import ROLES, cast
from tests.gql import data

IDS = """{
  organization { id people(first: 50) { nodes { id memberships { nodes { id } } } }
    teams(all: true, first: 50) { nodes { id } } }
  cycles(first: 10) { nodes { id } }
  kpis(first: 10) { nodes { id latest { id } } }
  objectives(first: 50) { nodes { id parents { nodes { id } } keyResults(first: 10) { nodes {
    id checkIns(first: 10) { nodes { id } } initiatives { nodes { id } } } } } }
}"""


def selection(type_name: str) -> str:
    """Every leaf of a type, and every relation with its id and type name."""
    spec = TYPES[type_name]
    parts = [*spec.leaves, "__typename"]
    for name, relation in spec.relations.items():
        inner = "id __typename"
        if relation.shape == "connection":
            parts.append(f"{name}(first: 3) {{ __typename nodes {{ {inner} }} }}")
        else:
            parts.append(f"{name} {{ {inner} }}")
    return " ".join(parts)


def ids_by_type(found: Any) -> dict[str, list[str]]:
    import base64

    out: dict[str, list[str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "id" in value:
                type_name = base64.urlsafe_b64decode(value["id"]).decode().partition(":")[0]
                out.setdefault(type_name, []).append(value["id"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(found)
    return out


async def both_ways(
    client: httpx.AsyncClient, token: str, query: str, monkeypatch: pytest.MonkeyPatch,
    **variables: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    calls: list[str] = []
    real = compiler_module.compile_query

    def spy(*args: Any) -> Any:
        result = real(*args)
        calls.append("compiled")
        return result

    monkeypatch.setattr(extension, "compile_query", spy)
    extension.store.clear()  # compiled anew, not from an earlier test's request
    compiled = await data(client, token, query, **variables)
    assert calls == ["compiled"], "the query was expected to compile"

    def refuse(*args: Any) -> Any:
        raise NotCompilable("test: execute normally")

    monkeypatch.setattr(extension, "compile_query", refuse)
    extension.store.clear()
    executed = await data(client, token, query, **variables)
    return compiled, executed


async def test_every_registry_field_matches_its_resolver(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = demo.admin_token or ""
    ids = ids_by_type(await data(client, token, IDS))
    missing = set(TYPES) - set(ids)
    assert not missing, f"the demo data has no {missing}"
    for type_name in TYPES:
        for id in ids[type_name][:3]:
            query = f"""query($id: ID!) {{ node(id: $id) {{
              ... on {type_name} {{ {selection(type_name)} }} }} }}"""
            compiled, executed = await both_ways(client, token, query, monkeypatch, id=id)
            # byte for byte: key order, `2.0` not `2`, timestamps to the microsecond
            assert json.dumps(compiled) == json.dumps(executed), type_name
            assert compiled["node"] is not None


TREE = """
query Tree($teams: Int!) {
  org: organization {
    __typename name
    teams(all: true, first: $teams) {
      nodes {
        ...TeamBits
        objectives(first: 5) {
          nodes {
            title progress status finalScore createdAt
            keyResults(first: 5) {
              nodes {
                title kind start target current score stretch
                latest: checkIns(first: 1) { nodes { value effectiveAt confidence } }
                checkIns(first: 10) { nodes { value } }
                kpi { name health onTarget latest { value measuredAt } }
              }
            }
            kpis { name health latest { value } }
            parents { nodes { weight contributes parentObjective { title } } }
          }
        }
      }
    }
    topLevel: teams { nodes { name } }
  }
  kpis(first: 5) { nodes { name health onTarget direction } }
  cycles { nodes { name startsOn endsOn state parent { name } } }
  objectives(first: 3) { nodes { title level ownerPerson { email } ownerTeam { name } } }
}
fragment TeamBits on Team { id name description parent { name } }
"""


async def test_a_tree_with_aliases_fragments_and_variables(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled, executed = await both_ways(
        client, demo.admin_token or "", TREE, monkeypatch, teams=10
    )
    assert json.dumps(compiled) == json.dumps(executed)
    assert len(compiled["org"]["teams"]["nodes"]) == 4
    assert [t["name"] for t in compiled["org"]["topLevel"]["nodes"]] == ["Acme Rockets"]


@pytest.mark.parametrize(
    "query",
    [
        "{ organization { teams { pageInfo { hasNextPage } } } }",
        "{ objectives(filter: {level: TEAM}) { nodes { title } } }",
        "{ objectives { nodes { expectedProgress } } }",
        '{ organization { teams(after: "x") { nodes { name } } } }',
        "{ organization { name @include(if: true) } }",
        "{ viewer { scopes } }",
        "mutation { __typename }",
    ],
)
def test_what_is_left_to_normal_execution(query: str) -> None:
    from graphql import parse

    with pytest.raises(NotCompilable):
        compiler_module.compile_query(parse(query), None, {})


async def test_timestamps_and_whole_floats_render_alike(
    client: httpx.AsyncClient, demo: SeedResult, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from okrgraph.schema.node import to_global_id
    from tests.factories import make_check_in

    query = "query($id: ID!) { node(id: $id) { ... on CheckIn { value effectiveAt recordedAt } } }"
    for at, value in [
        (datetime(2026, 11, 2, 9, 30, tzinfo=UTC), 3.0),  # no microseconds, a whole float
        (datetime(2026, 11, 2, 9, 30, 1, 120000, tzinfo=UTC), 2.5),  # trailing zeros
        (datetime(2026, 11, 2, 9, 30, 1, 7, tzinfo=UTC), -0.0),  # leading zeros
    ]:
        row = await make_check_in(db, demo.org_id, effective_at=at, recorded_at=at, value=value)
        compiled, executed = await both_ways(
            client, demo.admin_token or "", query, monkeypatch, id=to_global_id("CheckIn", row.id)
        )
        assert json.dumps(compiled) == json.dumps(executed)
        assert compiled["node"]["effectiveAt"] == at.isoformat()


async def test_extreme_stored_dates_render_alike(
    client: httpx.AsyncClient, demo: SeedResult, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12, finding 15: rows stored before the date bounds (PostgreSQL's
    +-infinity, the last and first days) answer the same on both paths."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from okrgraph.schema.node import to_global_id
    from tests.factories import make_check_in

    cycle = await db.scalar(text("SELECT id FROM cycles ORDER BY starts_on LIMIT 1"))
    check_in = "query($id: ID!) { node(id: $id) { ... on CheckIn { effectiveAt recordedAt } } }"
    days = "query($id: ID!) { node(id: $id) { ... on Cycle { startsOn endsOn } } }"
    for at, (start, end) in [
        (datetime.max.replace(tzinfo=UTC), ("-infinity", "infinity")),  # asyncpg: +-infinity
        (datetime.min.replace(tzinfo=UTC), ("0001-01-01", "9999-12-31")),
    ]:
        row = await make_check_in(db, demo.org_id, effective_at=at)
        await db.execute(
            text(
                "UPDATE cycles SET starts_on = CAST(CAST(:s AS text) AS date),"
                " ends_on = CAST(CAST(:e AS text) AS date) WHERE id = :id"
            ),
            {"s": start, "e": end, "id": cycle},
        )
        for query, node in [
            (check_in, to_global_id("CheckIn", row.id)),
            (days, to_global_id("Cycle", cycle)),
        ]:
            compiled, executed = await both_ways(
                client, demo.admin_token or "", query, monkeypatch, id=node
            )
            assert json.dumps(compiled) == json.dumps(executed)
            assert "infinity" not in json.dumps(compiled)


# --- variables, arguments and fragments as the executor reads them -------------------


async def both_bodies(
    client: httpx.AsyncClient, token: str, query: str, monkeypatch: pytest.MonkeyPatch,
    variables: Any = None,
) -> tuple[bytes, bytes, bool]:  # fmt: skip
    """The raw response bodies with the compiled path on and off, and whether the
    compiled path answered (a declined query runs normally both times)."""
    compiled: list[bool] = []
    real = compiler_module.compile_query

    def spy(*args: Any) -> Any:
        result = real(*args)
        compiled.append(True)
        return result

    def refuse(*args: Any) -> Any:
        raise NotCompilable("test: execute normally")

    bodies = []
    for replacement in (spy, refuse):
        monkeypatch.setattr(extension, "compile_query", replacement)
        extension.store.clear()  # compiled anew, not from the store
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        bodies.append(f"{response.status_code} ".encode() + response.content)
    return bodies[0], bodies[1], bool(compiled)


PEOPLE = "people(first: $n) { nodes { name } }"
TEAMS = "organization { teams(all: $all) { nodes { name } } }"
OBJECTIVE_KPIS = "objectives(first: 3) { nodes { title kpis(first: $n) { name } } }"
# (query, variables, compiles): every answer must be the normal path's, byte for byte
VARIABLE_CASES: list[tuple[str, Any, bool]] = [
    (f"query($n: Int = 2) {{ organization {{ {PEOPLE} }} }}", {}, True),
    (f"query($n: Int = 2) {{ organization {{ {PEOPLE} }} }}", {"n": 3}, True),
    (f"query($n: Int = 2) {{ organization {{ {PEOPLE} }} }}", {"n": None}, True),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", {}, True),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", None, True),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", {"n": 1.0}, True),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", {"n": True}, False),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", {"n": "1"}, False),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", {"n": 1.5}, False),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", {"n": -1}, False),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", {"n": 101}, False),
    (f"query($n: Int!) {{ organization {{ {PEOPLE} }} }}", {}, False),
    (f"query($n: Int!) {{ organization {{ {PEOPLE} }} }}", {"n": None}, False),
    (f"query($n: Int) {{ organization {{ {PEOPLE} }} }}", {"n": 1, "unused": 5}, True),
    ("query($n: Int = 2) { kpis(first: $n) { nodes { name } } }", {}, True),
    (f"query($all: Boolean! = true) {{ {TEAMS} }}", {}, True),
    (f"query($all: Boolean = true) {{ {TEAMS} }}", {}, True),
    (f"query($all: Boolean) {{ {TEAMS} }}", {}, True),  # the argument's default: false
    (f"query($all: Boolean) {{ {TEAMS} }}", {"all": True}, True),
    (f"query($all: Boolean) {{ {TEAMS} }}", {"all": None}, False),  # null for Boolean!
    (f"query($all: Boolean) {{ {TEAMS} }}", {"all": "yes"}, False),
    (f"query($n: Int = 1) {{ {OBJECTIVE_KPIS} }}", {}, True),
    (f"query($n: Int) {{ {OBJECTIVE_KPIS} }}", {}, True),  # Objective.kpis(first: Int! = 20)
    (f"query($n: Int) {{ {OBJECTIVE_KPIS} }}", {"n": None}, False),  # null for Int!
    ("query { organization { people(first: null) { nodes { name } } } }", {}, True),
    # no operationName: Strawberry runs the first operation, and so does the compiled path
    ("query A { kpis { nodes { name } } } query B { cycles { nodes { name } } }", {}, True),
]


@pytest.mark.parametrize(("query", "variables", "compiles"), VARIABLE_CASES)
async def test_variables_are_coerced_as_the_executor_does(
    client: httpx.AsyncClient,
    demo: SeedResult,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    variables: Any,
    compiles: bool,
) -> None:
    compiled, executed, ran = await both_bodies(
        client, demo.admin_token or "", query, monkeypatch, variables
    )
    assert compiled == executed
    assert ran is compiles, "expected the compiled path to " + ("answer" if compiles else "decline")


async def test_defaults_and_fragments_give_the_answers_they_should(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's cases, with the answers spelled out; and fragments on an
    interface or union that holds the type, named operations, ids as variables."""
    token = demo.admin_token or ""
    ids = ids_by_type(await data(client, token, IDS))

    async def same(query: str, variables: Any = None) -> Any:
        compiled, executed, ran = await both_bodies(client, token, query, monkeypatch, variables)
        assert compiled == executed, query
        assert ran, query
        return json.loads(compiled.partition(b" ")[2])["data"]

    found = await same("query($n: Int = 2) { kpis(first: $n) { nodes { name } } }")
    assert len(found["kpis"]["nodes"]) == 2
    found = await same(f"query($all: Boolean! = true) {{ {TEAMS} }}")
    assert len(found["organization"]["teams"]["nodes"]) == 4
    kr = ids["KeyResult"][0]
    found = await same(
        "query($id: ID!) { node(id: $id) { ... on ProgressSubject { ... on KeyResult { title } }"
        " ...Named } } fragment Named on Node { id ... on Node { __typename } }",
        {"id": kr},
    )
    assert found["node"]["title"]
    assert found["node"]["id"] == kr
    found = await same(
        f'query($id: ID = "{ids["Team"][0]}") {{ node(id: $id) {{ ... on Team {{ name }} }} }}'
    )
    assert found["node"]["name"]
    two = "query A { kpis { nodes { name } } } query B { cycles(first: 1) { nodes { name } } }"
    response = await client.post(
        "/graphql",
        json={"query": two, "operationName": "B"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert list(response.json()["data"]) == ["cycles"]


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_gets_the_normal_answer(
    client: httpx.AsyncClient,
    demo: SeedResult,
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
) -> None:
    """The tree, and every registry field of one row per type, for each caller."""
    callers = await cast(db, demo.org_id, demo.admin_token or "")
    token = callers.tokens[role]
    ids = ids_by_type(await data(client, token, IDS))
    queries: list[tuple[str, dict[str, Any]]] = [(TREE, {"teams": 10})]
    for type_name in TYPES:
        query = f"""query($id: ID!) {{ node(id: $id) {{
          ... on {type_name} {{ {selection(type_name)} }} }} }}"""
        queries.append((query, {"id": ids[type_name][0]}))
    for query, variables in queries:
        compiled, executed, ran = await both_bodies(client, token, query, monkeypatch, variables)
        assert compiled == executed, (role, query)
        assert ran, (role, query)


# --- global ids and private types -------------------------------------------------------


async def test_global_ids_of_every_node_type_match_node_py(db: Any) -> None:
    """PostgreSQL's base64 breaks lines at 76 characters: `Type:uuid` of a type name
    of 22 characters or more (`NotificationPreference`) once came out with a newline."""
    import uuid

    from sqlalchemy import text

    from okrgraph.schema.compiled.registry import gid
    from okrgraph.schema.node import NODE_KINDS, to_global_id

    names = [*NODE_KINDS, "A" * 21, "B" * 22, "C" * 60, "Ünïcödé" * 9]
    assert any(len(name) >= 22 for name in NODE_KINDS)
    for name in names:
        id = uuid.uuid4()
        sql = gid(name).format(t="v")
        found = await db.scalar(
            text(f"SELECT {sql} FROM (SELECT CAST(:id AS uuid) AS id) v"), {"id": id}
        )
        assert found == to_global_id(name, id), name


def test_private_types_are_never_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """A walk of the schema: only the allow-list's public types compile; the types
    with per-row visibility stay out even when someone lists them in the registry."""
    import uuid

    from graphql import GraphQLObjectType, parse

    from okrgraph.schema import schema
    from okrgraph.schema.compiled.registry import PUBLIC_TYPES, TypeSpec, gid
    from okrgraph.schema.node import NODE_KINDS, to_global_id

    private = {name for name, kind in NODE_KINDS.items() if kind.visible is not None}
    expected = {"ApiToken", "Notification", "NotificationPreference", "WebhookEndpoint"}
    assert private >= expected | {"WebhookDelivery"}
    assert set(TYPES) == PUBLIC_TYPES
    assert not private & PUBLIC_TYPES
    for spec in TYPES.values():
        assert {r.type_name for r in spec.relations.values()} <= PUBLIC_TYPES

    def node_query(type_name: str) -> str:
        id = to_global_id(type_name, uuid.uuid4())
        return f'{{ node(id: "{id}") {{ ... on {type_name} {{ id __typename }} }} }}'

    types = schema._schema.type_map.values()
    objects = [t.name for t in types if isinstance(t, GraphQLObjectType) and t.name[:2] != "__"]
    for type_name in objects:
        if type_name in PUBLIC_TYPES:
            compiler_module.compile_query(parse(node_query(type_name)), None, {})
            assert compiler_module.compilable(type_name) is TYPES[type_name]
        else:
            with pytest.raises(NotCompilable):
                compiler_module.compilable(type_name)
            with pytest.raises(NotCompilable):
                compiler_module.compile_query(parse(node_query(type_name)), None, {})

    for name in private:  # listed by mistake, in the registry and the allow-list alike
        table = NODE_KINDS[name].model.__tablename__
        monkeypatch.setitem(TYPES, name, TypeSpec(table, {"id": gid(name)}))
        monkeypatch.setattr(compiler_module, "PUBLIC_TYPES", PUBLIC_TYPES | {name})
        with pytest.raises(NotCompilable):
            compiler_module.compile_query(parse(node_query(name)), None, {})
