"""Every connection of the schema follows the Relay Cursor Connections spec
(https://relay.dev/graphql/connections.htm), so relay-compiler accepts `@connection`
on any of them; and the page info a request gets agrees with its edges.

The schema is walked, so a connection added later is checked without touching
this file. tests/e2e/test_relay_compiler.py runs the real relay-compiler.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import graphql
import httpx
from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)

from okrgraph.domain.seed import SeedResult
from okrgraph.schema.export import sdl
from tests.gql import data

SCHEMA = graphql.build_schema(sdl())


def unwrap(t: Any) -> GraphQLNamedType:
    named: GraphQLNamedType = graphql.get_named_type(t)
    return named


def is_non_null_of(t: object, name: str) -> bool:
    return isinstance(t, GraphQLNonNull) and getattr(t.of_type, "name", None) == name


def is_cursor_type(t: object) -> bool:
    """The spec: String, a custom scalar, or a non-null wrapper of one."""
    inner = t.of_type if isinstance(t, GraphQLNonNull) else t
    return isinstance(inner, GraphQLScalarType) and inner.name not in {"Int", "Float", "Boolean"}


def connection_fields() -> Iterator[tuple[str, GraphQLField]]:
    for type_ in SCHEMA.type_map.values():
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__"):
            for name, field in type_.fields.items():
                if unwrap(field.type).name.endswith("Connection"):
                    yield f"{type_.name}.{name}", field


def connection_types() -> list[GraphQLObjectType]:
    return [
        t
        for name, t in SCHEMA.type_map.items()
        if name.endswith("Connection") and isinstance(t, GraphQLObjectType)
    ]


def test_the_schema_has_connections() -> None:
    assert len(connection_types()) >= 15
    assert len(list(connection_fields())) >= 25


def test_page_info_is_complete() -> None:
    page_info = SCHEMA.get_type("PageInfo")
    assert isinstance(page_info, GraphQLObjectType)
    fields = page_info.fields
    for name in ("hasNextPage", "hasPreviousPage"):
        assert name in fields, f"PageInfo.{name} is missing"
        assert is_non_null_of(fields[name].type, "Boolean"), f"PageInfo.{name} must be Boolean!"
    for name in ("startCursor", "endCursor"):
        assert name in fields, f"PageInfo.{name} is missing"
        assert is_cursor_type(fields[name].type), f"PageInfo.{name} must be an opaque string"


def test_every_connection_type_has_edges_and_page_info() -> None:
    problems = []
    for conn in connection_types():
        fields = conn.fields
        if not is_non_null_of(fields.get("pageInfo") and fields["pageInfo"].type, "PageInfo"):
            problems.append(f"{conn.name}.pageInfo must be PageInfo!")
        edges = fields.get("edges")
        if edges is None:
            problems.append(f"{conn.name} has no edges")
            continue
        inner = edges.type.of_type if isinstance(edges.type, GraphQLNonNull) else edges.type
        if not isinstance(inner, GraphQLList):
            problems.append(f"{conn.name}.edges must be a list")
            continue
        edge = unwrap(inner)
        if not isinstance(edge, GraphQLObjectType):
            problems.append(f"{conn.name}.edges must list an object type")
            continue
        if "cursor" not in edge.fields or not is_cursor_type(edge.fields["cursor"].type):
            problems.append(f"{edge.name}.cursor must be a String (or custom scalar)")
        node = edge.fields.get("node")
        if node is None:
            problems.append(f"{edge.name} has no node")
        elif isinstance(
            node.type.of_type if isinstance(node.type, GraphQLNonNull) else node.type, GraphQLList
        ):
            problems.append(f"{edge.name}.node must not be a list")
        elif "nodes" in fields and unwrap(fields["nodes"].type) != unwrap(node.type):
            problems.append(f"{conn.name}.nodes and {edge.name}.node differ in type")
    assert problems == []


def test_every_connection_field_pages_forward() -> None:
    """`first: Int` and `after` of the edge's cursor type on every field returning a
    connection (the spec's forward pagination arguments)."""
    problems = []
    for where, field in connection_fields():
        conn = unwrap(field.type)
        assert isinstance(conn, GraphQLObjectType)
        edge = unwrap(conn.fields["edges"].type)
        assert isinstance(edge, GraphQLObjectType)
        first, after = field.args.get("first"), field.args.get("after")
        if first is None or unwrap(first.type).name != "Int":
            problems.append(f"{where}: no `first: Int`")
        if after is None or unwrap(after.type) != unwrap(edge.fields["cursor"].type):
            problems.append(f"{where}: no `after` of the cursor's type")
        if not isinstance(field.type, GraphQLNonNull):
            problems.append(f"{where}: should be non-null")
    assert problems == []


def test_only_connections_are_named_connection() -> None:
    """The naming rule the other way round: a type with edges and pageInfo is a
    *Connection, and every *Edge is listed by a connection."""
    edges_listed = {unwrap(t.fields["edges"].type).name for t in connection_types()}
    for name, t in SCHEMA.type_map.items():
        if isinstance(t, GraphQLObjectType) and {"edges", "pageInfo"} <= set(t.fields):
            assert name.endswith("Connection"), name
        if name.endswith("Edge"):
            assert name in edges_listed, name


PAGES = """query($after: String) {
  organization {
    teams(all: true, first: 2, after: $after) {
      edges { cursor node { id } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}"""


async def test_page_info_agrees_with_the_edges(client: httpx.AsyncClient, demo: SeedResult) -> None:
    after, seen, pages = None, [], 0
    while True:
        teams = (await data(client, demo.admin_token, PAGES, after=after))["organization"]["teams"]
        info, edges = teams["pageInfo"], teams["edges"]
        pages += 1
        assert edges, "a page before the last is never empty"
        assert info["startCursor"] == edges[0]["cursor"]
        assert info["endCursor"] == edges[-1]["cursor"]
        assert info["hasPreviousPage"] is False  # forward only, as the spec allows
        seen += [e["node"]["id"] for e in edges]
        after = info["endCursor"]
        if not info["hasNextPage"]:
            break
    assert pages >= 2
    assert len(seen) == len(set(seen)) == 4  # the demo's four teams, each once
    empty = (await data(client, demo.admin_token, PAGES, after=after))["organization"]["teams"]
    assert empty["edges"] == []
    assert empty["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }
