"""Limits on every GraphQL request, all checked before anything executes.

A refused request never reaches a resolver or the database: it gets a request
error (no `data`) whose `extensions.code` names the limit. The numbers live
here and are listed in README.md ("Limits") and docs/limits.md:

- `MAX_REQUEST_BYTES` (1 MB): an HTTP body (document + variables), checked by
  the view before parsing JSON -> 413 `REQUEST_TOO_LARGE`.
- `MAX_DOCUMENT_BYTES` (100 KB): the GraphQL document -> `DOCUMENT_TOO_LARGE`.
- `MAX_TOKENS` (2,000): lexer tokens, parsing stops there -> `TOO_MANY_TOKENS`.
  GraphiQL's introspection query is under 200.
- `MAX_DEPTH` (20): nested selection sets, counted like Strawberry's
  `QueryDepthLimiter` (introspection fields excluded). A Relay hop costs three
  levels (`objectives { edges { node {`), so organization -> teams -> people ->
  objectives -> key results -> check-ins is 16 and one level of nested teams
  fits too -> `QUERY_TOO_DEEP`.
- `MAX_ALIASES` (30): aliased fields in the document -> `TOO_MANY_ALIASES`.
- `MAX_PAGE_SIZE` (100) for `first`/`last`; `DEFAULT_PAGE_SIZE` (20) when a
  connection is asked without `first` -> `PAGE_SIZE_TOO_LARGE`.
- `MAX_COST` (250,000): the most fields the response could hold. Every
  selected field costs 1 per parent object; a connection multiplies the cost of
  its selection by its page size (`first`, else the argument's schema default,
  else `DEFAULT_PAGE_SIZE`), a plain list of objects by `DEFAULT_PAGE_SIZE`
  -> `QUERY_TOO_COMPLEX`. At the ~10 us per field measured for plain
  Strawberry resolvers, the worst case is about 2.5 s of CPU.
- Batching is off (a JSON array body is a 400), so one operation per request.
- Every SQL statement stops after `settings.statement_timeout_ms` (5,000 ms).
- Introspection stays on; graphql-core's `MaxIntrospectionDepthRule` (on by
  default) stops recursive introspection queries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    get_nullable_type,
    value_from_ast,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from strawberry.extensions import MaxTokensLimiter, SchemaExtension

MAX_REQUEST_BYTES = 1_000_000
MAX_DOCUMENT_BYTES = 100_000
MAX_TOKENS = 2_000
MAX_DEPTH = 20
MAX_ALIASES = 30
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_COST = 250_000
PAGE_ARGUMENTS = ("first", "last")


def request_error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}


@dataclass(frozen=True)
class Measure:
    """What a selection set asks for. `cost` counts fields per parent object."""

    cost: int = 0
    depth: int = 0
    aliases: int = 0

    def __add__(self, other: Measure) -> Measure:
        return Measure(
            self.cost + other.cost, max(self.depth, other.depth), self.aliases + other.aliases
        )


class DocumentMeasure:
    """Measures an operation's depth, aliases and cost in one pass.

    Depth counts fields that have a selection set, as Strawberry's
    `QueryDepthLimiter` does (introspection excluded); aliases and cost count a
    fragment once per spread. Each fragment is measured once and reused, so the
    work is linear in the document's size (Strawberry's depth and alias rules
    re-walk a fragment at every spread: exponential for fragments that spread
    fragments). Collects an error for every page argument over `MAX_PAGE_SIZE`."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.raw_variables = dict(variables or {})
        self.variables: dict[str, Any] = {}
        self.measured: dict[str, Measure] = {}
        self.errors: list[GraphQLError] = []

    def operation(self, node: OperationDefinitionNode) -> Measure:
        root = self.schema.get_root_type(node.operation)
        if root is None:
            return Measure()
        self.variables = {
            definition.variable.name.value: value_from_ast(definition.default_value, GraphQLInt)
            for definition in node.variable_definitions or ()
            if definition.default_value is not None
        } | self.raw_variables
        self.measured = {}
        return self.selections(node.selection_set, root, meta=False)

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, meta: bool
    ) -> Measure:
        total = Measure()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, meta)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                child = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, child, meta)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, meta)
        return total

    def fragment(self, name: str, meta: bool) -> Measure:
        if name not in self.measured:
            fragment = self.fragments.get(name)
            self.measured[name] = Measure()  # a cycle counts nothing (another rule reports it)
            if fragment is not None:
                parent = self.schema.get_type(fragment.type_condition.name.value)
                self.measured[name] = self.selections(fragment.selection_set, parent, meta)
        return self.measured[name]

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, meta: bool) -> Measure:
        own = Measure(cost=1, aliases=1 if node.alias else 0)
        name = node.name.value
        if node.selection_set is None:
            return own
        definition: GraphQLField | None = META_FIELDS.get(name)
        if definition is None and isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(name)
        child_type = get_named_type(definition.type) if definition is not None else None
        meta = meta or name.startswith("__")
        items = 1 if meta or definition is None else self.items(node, definition, parent)
        child = self.selections(node.selection_set, child_type, meta)
        return Measure(
            cost=1 + items * child.cost,
            depth=0 if meta else 1 + child.depth,
            aliases=own.aliases + child.aliases,
        )

    def items(
        self, node: FieldNode, definition: GraphQLField, parent: GraphQLNamedType | None
    ) -> int:
        """How many objects the field may return: its page size for a connection."""
        paged = [a for a in PAGE_ARGUMENTS if a in definition.args]
        if not paged:
            is_list = isinstance(get_nullable_type(definition.type), GraphQLList)
            in_connection = parent is not None and parent.name.endswith("Connection")
            return DEFAULT_PAGE_SIZE if is_list and not in_connection else 1
        default = definition.args[paged[0]].default_value
        items = default if isinstance(default, int) else DEFAULT_PAGE_SIZE
        for argument in node.arguments or ():
            if argument.name.value not in paged:
                continue
            size = value_from_ast(argument.value, GraphQLInt, self.variables)
            if not isinstance(size, int):
                continue
            if size > MAX_PAGE_SIZE:
                self.errors.append(
                    GraphQLError(
                        f"`{argument.name.value}: {size}` on '{node.name.value}' is over the "
                        f"maximum page size of {MAX_PAGE_SIZE}.",
                        argument,
                        extensions={"code": "PAGE_SIZE_TOO_LARGE", "maxPageSize": MAX_PAGE_SIZE},
                    )
                )
            items = max(0, min(size, MAX_PAGE_SIZE))
        return items


