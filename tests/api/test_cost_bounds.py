"""The cost limit tells the truth (issue 12, findings 4-6): every list is bounded
by what it can really return, the limits see the variables as the executor
coerces them, and introspection counts its real size."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLObjectType,
    get_nullable_type,
    parse,
)
from hypothesis import given
from hypothesis import strategies as st

from okrgraph.domain.seed import SeedResult
from okrgraph.schema import schema
from okrgraph.schema.limits import (
    DEFAULT_PAGE_SIZE,
    LIST_BOUNDS,
    MAX_COST,
    MAX_PAGE_SIZE,
    is_connection_list,
    query_cost,
)
from tests.api.test_limits import codes, post

GRAPHQL_SCHEMA = schema._schema


def unbounded_lists() -> list[str]:
    """`Type.field` of every list field that is neither a connection's page, nor
    takes `first` (at most MAX_PAGE_SIZE), nor has a bound in LIST_BOUNDS."""
    found = []
    for type_ in GRAPHQL_SCHEMA.type_map.values():
        if type_.name.startswith("__"):
            continue
        if not isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            continue
        for name, field in type_.fields.items():
            if not isinstance(get_nullable_type(field.type), GraphQLList):
                continue
            if is_connection_list(type_, name) or (type_.name, name) in LIST_BOUNDS:
                continue
            first = field.args.get("first")
            if first is not None and first.default_value in (None, DEFAULT_PAGE_SIZE):
                continue
            found.append(f"{type_.name}.{name}")
    return found


def test_every_list_field_is_bounded() -> None:
    assert unbounded_lists() == []
    # and the connections themselves take `first`, which page_args caps
    for type_ in GRAPHQL_SCHEMA.type_map.values():
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__"):
            for name, field in type_.fields.items():
                returned = get_nullable_type(field.type)
                if getattr(returned, "name", "").endswith("Connection"):
                    assert "first" in field.args, f"{type_.name}.{name}"


ATTACK = """{ objectives(first: 1) { nodes { descendants { id ancestors { id descendants {
  id ancestors { id } } } } } } }"""
ATTACK_NOW = """{ objectives(first: 1) { nodes { descendants { nodes { id ancestors { nodes {
  id descendants { nodes { id ancestors { nodes { id } } } } } } } } } } }"""


def test_the_attack_query_costs_what_it_can_return() -> None:
    """Issue 12's 20-second query: lists of objectives are pages now, and each
    page counts its size (20 by default) times what it selects per item."""

    def page(selection: int) -> int:  # `list { nodes { id <selection> } }`
        return 1 + DEFAULT_PAGE_SIZE * (1 + 1 + selection)

    innermost = 1 + DEFAULT_PAGE_SIZE * (1 + 1)  # ancestors { nodes { id } }
    expected = 1 + 1 * (1 + page(page(page(innermost))))
    assert query_cost(GRAPHQL_SCHEMA, parse(ATTACK_NOW)) == expected == 345_263 > MAX_COST


async def test_the_attack_query_is_refused_before_it_runs(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    body = (await post(client, demo.admin_token, ATTACK)).json()
    assert "data" not in body
    assert codes(body) == {"GRAPHQL_VALIDATION_FAILED"}  # `descendants` is a connection
    body = (await post(client, demo.admin_token, ATTACK_NOW)).json()
    assert "data" not in body
    assert codes(body) == {"QUERY_TOO_COMPLEX"}


async def test_descendants_and_ancestors_page_by_distance(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    query = """query($after: String) { objectives(first: 100) { nodes { id
      descendants(first: 1, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } }
      everything: descendants(first: 100) { nodes { id } }
      ancestors(first: 100) { nodes { id } } } } }"""
    response = await post(client, demo.admin_token, query)
    objectives = response.json()["data"]["objectives"]["nodes"]
    root = max(objectives, key=lambda o: len(o["everything"]["nodes"]))
    everything = [n["id"] for n in root["everything"]["nodes"]]
    assert len(everything) >= 2  # the demo graph has a root with several below it
    paged, after = [], None
    while True:
        body = (await post(client, demo.admin_token, query, {"after": after})).json()
        mine = next(o for o in body["data"]["objectives"]["nodes"] if o["id"] == root["id"])
        paged += [n["id"] for n in mine["descendants"]["nodes"]]
        info = mine["descendants"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert paged == everything
    below = next(o for o in objectives if o["id"] == everything[0])
    assert root["id"] in [n["id"] for n in below["ancestors"]["nodes"]]


PAGED = "objectives(first: {n}) {{ nodes {{ keyResults(first: {n}) {{ nodes {{ title }} }} }} }}"


def encodings(n: int) -> list[tuple[str, dict[str, Any] | None]]:
    """The same page size written every way the executor accepts."""
    body = "objectives(first: $n) { nodes { keyResults(first: $n) { nodes { title } } } }"
    return [
        ("{ " + PAGED.format(n=n) + " }", None),
        ("query($n: Int) { " + body + " }", {"n": n}),
        ("query($n: Int) { " + body + " }", {"n": float(n)}),
        ("query($n: Int!) { " + body + " }", {"n": float(n)}),
        (f"query($n: Int = {n}) {{ " + body + " }", {}),
        (f"query($n: Int = {n}) {{ " + body + " }", None),
        ("query($n: Int = 3) { " + body + " }", {"n": float(n)}),
    ]


@given(st.integers(min_value=0, max_value=3 * MAX_PAGE_SIZE))
def test_the_cost_sees_variables_as_the_executor_coerces_them(n: int) -> None:
    literal, _ = encodings(n)[0]
    expected = query_cost(GRAPHQL_SCHEMA, parse(literal))
    for query, variables in encodings(n):
        assert query_cost(GRAPHQL_SCHEMA, parse(query), variables) == expected, (query, variables)


@pytest.mark.parametrize("n", [100, 100.0])
async def test_a_float_variable_is_refused_like_the_int(
    client: httpx.AsyncClient, demo: SeedResult, n: float
) -> None:
    query = """query($n: Int) { objectives(first: $n) { nodes { keyResults(first: $n) { nodes {
      checkIns(first: $n) { nodes { value } } } } } } }"""
    body = (await post(client, demo.admin_token, query, {"n": n})).json()
    assert "data" not in body
    assert codes(body) == {"QUERY_TOO_COMPLEX"}
    assert "2,020,201 fields" in body["errors"][0]["message"]


async def test_variables_that_do_not_coerce_are_the_executors_error(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    query = "query($n: Int) { objectives(first: $n) { nodes { title } } }"
    body = (await post(client, demo.admin_token, query, {"n": 1.5})).json()
    assert "data" not in body
    assert "Int cannot represent non-integer value: 1.5" in body["errors"][0]["message"]


def introspection(aliases: int) -> str:
    walk = "types { name fields { name args { name type { name kind ofType { name } } } } }"
    return "{ " + " ".join(f"a{i}: __schema {{ {walk} }}" for i in range(aliases)) + " }"


def test_introspection_counts_the_schemas_real_size() -> None:
    """A walk of the whole schema counts every type, field and argument it returns
    (not 1 per list, as before)."""
    types = list(GRAPHQL_SCHEMA.type_map.values())
    fields = [
        f
        for t in types
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)
        for f in t.fields.values()
    ]
    args = sum(len(f.args) for f in fields)
    one = "{ __schema { types { name fields { name args { name } } } } }"
    # __schema, types, then per type: name, fields; per field: name, args; per arg: name
    real = 1 + 1 + len(types) * 2 + len(fields) * 2 + args
    assert abs(query_cost(GRAPHQL_SCHEMA, parse(one)) - real) <= 1
    assert query_cost(GRAPHQL_SCHEMA, parse(introspection(20))) > 20 * len(fields)
