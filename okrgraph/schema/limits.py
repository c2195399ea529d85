"""Limits on every GraphQL request, checked before anything executes (and a
budget for execution itself, below).

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
  selected field costs 1 per parent object; a field with `first` (connections,
  and the short lists `kpis`, `terms`, `objectives` of a closing) multiplies
  the cost of its selection by its page size (`first`, else the argument's
  schema default, else `DEFAULT_PAGE_SIZE`). Every other list has a real,
  enforced maximum in `LIST_BOUNDS` (`nodes(ids:)` counts its ids) and counts
  it; a test walks the schema so that no list is unbounded. Variables and
  arguments are coerced as the executor coerces them (`{"n": 100.0}` is 100,
  defaults apply) -> `QUERY_TOO_COMPLEX`. Introspection lists count their mean
  length over the schema (types, fields per type, args per field, ...), so
  `__schema { types { fields { args ... } } }` counts what it returns.
- After SQL, execution itself is budgeted (okrgraph/schema/execution.py):
  `MAX_RESPONSE_VALUES` (250,000) completed values and `MAX_EXECUTION_MS`
  (5,000 ms) of completing them on the event loop, else the whole result is
  one `RESPONSE_TOO_LARGE` or `EXECUTION_TOO_LONG` error (no `data`); the
  compiled path (compiled/) refuses a JSON text over `MAX_RESPONSE_BYTES`
  (10 MB) as `RESPONSE_TOO_LARGE`. A request that has used `SLICE_MS` (20 ms)
  of the loop since it last paused waits for the loop to run what else is
  ready, so no request stalls the others. Measured: an allowed 246,658-cost
  introspection query takes ~2.4 s of CPU; other requests kept answering.
- Batching is off (a JSON array body is a 400), so one operation per request.
- Every SQL statement stops after `settings.statement_timeout_ms` (5,000 ms).
- Introspection stays on; graphql-core's `MaxIntrospectionDepthRule` (on by
  default) stops recursive introspection queries; introspection-only queries
  are answered from a cache (introspection.py); requests without a token are
  rate-limited per client address (`settings.anonymous_burst` 30, then
  `anonymous_per_second` 1) -> 429 `RATE_LIMITED` with `Retry-After`
  (okrgraph/api/ratelimit.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    get_nullable_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from strawberry.extensions import MaxTokensLimiter, SchemaExtension

from okrgraph.domain.auth.tokens import SCOPES
from okrgraph.domain.notifications.inbox import MAX_MARK
from okrgraph.domain.webhooks.catalog import MAX_EVENT_TYPES

MAX_REQUEST_BYTES = 1_000_000
MAX_DOCUMENT_BYTES = 100_000
MAX_TOKENS = 2_000
MAX_DEPTH = 20
MAX_ALIASES = 30
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_COST = 250_000
MAX_NODES = 100
MAX_RESPONSE_VALUES = MAX_COST
MAX_RESPONSE_BYTES = 10_000_000
MAX_EXECUTION_MS = 5_000
SLICE_MS = 20
PAGE_ARGUMENTS = ("first", "last")


def request_error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def response_too_large() -> GraphQLError:
    return GraphQLError(
        f"The response would be over {MAX_RESPONSE_VALUES:,} values or "
        f"{MAX_RESPONSE_BYTES:,} bytes. Ask for smaller pages (`first`) or fewer fields.",
        extensions={
            "code": "RESPONSE_TOO_LARGE",
            "maxValues": MAX_RESPONSE_VALUES,
            "maxBytes": MAX_RESPONSE_BYTES,
        },
    )


def execution_too_long() -> GraphQLError:
    return GraphQLError(
        f"The operation spent over {MAX_EXECUTION_MS:,} ms executing. Ask for smaller pages "
        "(`first`) or fewer fields.",
        extensions={"code": "EXECUTION_TOO_LONG", "maxExecutionMs": MAX_EXECUTION_MS},
    )


META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}


def coerce_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, raw: Any
) -> VariableValues | None:
    """The operation's variables exactly as graphql-core's executor coerces them
    (its own `get_variable_values`: `{"n": 100.0}` is the Int 100, a missing
    variable takes its default), or None when they do not coerce (the executor
    then refuses the operation). The one coercion of the request's variables
    before execution: the cost limits here and the compiled read path
    (compiled/compiler.py) both use it."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return None
    try:
        coerced = get_variable_values(schema, operation.variable_definitions or (), dict(raw))
    except Exception:  # noqa: BLE001 - whatever fails here, the executor reports it
        return None
    return coerced if isinstance(coerced, VariableValues) else None