def shown(count: int) -> str:
    return f"{count:,}" if count < 10**9 else "over a billion"


def query_cost(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None = None
) -> int:
    """The estimated cost of the document's first operation."""
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return DocumentMeasure(schema, document, variables).operation(operation).cost


def limits_rule(variables: Mapping[str, Any] | None) -> type[ValidationRule]:
    """A validation rule refusing operations over `MAX_DEPTH`, `MAX_ALIASES`,
    `MAX_COST` or with a page over `MAX_PAGE_SIZE`; `variables` are the request's."""

    class LimitsRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            measure = DocumentMeasure(self.context.schema, self.context.document, variables)
            size = measure.operation(node)
            name = f"Operation '{node.name.value}'" if node.name else "The operation"
            refusals = [
                (size.depth > MAX_DEPTH, "QUERY_TOO_DEEP", "maxDepth", MAX_DEPTH,
                 f"{name} is {size.depth} levels deep; the maximum is {MAX_DEPTH}."),
                (size.aliases > MAX_ALIASES, "TOO_MANY_ALIASES", "maxAliases", MAX_ALIASES,
                 f"{name} uses {shown(size.aliases)} aliases; the maximum is {MAX_ALIASES}."),
                (size.cost > MAX_COST, "QUERY_TOO_COMPLEX", "maxCost", MAX_COST,
                 f"{name} could return up to {shown(size.cost)} fields; the maximum "
                 f"is {MAX_COST:,}. Ask for smaller pages (`first`) or fewer nested "
                 "connections."),
            ]  # fmt: skip
            for error in measure.errors:
                self.report_error(error)
            for refused, code, key, limit, message in refusals:
                if refused:
                    self.report_error(
                        GraphQLError(message, node, extensions={"code": code, key: limit})
                    )

    return LimitsRule


class RequestLimits(SchemaExtension):
    """Checks the document's size, then adds `limits_rule` to validation and
    gives every parse or validation error a code."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and len(context.query.encode()) > MAX_DOCUMENT_BYTES:
            raise request_error(
                f"The document is over {MAX_DOCUMENT_BYTES:,} bytes.", "DOCUMENT_TOO_LARGE"
            )
        context.validation_rules = (
            *context.validation_rules,
            limits_rule(context.variables),
        )
        yield

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            too_many = "tokens. Parsing aborted." in error.message
            error.extensions = {"code": "TOO_MANY_TOKENS" if too_many else "GRAPHQL_PARSE_FAILED"}

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED", **(error.extensions or {})}


def limit_extensions() -> list[Callable[[], SchemaExtension]]:
    """The extensions for `strawberry.Schema(extensions=[...])`."""
    return [functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS), RequestLimits]
