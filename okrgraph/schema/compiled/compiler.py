"""GraphQL -> one SQL statement, for queries over the registry's fields only.

A tree query through graphql-core costs tens of microseconds per field: a
25,000-field company tree spends seconds in the executor for what PostgreSQL
builds as JSON in tens of milliseconds. When every field of a query is listed
in registry.py (plain columns and relations, `first` without `after`, no
directives), `compile_query` writes the statement that builds the response's
`data` in PostgreSQL, with the same keys, order and values; anything else raises
`NotCompilable` and the query runs the normal way. Authorisation, limits and
validation have run before (the query reached execution), and row-level
security scopes the statement to the caller's organisation.

Variables and arguments are coerced by graphql-core's own functions, shared with
the cost limits (limits.coerce_variables / coerce_arguments): defaults apply, a
variable left out takes the argument's default, and whatever the executor would
refuse (a missing required variable, `{"n": true}`, null for a non-null
argument) is not compiled, so the normal path reports it. Only the registry's
public types are built (`compilable`): never one with per-row visibility.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues

from okrgraph.schema.compiled.registry import PUBLIC_TYPES, TYPES, Relation, TypeSpec
from okrgraph.schema.limits import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    coerce_arguments,
    coerce_variables,
)
from okrgraph.schema.node import NODE_KINDS, from_global_id

# Root connections: field -> (type, order on {c})
ROOT_CONNECTIONS = {
    "kpis": ("Kpi", "{c}.name, {c}.id"),
    "cycles": ("Cycle", "{c}.starts_on DESC, {c}.id DESC"),
    "objectives": ("Objective", "{c}.created_at, {c}.id"),
}
MAX_PAIRS = 50  # json_build_object takes at most 100 arguments


class NotCompilable(Exception):
    """The query uses something the compiler does not know: run it normally."""


def compilable(type_name: str) -> TypeSpec:
    """The registry's spec of a type the compiler may build, else NotCompilable.

    Two walls keep private rows (tokens, notifications and their preferences,
    webhook endpoints and deliveries) out of compiled SQL, which has no per-row
    check: a type must be on the explicit allow-list `PUBLIC_TYPES` beside its
    spec, and must be a Node kind without a `visible` rule (node.py), checked
    here on every use, so listing a private type in the registry still compiles
    nothing."""
    spec = TYPES.get(type_name)
    kind = NODE_KINDS.get(type_name)
    if spec is None or type_name not in PUBLIC_TYPES or kind is None or kind.visible is not None:
        raise NotCompilable(f"type {type_name}")
    return spec


# PostgreSQL writes a whole float as `2`, Python as `2.0`: the response keys that
# hold Floats are recorded (a tree of keys mirroring the JSON) and converted back.
FloatTree = dict[str, Any]


def float_fields() -> dict[str, set[str]]:
    """GraphQL type -> its Float leaves (read from the schema once)."""
    if not _FLOATS:
        from graphql import GraphQLNonNull

        from okrgraph.schema import schema

        for type_name, spec in TYPES.items():
            fields = schema._schema.get_type(type_name).fields  # type: ignore[union-attr]
            for name in spec.leaves:
                t = fields[name].type
                t = t.of_type if isinstance(t, GraphQLNonNull) else t
                if getattr(t, "name", None) == "Float":
                    _FLOATS.setdefault(type_name, set()).add(name)
    return _FLOATS


_FLOATS: dict[str, set[str]] = {}


def restore_floats(value: Any, tree: FloatTree) -> Any:
    if isinstance(value, list):
        for item in value:
            restore_floats(item, tree)
    elif isinstance(value, dict):
        for key, sub in tree.items():
            v = value.get(key)
            if sub is True:
                if type(v) is int:
                    value[key] = float(v)
            elif v is not None:
                restore_floats(v, sub)
    return value


@dataclass
class Compiler:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: VariableValues
    params: dict[str, Any] = field(default_factory=dict)
    aliases: int = 0
    floats: FloatTree = field(default_factory=dict)
    here: FloatTree = field(default_factory=dict)  # the float tree of the object being built

    def under(self, key: str) -> FloatTree:
        """Descend into `key` of the current object; returns the previous position."""
        previous = self.here
        self.here = previous.setdefault(key, {})
        return previous

    # -- values and selections ------------------------------------------------

    def definition(self, parent: str, name: str) -> GraphQLField:
        type_ = self.schema.get_type(parent)
        if not isinstance(type_, GraphQLObjectType) or name not in type_.fields:
            raise NotCompilable(f"{parent}.{name}")
        return type_.fields[name]

    def args(self, node: FieldNode, parent: str, allowed: frozenset[str]) -> dict[str, Any]:
        """The field's arguments as the executor coerces them. Only `allowed` ones
        may be given, and every other argument must be null after coercion (its
        default), else the compiler does not know what the resolver would do."""
        for arg in node.arguments or ():
            if arg.name.value not in allowed:
                raise NotCompilable(f"argument {arg.name.value}")
        args = coerce_arguments(self.definition(parent, node.name.value), node, self.variables)
        if args is None:
            raise NotCompilable("arguments")  # the executor reports them
        if any(value is not None for name, value in args.items() if name not in allowed):
            raise NotCompilable(f"a default of {parent}.{node.name.value}")
        return args

    def fields(self, selection_set: SelectionSetNode | None, type_name: str) -> list[FieldNode]:
        """The selected fields that apply to `type_name`; one per response key."""
        out: dict[str, FieldNode] = {}
        for f in self._walk(selection_set, type_name):
            key = (f.alias or f.name).value
            if key in out:
                raise NotCompilable("a response key selected twice")
            out[key] = f
        if len(out) > MAX_PAIRS:
            raise NotCompilable("too many fields for one json_build_object")
        return list(out.values())

    def _walk(self, selection_set: SelectionSetNode | None, type_name: str) -> Iterator[FieldNode]:
        for sel in selection_set.selections if selection_set else ():
            if sel.directives:
                raise NotCompilable("directives")
            if isinstance(sel, FieldNode):
                yield sel
                continue
            if isinstance(sel, InlineFragmentNode):
                condition, inner = sel.type_condition, sel.selection_set
            elif isinstance(sel, FragmentSpreadNode):
                fragment = self.fragments.get(sel.name.value)
                if fragment is None or getattr(sel, "arguments", None):  # fragment variables
                    raise NotCompilable("fragment")
                condition, inner = fragment.type_condition, fragment.selection_set
            else:  # pragma: no cover - no other selection kinds exist
                raise NotCompilable("selection")
            if condition is None or self.applies(condition.name.value, type_name):
                yield from self._walk(inner, type_name)

    def applies(self, condition: str, type_name: str) -> bool:
        """Whether a fragment on `condition` applies to an object of `type_name`,
        as the executor decides it (the type itself, or an interface or union that
        holds it)."""
        if condition == type_name:
            return True
        abstract = self.schema.get_type(condition)
        concrete = self.schema.get_type(type_name)
        if not isinstance(abstract, GraphQLInterfaceType | GraphQLUnionType):
            return False
        if not isinstance(concrete, GraphQLObjectType):
            raise NotCompilable(f"type {type_name}")
        return self.schema.is_sub_type(abstract, concrete)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"

    # -- SQL --------------------------------------------------------------------

    def object(self, type_name: str, selection_set: SelectionSetNode | None, t: str) -> str:
        spec = compilable(type_name)
        pairs = []
        floats = float_fields().get(type_name, set())
        for f in self.fields(selection_set, type_name):
            key = (f.alias or f.name).value
            if f.name.value in floats:
                self.here[key] = True
            previous = self.under(key)
            pairs.append(f"'{key}', {self.field(spec, type_name, f, t)}")
            self.here = previous
        return f"json_build_object({', '.join(pairs)})"

    def field(self, spec: TypeSpec, type_name: str, f: FieldNode, t: str) -> str:
        name = f.name.value
        if name == "__typename":
            return f"'{type_name}'"
        if name in spec.leaves:
            if f.arguments or f.selection_set:
                raise NotCompilable(f"{type_name}.{name} with arguments")
            self.args(f, type_name, frozenset())  # defaults of its arguments must be null
            return spec.leaves[name].format(t=t)
        relation = spec.relations.get(name)
        if relation is None:
            raise NotCompilable(f"{type_name}.{name}")
        args = self.args(f, type_name, relation.args)
        extra = ""
        if type_name == "Organization" and name == "teams" and not args.get("all"):
            extra = " AND {c}.parent_team_id IS NULL"
        return self.relation(relation, f, t, args, extra)

    def relation(
        self, rel: Relation, f: FieldNode, p: str, args: dict[str, Any], extra: str = ""
    ) -> str:
        c, link = self.alias(), self.alias()
        child = compilable(rel.type_name)
        names = {"p": p, "c": c, "l": link}
        source = f"{child.table} {c}" + (f" JOIN {rel.via.format(**names)}" if rel.via else "")
        where = (rel.join + extra).format(**names)
        order = rel.order.format(**names)
        if rel.shape == "object":
            limit = " ORDER BY " + order if order else ""
            body = self.object(rel.type_name, f.selection_set, c)
            return f"(SELECT {body} FROM {source} WHERE {where}{limit} LIMIT 1)"
        if rel.shape == "list":
            first = self.page_size(args)
            return self.array(rel.type_name, f.selection_set, c, source, where, order, first)
        return self.connection(rel.type_name, f, c, source, where, order, args)

    @staticmethod
    def page_size(args: dict[str, Any]) -> int:
        first = DEFAULT_PAGE_SIZE if args.get("first") is None else args["first"]
        if type(first) is not int or not 0 <= first <= MAX_PAGE_SIZE:
            raise NotCompilable("page size")  # the normal path reports it
        return first

    def connection(
        self,
        type_name: str,
        f: FieldNode,
        c: str,
        source: str,
        where: str,
        order: str,
        args: dict[str, Any],
    ) -> str:
        first = self.page_size(args)
        pairs = []
        for sub in self.fields(f.selection_set, f"{type_name}Connection"):
            key = (sub.alias or sub.name).value
            if sub.name.value == "__typename":
                pairs.append(f"'{key}', '{type_name}Connection'")
            elif sub.name.value == "nodes" and not sub.arguments:
                previous = self.under(key)
                nodes = self.array(type_name, sub.selection_set, c, source, where, order, first)
                self.here = previous
                pairs.append(f"'{key}', {nodes}")
            else:
                raise NotCompilable(f"connection field {sub.name.value}")
        return f"json_build_object({', '.join(pairs)})"

    def array(
        self,
        type_name: str,
        selection_set: SelectionSetNode | None,
        c: str,
        source: str,
        where: str,
        order: str,
        first: int | None,
    ) -> str:
        body = self.object(type_name, selection_set, c)
        limit = f" LIMIT {self.bind(first)}" if first is not None else ""
        ranked = f"row_number() OVER (ORDER BY {order})" if order else "1"
        inner = (
            f"SELECT {body} AS j, {ranked} AS n FROM {source} WHERE {where}"
            f"{' ORDER BY ' + order if order else ''}{limit}"
        )
        return f"COALESCE((SELECT json_agg(x.j ORDER BY x.n) FROM ({inner}) x), '[]'::json)"

    def root(self, operation: OperationDefinitionNode) -> str:
        pairs = []
        for f in self.fields(operation.selection_set, "Query"):
            key = (f.alias or f.name).value
            self.here = self.floats.setdefault(key, {})
            pairs.append(f"'{key}', {self.root_field(f)}")
        # as text: the driver would decode json itself, losing `-0`
        return f"SELECT json_build_object({', '.join(pairs)})::text"

    def root_field(self, f: FieldNode) -> str:
        name = f.name.value
        if name == "__typename":
            return "'Query'"
        if name == "organization" and not f.arguments:
            self.args(f, "Query", frozenset())
            t = self.alias()
            return (
                f"(SELECT {self.object('Organization', f.selection_set, t)} FROM organizations {t})"
            )
        if name == "node":
            return self.node(f)
        if name in ROOT_CONNECTIONS:
            type_name, order = ROOT_CONNECTIONS[name]
            args = self.args(f, "Query", frozenset({"first"}))
            c = self.alias()
            source = f"{compilable(type_name).table} {c}"
            return self.connection(type_name, f, c, source, "true", order.format(c=c), args)
        raise NotCompilable(f"Query.{name}")

    def node(self, f: FieldNode) -> str:
        args = self.args(f, "Query", frozenset({"id"}))
        parsed = from_global_id(args["id"]) if isinstance(args.get("id"), str) else None
        if parsed is None:
            raise NotCompilable("node of an unknown id")  # the normal path answers
        type_name, id = parsed
        spec = compilable(type_name)  # never a private type
        t = self.alias()
        body = self.object(type_name, f.selection_set, t)
        return f"(SELECT {body} FROM {spec.table} {t} WHERE {t}.id = {self.bind(id)})"


@dataclass(frozen=True)
class Compiled:
    sql: str  # builds the response's `data`
    params: dict[str, Any]
    floats: FloatTree  # where the Floats are, for `restore_floats`


def compile_query(
    document: DocumentNode, operation_name: str | None, variables: dict[str, Any] | None
) -> Compiled:
    """The statement answering the query, or NotCompilable."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        raise NotCompilable("operation")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    from okrgraph.schema import schema

    # the variables as the executor coerces them (`100.0` is the Int 100, defaults apply)
    coerced = coerce_variables(schema._schema, operations[0], variables)
    if coerced is None:
        raise NotCompilable("variables")  # the normal path reports them
    compiler = Compiler(schema._schema, fragments, coerced)
    sql = compiler.root(operations[0])
    return Compiled(sql, compiler.params, compiler.floats)
