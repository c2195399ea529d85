"""Issue 12, findings 2, 3, 13: every String, Float, Date and DateTime input is bounded.

The schema is walked, not listed by hand: a new input field without a declared
bound (schema/bounds.py) fails here. Every String field of every mutation's
input is sent one character too long over HTTP and must come back as a
ValidationError naming its input path, with nothing written; every number and
date field is sent values at and around its bounds (hypothesis), and those past
them are refused the same way.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)
from graphql.pyutils import Undefined as _UNDEFINED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.seed import SeedResult
from okrgraph.schema import schema
from okrgraph.schema.bounds import declared
from tests.gql import gql

BOUNDED = {"String", "Float", "Date", "DateTime"}
GQL = schema._schema  # the graphql-core schema Strawberry built


def _named(t: Any) -> Any:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


def input_fields() -> list[tuple[str, str, str, Any]]:
    """(input type, field, scalar, Strawberry field) of every bounded scalar input field."""
    out = []
    for name, gtype in sorted(GQL.type_map.items()):
        if not isinstance(gtype, GraphQLInputObjectType) or name.startswith("__"):
            continue
        definition = schema.get_type_by_name(name)
        fields = {f.graphql_name or _camel(f.python_name): f for f in definition.fields}  # type: ignore[union-attr]
        for field_name, field in gtype.fields.items():
            scalar = _named(field.type)
            if isinstance(scalar, GraphQLScalarType) and scalar.name in BOUNDED:
                out.append((name, field_name, scalar.name, fields[field_name]))
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


RULES = {
    "number": validation.NUMBER_RULE,
    "weight": validation.WEIGHT_RULE,
    "day": validation.DATE_RULE,
    "moment": validation.DATETIME_RULE,
}


@pytest.mark.parametrize(("type_name", "field_name", "scalar", "field"), input_fields())
def test_every_input_field_declares_its_bound(
    type_name: str, field_name: str, scalar: str, field: Any
) -> None:
    bound = declared(field)
    assert bound is not None, f"{type_name}.{field_name} declares no bound (schema/bounds.py)"
    kinds = {"String": {"text"}, "Float": {"number", "weight"}, "Date": {"day"}}
    assert bound[0] in kinds.get(scalar, {"moment"})
    description = GQL.type_map[type_name].fields[field_name].description or ""  # type: ignore[attr-defined]
    rule = f"{bound[1]:,} characters" if bound[0] == "text" else RULES[bound[0]]
    assert rule in description, f"{type_name}.{field_name}: the description states the bound"


def dummy(t: Any) -> Any:
    """A value of GraphQL input type `t` (required fields only): the bounds are checked
    before anything else, so it need not name anything that exists."""
    if isinstance(t, GraphQLNonNull):
        return dummy(t.of_type)
    if isinstance(t, GraphQLList):
        return [dummy(t.of_type)]
    if isinstance(t, GraphQLEnumType):
        return next(iter(t.values))
    if isinstance(t, GraphQLInputObjectType):
        return {
            name: dummy(f.type)
            for name, f in t.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is _UNDEFINED
        }
    return {
        "ID": "x",
        "String": "x",
        "Float": 1.0,
        "Int": 1,
        "Boolean": False,
        "Date": "2026-10-01",
        "DateTime": "2026-10-01T00:00:00+00:00",
    }[t.name]


def mutations_with_input() -> list[tuple[str, GraphQLInputObjectType]]:
    out = []
    for name, field in GQL.mutation_type.fields.items():  # type: ignore[union-attr]
        arg = field.args.get("input")
        if arg is not None:
            out.append((name, _named(arg.type)))
    return sorted(out, key=lambda m: m[0])


def paths(t: GraphQLInputObjectType, prefix: str = "input") -> list[tuple[list[str], str]]:
    """(path of keys, scalar) of every bounded scalar reachable in input type `t`."""
    out: list[tuple[list[str], str]] = []
    for name, f in t.fields.items():
        inner = _named(f.type)
        is_list = isinstance(
            f.type.of_type if isinstance(f.type, GraphQLNonNull) else f.type, GraphQLList
        )
        if isinstance(inner, GraphQLInputObjectType):
            for sub, scalar in paths(inner):
                out.append(([name, *(["0"] if is_list else []), *sub], scalar))
        elif isinstance(inner, GraphQLScalarType) and inner.name in BOUNDED:
            out.append(([name, *(["0"] if is_list else [])], inner.name))
    return out


def with_value(
    base: dict[str, Any], t: GraphQLInputObjectType, path: list[str], value: Any
) -> dict[str, Any]:
    """`base` with `value` at `path` (lists and nested inputs built as needed)."""
    out = dict(base)
    key, rest = path[0], path[1:]
    field_type = t.fields[key].type
    inner = _named(field_type)
    if rest and rest[0] == "0":
        rest = rest[1:]
        item = value if not rest else with_value(dummy(inner), inner, rest, value)
        out[key] = [item]
    elif rest:
        out[key] = with_value(out.get(key) or dummy(inner), inner, rest, value)
    else:
        out[key] = value
    return out


CASES = [
    (mutation, input_type, p, scalar)
    for mutation, input_type in mutations_with_input()
    for p, scalar in paths(input_type)
]


def _bound_at(input_type: GraphQLInputObjectType, path: list[str]) -> tuple[Any, ...]:
    """The bound declared on the field `path` ends at (its list index dropped)."""
    keys = [k for k in path if k != "0"]
    t: Any = input_type
    for key in keys[:-1]:
        t = _named(t.fields[key].type)
    definition: Any = schema.get_type_by_name(t.name)
    field = next(
        f for f in definition.fields if (f.graphql_name or _camel(f.python_name)) == keys[-1]
    )
    bound = declared(field)
    assert bound is not None
    return bound


async def written(db: AsyncSession) -> int:
    return int(
        await db.scalar(
            text(
                "SELECT (SELECT count(*) FROM audit_entries) + (SELECT count(*) FROM outbox_events)"
            )
        )
        or 0
    )


def request(mutation: str, input_type: GraphQLInputObjectType) -> str:
    return (
        f"mutation($input: {input_type.name}!) {{ {mutation}(input: $input) {{ __typename "
        "... on ValidationError { field message code } } }"
    )


STRING_CASES = [c for c in CASES if c[3] == "String"]


@pytest.mark.parametrize(
    ("mutation", "input_type", "path", "scalar"),
    STRING_CASES,
    ids=[f"{c[0]}:{'.'.join(c[2])}" for c in STRING_CASES],
)
async def test_an_over_long_string_is_refused_and_writes_nothing(
    client: httpx.AsyncClient,
    demo: SeedResult,
    db: AsyncSession,
    mutation: str,
    input_type: GraphQLInputObjectType,
    path: list[str],
    scalar: str,
) -> None:
    limit = _bound_at(input_type, path)[1]
    before = await written(db)
    value = with_value(dummy(input_type), input_type, path, "x" * (limit + 1))
    body = await gql(client, demo.admin_token, request(mutation, input_type), input=value)
    assert "errors" not in body, body
    result = body["data"][mutation]
    assert result["__typename"] == "ValidationError"
    assert result["field"] == "input." + ".".join(path)
    assert result["code"] == "TEXT_TOO_LONG"
    assert await written(db) == before


def _number_ok(kind: str, x: float) -> bool:
    if kind == "weight":
        return x == 0 or validation.MIN_WEIGHT <= x <= validation.MAX_WEIGHT
    return math.isfinite(x) and abs(x) <= validation.MAX_ABS_NUMBER


near = st.sampled_from([1.0, 1 + 1e-15, 1 - 1e-16])
numbers = st.one_of(
    st.builds(lambda m, s: s * validation.MAX_ABS_NUMBER * m, near, st.sampled_from([1, -1])),
    st.builds(lambda m: validation.MIN_WEIGHT * m, near),
    st.builds(lambda m: validation.MAX_WEIGHT * m, near),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-7, 1.7e308, -1.7e308, 1e308, -1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
)
days = st.one_of(
    st.sampled_from([validation.MIN_DATE, validation.MAX_DATE, date.min, date.max]),
    st.sampled_from(
        [validation.MIN_DATE - timedelta(days=1), validation.MAX_DATE + timedelta(days=1)]
    ),
    st.dates(),
)
moments = st.one_of(
    st.sampled_from(
        [
            validation.MIN_DATETIME,
            validation.MAX_DATETIME,
            validation.MIN_DATETIME - timedelta(microseconds=1),
            validation.MAX_DATETIME + timedelta(microseconds=1),
            datetime.max.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=UTC),
        ]
    ),
    st.datetimes(timezones=st.just(UTC)),
)
NUMERIC_CASES = [c for c in CASES if c[3] != "String"]


@pytest.mark.parametrize(
    ("mutation", "input_type", "path", "scalar"),
    NUMERIC_CASES,
    ids=[f"{c[0]}:{'.'.join(c[2])}" for c in NUMERIC_CASES],
)
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_numbers_and_dates_past_their_bounds_are_refused(
    client: httpx.AsyncClient,
    demo: SeedResult,
    db: AsyncSession,
    mutation: str,
    input_type: GraphQLInputObjectType,
    path: list[str],
    scalar: str,
    data: st.DataObject,
) -> None:
    kind = _bound_at(input_type, path)[0]
    strategy: st.SearchStrategy[Any] = {"Float": numbers, "Date": days}.get(scalar, moments)
    x: Any = data.draw(strategy)
    if scalar == "Float":
        ok, sent = _number_ok(kind, x), x
    elif scalar == "Date":
        ok, sent = validation.MIN_DATE <= x <= validation.MAX_DATE, x.isoformat()
    else:
        ok, sent = validation.MIN_DATETIME <= x <= validation.MAX_DATETIME, x.isoformat()
    before = await written(db)
    savepoint = await db.begin_nested()  # an accepted change is undone
    value = with_value(dummy(input_type), input_type, path, sent)
    body = await gql(client, demo.admin_token, request(mutation, input_type), input=value)
    await savepoint.rollback()
    assert "errors" not in body, body  # never INTERNAL, whatever the value
    result = body["data"][mutation]
    refused = (  # by its bound (another rule may refuse an in-bound value: a cycle's order)
        result["__typename"] == "ValidationError"
        and result["field"] == field_path(path)
        and result["message"] == RULES[kind]
        and result["code"] == "VALUE_OUT_OF_RANGE"
    )
    assert refused is not ok, (x, result)
    if refused:
        assert await written(db) == before


def field_path(path: list[str]) -> str:
    return "input." + ".".join(path)