def coerce_arguments(
    definition: GraphQLField, node: FieldNode, variables: VariableValues | None
) -> dict[str, Any] | None:
    """A field's arguments as the executor coerces them (graphql-core's
    `get_argument_values`: literals and variables coerced, schema defaults
    applied, a variable left out takes the argument's default), or None where the
    executor would report an error (e.g. null for a non-null argument)."""
    try:
        return get_argument_values(definition, node, variables)
    except Exception:  # noqa: BLE001 - a bad argument is the executor's error to report
        return None


@dataclass(frozen=True)
class ListBound:
    """A list field with no page argument: the most items it can hold, what
    enforces that, and optionally the list argument whose length sizes it."""

    most: int
    enforced_by: str
    argument: str | None = None


# Every list field of the schema is a connection's `nodes`/`edges` (sized by the
# connection's `first`), takes `first` itself, or is listed here with its real,
# enforced maximum. tests/api/test_limits.py walks the schema to keep it so.
LIST_BOUNDS: dict[tuple[str, str], ListBound] = {
    ("Query", "nodes"): ListBound(MAX_NODES, "`nodes` refuses more ids", "ids"),
    ("MarkNotificationsReadSuccess", "notifications"): ListBound(
        MAX_MARK, "markNotificationsRead refuses more ids"
    ),
    ("Objective", "warnings"): ListBound(7, "one per quality check (domain/objectives/quality)"),
    ("ValidationError", "errors"): ListBound(50, "one per invalid input field"),
    ("ApiToken", "scopes"): ListBound(len(SCOPES), "scopes are a set of read, write, admin"),
    ("Viewer", "scopes"): ListBound(len(SCOPES), "scopes are a set of read, write, admin"),
    ("WebhookEndpoint", "eventTypes"): ListBound(
        MAX_EVENT_TYPES, "createWebhookEndpoint refuses more event types"
    ),
}


def is_connection_list(parent: GraphQLNamedType | None, name: str) -> bool:
    return parent is not None and parent.name.endswith("Connection") and name in ("nodes", "edges")


@functools.cache
def introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], float]:
    """The mean length of every introspection list over this (fixed) schema, so a
    walk of the whole schema (`__schema { types { fields { args ... } } }`)
    counts the values it really returns: types x fields per type = every field."""
    types = list(schema.type_map.values())
    with_fields = [t for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
    fields = [f for t in with_fields for f in t.fields.values()]
    directives = list(schema.directives)

    def mean(total: int, count: int) -> float:
        return total / count if count else 0.0

    possible = sum(
        len(schema.get_possible_types(t))
        for t in types
        if isinstance(t, GraphQLInterfaceType | GraphQLUnionType)
    )
    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(directives),
        ("__Type", "fields"): mean(len(fields), len(types)),
        ("__Type", "interfaces"): mean(sum(len(t.interfaces) for t in with_fields), len(types)),
        ("__Type", "possibleTypes"): mean(possible, len(types)),
        ("__Type", "enumValues"): mean(
            sum(len(t.values) for t in types if isinstance(t, GraphQLEnumType)), len(types)
        ),
        ("__Type", "inputFields"): mean(
            sum(len(t.fields) for t in types if isinstance(t, GraphQLInputObjectType)), len(types)
        ),
        ("__Field", "args"): mean(sum(len(f.args) for f in fields), len(fields)),
        ("__Directive", "args"): mean(sum(len(d.args) for d in directives), len(directives)),
        ("__Directive", "locations"): mean(
            sum(len(d.locations) for d in directives), len(directives)
        ),
    }


