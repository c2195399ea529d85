"""Forged cursors on every connection of the schema: a typed BAD_USER_INPUT, never
INTERNAL (issue 12, finding 10).

The connections are found by walking the schema (every field with an `after`
argument), so a new connection is covered without touching this file. Root
fields are asked directly, the others through `node(id:)` on a row of the world
of tests/api/security/world.py.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import graphql
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.schema import schema
from okrgraph.schema.pagination import decode_cursor, encode_cursor
from tests.api.security.world import NODE_ROWS, build_world
from tests.gql import gql

ID = str(uuid.uuid4())


def b64(raw: str | bytes) -> str:
    return base64.urlsafe_b64encode(raw.encode() if isinstance(raw, str) else raw).decode()


def pair(value: str) -> str:
    return b64(f"[{value},{json.dumps(ID)}]")


FORGED = {
    "the issue's [1,123]": "WzEsMTIzXQ==",
    "null": pair("null"),
    "a bool": pair("true"),
    "a list": pair("[1]"),
    "an object that is not a time": pair('{"a":1}'),
    "a time that is not a string": pair('{"t":5}'),
    "a time with more keys": pair('{"t":"2026-01-01","x":1}'),
    "an impossible date": pair('{"t":"2026-13-01"}'),
    "a time without a zone": pair('{"t":"2026-01-01T00:00:00"}'),
    "infinity": pair("1e999"),
    "NaN": pair("NaN"),
    "an int past 64 bits": pair(str(10**30)),
    "text with NUL": pair(json.dumps("a\u0000b")),
    "a lone surrogate": pair('"\\ud800"'),
    "one item": b64(f"[{json.dumps(ID)}]"),
    "three items": b64(f'["a",{json.dumps(ID)},1]'),
    "an object": b64('{"value":1,"id":1}'),
    "an id that is no uuid": b64('["a","not-a-uuid"]'),
    "an id that is a number": b64('["a",123]'),
    "not JSON": b64("[1,"),
    "not UTF-8": b64(b"\xff\xfe[1]"),
    "not base64": "!!!not base64!!!",
    "bad padding": "WzEsMTIzXQ",
    "not ASCII": "Wz\u00e9",
    "huge": "A" * 100_000,
    "deeply nested": b64("[" * 5_000 + "]" * 5_000),
}


def connection_fields() -> list[tuple[str, str]]:
    """(type, field) of every field that pages with `after`."""
    found = []
    for name, type_ in schema._schema.type_map.items():
        if name.startswith("__") or not isinstance(type_, graphql.GraphQLObjectType):
            continue
        found += [(name, field) for field, f in type_.fields.items() if "after" in f.args]
    return sorted(found)


def document(type_name: str, field: str) -> str:
    page = f"{field}(first: 1, after: $after) {{ nodes {{ __typename }} }}"
    if type_name == "Query":
        return f"query($after: String) {{ {page} }}"
    return (
        f"query($after: String, $id: ID!) {{ node(id: $id) {{ ... on {type_name} {{ {page} }} }} }}"
    )


def test_the_walk_finds_the_connections() -> None:
    fields = connection_fields()
    assert ("Query", "objectives") in fields
    assert ("Query", "apiTokens") in fields
    assert ("Team", "objectives") in fields
    for type_name, field in fields:  # each one must be reachable here
        assert type_name == "Query" or type_name in NODE_ROWS, (type_name, field)


def test_a_cursor_round_trips() -> None:
    for value in (datetime(2026, 5, 1, 12, tzinfo=UTC), date(2026, 5, 1), "Ops", 3, 2.5):
        assert decode_cursor(encode_cursor(value, uuid.UUID(ID))) == (value, uuid.UUID(ID))


async def test_forged_cursors_are_bad_user_input_on_every_connection(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    w = await build_world(db)
    problems = []
    for type_name, field in connection_fields():
        variables: dict[str, Any] = {}
        if type_name != "Query":
            variables["id"] = w.gid(NODE_ROWS[type_name])
        query = document(type_name, field)
        good = await gql(client, w.tokens["admin"], query, after=None, **variables)
        assert "errors" not in good, (type_name, field, good)
        for name, cursor in FORGED.items():
            body = await gql(client, w.tokens["admin"], query, after=cursor, **variables)
            codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
            if codes != ["BAD_USER_INPUT"]:
                problems.append(f"{type_name}.{field} with {name}: {body}")
    assert problems == [], "\n".join(problems)
