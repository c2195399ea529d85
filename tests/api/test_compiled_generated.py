"""Generated queries: the compiled read path answers byte for byte what normal
execution answers, or declines.

hypothesis-graphql writes queries over the part of the schema the compiler knows
(the registry's fields and arguments, cut out of the real schema), so that most
of them compile; then arguments are moved into variables, with or without
defaults, given, left out, null or of the wrong type, fields get aliases, and a
caller of every role sends it. Both bodies (status and bytes) must be equal.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from hypothesis_graphql import strategies as gql_st

from okrgraph.domain.seed import SeedResult
from okrgraph.schema import schema
from okrgraph.schema.compiled.compiler import ROOT_CONNECTIONS
from okrgraph.schema.compiled.registry import TYPES
from okrgraph.schema.node import to_global_id
from tests.api.roles import ROLES, cast
from tests.api.test_compiled import IDS, both_bodies, ids_by_type
from tests.gql import data

GENERATED = settings(
    max_examples=120,
    deadline=None,
    database=None,  # nothing written into the shared working tree
    phases=[Phase.explicit, Phase.generate],  # a failure prints its document unshrunk
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # reads only: the state stays the same
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def registry_schema() -> graphql.GraphQLSchema:
    """The real schema cut down to what the registry lists: its types with their
    leaves and relations (only the arguments the compiler handles), connections
    with `nodes`, and the root fields the compiler answers. Every document valid
    here is valid against the real schema."""
    real = graphql.parse(graphql.print_schema(schema._schema))
    keep: dict[str, dict[str, frozenset[str]]] = {}  # type -> field -> arguments
    for name, spec in TYPES.items():
        keep[name] = {leaf: frozenset() for leaf in spec.leaves}
        for field, relation in spec.relations.items():
            keep[name][field] = relation.args
            if relation.shape == "connection":
                keep[f"{relation.type_name}Connection"] = {"nodes": frozenset()}
    keep["Query"] = {"organization": frozenset(), "node": frozenset({"id"})}
    for field, (type_name, _) in ROOT_CONNECTIONS.items():
        keep["Query"][field] = frozenset({"first"})
        keep[f"{type_name}Connection"] = {"nodes": frozenset()}
    definitions: list[Any] = []
    for d in real.definitions:
        if isinstance(d, graphql.ObjectTypeDefinitionNode) and d.name.value in keep:
            wanted = keep[d.name.value]
            fields = tuple(
                replace(f, arguments=tuple(
                    a for a in f.arguments or () if a.name.value in wanted[f.name.value]
                ))
                for f in d.fields or ()
                if f.name.value in wanted
            )  # fmt: skip
            definitions.append(replace(d, fields=fields))
        elif isinstance(d, graphql.InterfaceTypeDefinitionNode) and d.name.value == "Node":
            definitions.append(d)
        elif isinstance(d, graphql.EnumTypeDefinitionNode | graphql.ScalarTypeDefinitionNode):
            definitions.append(d)
        elif isinstance(d, graphql.SchemaDefinitionNode):
            definitions.append(replace(d, operation_types=tuple(
                o for o in d.operation_types if o.operation is graphql.OperationType.QUERY
            )))  # fmt: skip
    return graphql.build_ast_schema(graphql.DocumentNode(definitions=tuple(definitions)))


REGISTRY_SCHEMA = registry_schema()
ARGUMENT_TYPES = {  # (parent, field, argument) -> its type in the real schema
    (t.name, f, a): arg.type
    for t in REGISTRY_SCHEMA.type_map.values()
    if isinstance(t, graphql.GraphQLObjectType)
    for f, field in t.fields.items()
    for a, arg in field.args.items()
}


@dataclass
class World:
    client: httpx.AsyncClient
    tokens: dict[str, str]
    ids: list[str]  # ids of rows of every registry type
    tally: dict[str, int]


@pytest.fixture
async def world(client: httpx.AsyncClient, demo: SeedResult, db: Any) -> Any:
    callers = await cast(db, demo.org_id, demo.admin_token or "")
    found = ids_by_type(await data(client, demo.admin_token or "", IDS))
    ids = sorted({i for type_ids in found.values() for i in type_ids[:4]})
    tally = {"compiled": 0, "declined": 0}
    yield World(client, callers.tokens, ids, tally)
    # the generated queries must mostly reach the compiled path, or they prove little
    assert tally["compiled"] >= tally["declined"], tally
    assert tally["compiled"] >= tally["declined"], tally  # noqa: T201


def id_values(w: World) -> st.SearchStrategy[Any]:
    """Mostly ids of our rows; sometimes of a private type, unknown or garbage."""
    others = st.sampled_from(
        [
            to_global_id("ApiToken", uuid.uuid4()),
            to_global_id("NotificationPreference", uuid.uuid4()),
            to_global_id("Team", uuid.uuid4()),
            "",
            "bm90IGFuIGlk",
            "💥",
        ]
    )
    return st.integers(0, 9).flatmap(lambda k: st.sampled_from(w.ids) if k < 8 else others)


def default_of(argument: str) -> bool:
    """Whether the argument has a schema default where it is non-null (`all`,
    `Objective.kpis(first:)`); `node(id:)` has none."""
    return argument != "id"


Draw = Callable[[st.SearchStrategy[Any]], Any]
PAGE = st.one_of(st.integers(0, 4), st.integers(0, 4), st.sampled_from([-1, 100, 101, 2**31]))
WRONG = st.sampled_from([True, "3", 2.5, 2.0, -1, 101, None, [1], {"a": 1}])


@dataclass
class Variables:
    """Arguments moved into variables: definitions and the values sent."""

    definitions: list[graphql.VariableDefinitionNode]
    values: dict[str, Any]


def literal(value: bool | int | str) -> graphql.ConstValueNode:
    """The value written in the document (an Int out of range too: the executor's error)."""
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    return graphql.StringValueNode(value=value)


def rewrite(selection: Any, parent: str, draw: Draw, w: World, into: Variables) -> Any:
    """A generated selection with its arguments tamed or made variables, and aliases."""
    if not isinstance(selection, graphql.FieldNode):
        inner = selection.type_condition.name.value if selection.type_condition else parent
        inner_set = rewrite_set(selection.selection_set, inner, draw, w, into)
        return replace(selection, selection_set=inner_set)
    name = selection.name.value
    arguments = []
    for arg in selection.arguments or ():
        type_ = ARGUMENT_TYPES[(parent, name, arg.name.value)]
        arguments.append(replace(arg, value=argument(arg.name.value, type_, draw, w, into)))
    alias = selection.alias
    if draw(st.integers(0, 5)) == 5:
        alias = graphql.NameNode(value=f"a{len(into.values) + len(into.definitions)}{name}")
    parent_type = REGISTRY_SCHEMA.get_type(parent)
    assert isinstance(parent_type, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType)
    child = graphql.get_named_type(parent_type.fields[name].type)
    selection_set = selection.selection_set
    if selection_set is not None:
        selection_set = rewrite_set(selection_set, child.name, draw, w, into)
    return replace(selection, alias=alias, arguments=tuple(arguments), selection_set=selection_set)


def rewrite_set(
    selection_set: graphql.SelectionSetNode, parent: str, draw: Draw, w: World, into: Variables
) -> graphql.SelectionSetNode:
    """Each selection rewritten; some wrapped in an inline fragment on the type
    itself, an interface or union that holds it, or none (valid in the real schema)."""
    selections = []
    for s in selection_set.selections:
        s = rewrite(s, parent, draw, w, into)
        conditions = FRAGMENT_CONDITIONS.get(parent)
        if conditions and draw(st.integers(0, 3)) == 3:
            condition = draw(st.sampled_from(conditions))
            if condition not in ("", parent):  # an abstract type: the type's fields inside
                s = fragment(parent, s)
            s = fragment(condition, s)
        selections.append(s)
    return replace(selection_set, selections=tuple(selections))


def fragment(condition: str, selection: Any) -> graphql.InlineFragmentNode:
    named = graphql.NamedTypeNode(name=graphql.NameNode(value=condition))
    return graphql.InlineFragmentNode(
        type_condition=named if condition else None,
        selection_set=graphql.SelectionSetNode(selections=(selection,)),
    )


# Where a generated selection may be wrapped in a fragment: the type, "" (no
# condition), and the abstract types of the real schema that hold it.
FRAGMENT_CONDITIONS: dict[str, list[str]] = {
    name: [name, "", "Node", *(["ProgressSubject"] if name in ("KeyResult", "Objective") else [])]
    for name in TYPES
}


def argument(
    name: str, type_: graphql.GraphQLInputType, draw: Draw, w: World, into: Variables
) -> graphql.ValueNode:
    """The argument's value: a tame literal, or a variable (declared with the
    argument's type or a nullable one, with or without a default, and given a
    value, left out, null, or a wrong one)."""
    plain = {"first": PAGE, "all": st.booleans(), "id": id_values(w)}[name]
    if draw(st.booleans()):
        return literal(draw(plain))
    variable = f"v{len(into.definitions)}"
    declared: graphql.GraphQLInputType = type_
    # a nullable variable for a non-null argument: valid where the argument has a
    # default, a validation error otherwise (now and then, to check that too)
    # (Hypothesis leans to small draws: the common choice is 0)
    if isinstance(type_, graphql.GraphQLNonNull) and draw(st.integers(0, 9)) >= (
        5 if default_of(name) else 9
    ):
        declared = type_.of_type
    default: graphql.ConstValueNode | None = None
    if draw(st.booleans()):
        default = literal(draw(plain))
    into.definitions.append(
        graphql.VariableDefinitionNode(
            variable=graphql.VariableNode(name=graphql.NameNode(value=variable)),
            type=graphql.parse_type(str(declared)),
            default_value=default,
        )
    )
    sent = draw(st.sampled_from(["value", "value", "left out", "null", "wrong"]))
    if sent == "value":
        into.values[variable] = draw(plain)
    elif sent == "null":
        into.values[variable] = None
    elif sent == "wrong":
        into.values[variable] = draw(WRONG)
    return graphql.VariableNode(name=graphql.NameNode(value=variable))


@GENERATED
@given(data=st.data())
async def test_generated_queries_answer_alike(
    world: World, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    custom = {"ID": id_values(world).map(nodes.String)}
    document = data.draw(
        gql_st.queries(REGISTRY_SCHEMA, custom_scalars=custom, print_ast=lambda d: d)
    )
    (operation,) = document.definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    into = Variables([], {})
    selection_set = rewrite_set(operation.selection_set, "Query", data.draw, world, into)
    operation = replace(
        operation, selection_set=selection_set, variable_definitions=tuple(into.definitions)
    )
    query = graphql.print_ast(graphql.DocumentNode(definitions=(operation,)))
    role = data.draw(st.sampled_from(ROLES))
    compiled, executed, ran = await both_bodies(
        world.client, world.tokens[role], query, monkeypatch, into.values
    )
    assert compiled == executed, (role, query, into.values)
    world.tally["compiled" if ran else "declined"] += 1