@dataclass(frozen=True)
class Measure:
    """What a selection set asks for. `cost` counts fields per parent object
    (fractional under introspection lists, which count their mean length)."""

    cost: float = 0
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
    fragments). Collects an error for every page argument over `MAX_PAGE_SIZE`.

    Variables and arguments are coerced by graphql-core's own functions, exactly
    as the executor coerces them (`{"n": 100.0}` is the Int 100, a missing
    variable takes its default); an operation whose variables do not coerce is
    not measured (`coerced` is False): the executor refuses it."""

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
        self.raw_variables = variables if variables is not None else {}
        self.variables: VariableValues | None = None
        self.coerced = True
        self.measured: dict[str, Measure] = {}
        self.errors: list[GraphQLError] = []
        self.sizes = introspection_sizes(schema)

    def operation(self, node: OperationDefinitionNode) -> Measure:
        root = self.schema.get_root_type(node.operation)
        if root is None:
            return Measure()
        coerced = coerce_variables(self.schema, node, self.raw_variables)
        if coerced is None:
            self.coerced = False
            return Measure()
        self.coerced = True
        self.variables = coerced
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
        name = node.name.value
        aliases = 1 if node.alias else 0
        definition: GraphQLField | None = META_FIELDS.get(name)
        if definition is None and isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(name)
        meta = meta or name.startswith("__") or (parent is not None and parent.name[:2] == "__")
        items: float = 1
        if definition is not None:
            items = self.meta_items(parent, name) if meta else self.items(node, definition, parent)
        if node.selection_set is None:
            return Measure(cost=max(1, items), aliases=aliases)  # a list of leaves: its items
        child_type = get_named_type(definition.type) if definition is not None else None
        child = self.selections(node.selection_set, child_type, meta)
        return Measure(
            cost=1 + items * child.cost,
            depth=0 if meta else 1 + child.depth,
            aliases=aliases + child.aliases,
        )

    def meta_items(self, parent: GraphQLNamedType | None, name: str) -> float:
        """An introspection list counts its mean length over the schema."""
        return self.sizes.get((parent.name if parent else "", name), 1)

    def items(
        self, node: FieldNode, definition: GraphQLField, parent: GraphQLNamedType | None
    ) -> int:
        """How many objects the field may return: its page size for a connection
        or a field with `first`, its bound for a bounded list, else 1."""
        paged = [a for a in PAGE_ARGUMENTS if a in definition.args]
        is_list = isinstance(get_nullable_type(definition.type), GraphQLList)
        if not paged and (not is_list or is_connection_list(parent, node.name.value)):
            return 1
        args = coerce_arguments(definition, node, self.variables) or {}
        if not paged:
            bound = LIST_BOUNDS.get((parent.name if parent else "", node.name.value))
            if bound is None:
                return MAX_PAGE_SIZE  # never in this schema: the schema walk test sees to it
            given = args.get(bound.argument) if bound.argument else None
            return min(len(given), bound.most) if isinstance(given, list) else bound.most
        items = DEFAULT_PAGE_SIZE
        for name in paged:
            size = args.get(name)
            if not isinstance(size, int):
                continue
            if size > MAX_PAGE_SIZE:
                argument = next((a for a in node.arguments or () if a.name.value == name), node)
                self.errors.append(
                    GraphQLError(
                        f"`{name}: {size}` on '{node.name.value}' is over the "
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
    return math.ceil(DocumentMeasure(schema, document, variables).operation(operation).cost)


def limits_rule(variables: Mapping[str, Any] | None) -> type[ValidationRule]:
    """A validation rule refusing operations over `MAX_DEPTH`, `MAX_ALIASES`,
    `MAX_COST` or with a page over `MAX_PAGE_SIZE`; `variables` are the request's."""

    class LimitsRule(ValidationRule):
        per_request = True  # depends on the variables: run even for a cached document

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            measure = DocumentMeasure(self.context.schema, self.context.document, variables)
            size = measure.operation(node)
            if not measure.coerced:
                return  # variables that do not coerce: the executor's error, nothing runs
            cost = math.ceil(size.cost)
            name = f"Operation '{node.name.value}'" if node.name else "The operation"
            refusals = [
                (size.depth > MAX_DEPTH, "QUERY_TOO_DEEP", "maxDepth", MAX_DEPTH,
                 f"{name} is {size.depth} levels deep; the maximum is {MAX_DEPTH}."),
                (size.aliases > MAX_ALIASES, "TOO_MANY_ALIASES", "maxAliases", MAX_ALIASES,
                 f"{name} uses {shown(size.aliases)} aliases; the maximum is {MAX_ALIASES}."),
                (cost > MAX_COST, "QUERY_TOO_COMPLEX", "maxCost", MAX_COST,
                 f"{name} could return up to {shown(cost)} fields; the maximum "
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
    """The extensions for `strawberry.Schema(extensions=[...])`: the limits, then
    the introspection cache (which answers only what the limits let through).
    The document cache runs inside RequestLimits, so its errors get their codes."""
    from okrgraph.schema.documents import DocumentCache
    from okrgraph.schema.introspection import IntrospectionCache

    return [
        functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        RequestLimits,
        DocumentCache,
        IntrospectionCache,
    ]
