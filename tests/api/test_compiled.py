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
    compiled = await data(client, token, query, **variables)
    assert calls == ["compiled"], "the query was expected to compile"

    def refuse(*args: Any) -> Any:
        raise NotCompilable("test: execute normally")

    monkeypatch.setattr(extension, "compile_query", refuse)
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
