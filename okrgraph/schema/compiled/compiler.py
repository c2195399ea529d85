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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_variable_values

from okrgraph.schema.compiled.registry import TYPES, Relation, TypeSpec
from okrgraph.schema.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from okrgraph.schema.node import from_global_id

# Root connections: field -> (type, order on {c})
ROOT_CONNECTIONS = {
    "kpis": ("Kpi", "{c}.name, {c}.id"),
    "cycles": ("Cycle", "{c}.starts_on DESC, {c}.id DESC"),
    "objectives": ("Objective", "{c}.created_at, {c}.id"),
}
NODE_FIELDS = {"id", "__typename"}
MAX_PAIRS = 50  # json_build_object takes at most 100 arguments


class NotCompilable(Exception):
    """The query uses something the compiler does not know: run it normally."""


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
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
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

    def value(self, node: ValueNode) -> Any:
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value)
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, BooleanValueNode):
            return node.value
        if isinstance(node, StringValueNode):
            return node.value
        raise NotCompilable("argument value")

    def args(self, node: FieldNode, allowed: frozenset[str]) -> dict[str, Any]:
        out = {}
        for arg in node.arguments or ():
            if arg.name.value not in allowed:
                raise NotCompilable(f"argument {arg.name.value}")
            out[arg.name.value] = self.value(arg.value)
        return out

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
                fragment = self.fragments[sel.name.value]
                condition, inner = fragment.type_condition, fragment.selection_set
            else:  # pragma: no cover - no other selection kinds exist
                raise NotCompilable("selection")
            if condition is None or condition.name.value in (type_name, "Node"):
                yield from self._walk(inner, type_name)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"

    # -- SQL --------------------------------------------------------------------

    def object(self, type_name: str, selection_set: SelectionSetNode | None, t: str) -> str:
        spec = TYPES.get(type_name)
        if spec is None:
            raise NotCompilable(f"type {type_name}")
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
            return spec.leaves[name].format(t=t)
        relation = spec.relations.get(name)
        if relation is None:
            raise NotCompilable(f"{type_name}.{name}")
        args = self.args(f, relation.args)
        extra = ""
        if type_name == "Organization" and name == "teams" and not args.get("all"):
            extra = " AND {c}.parent_team_id IS NULL"
        return self.relation(relation, f, t, args, extra)

    def relation(
        self, rel: Relation, f: FieldNode, p: str, args: dict[str, Any], extra: str = ""
    ) -> str:
        c, link = self.alias(), self.alias()
        child = TYPES[rel.type_name]
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
            t = self.alias()
            return (
                f"(SELECT {self.object('Organization', f.selection_set, t)} FROM organizations {t})"
            )
        if name == "node":
            return self.node(f)
        if name in ROOT_CONNECTIONS:
            type_name, order = ROOT_CONNECTIONS[name]
            args = self.args(f, frozenset({"first"}))
            c = self.alias()
            source = f"{TYPES[type_name].table} {c}"
            return self.connection(type_name, f, c, source, "true", order.format(c=c), args)
        raise NotCompilable(f"Query.{name}")

    def node(self, f: FieldNode) -> str:
        args = self.args(f, frozenset({"id"}))
        parsed = from_global_id(str(args.get("id") or ""))
        if parsed is None or parsed[0] not in TYPES:
            raise NotCompilable("node of an unknown or private type")  # normal path answers
        type_name, id = parsed
        t = self.alias()
        body = self.object(type_name, f.selection_set, t)
        return f"(SELECT {body} FROM {TYPES[type_name].table} {t} WHERE {t}.id = {self.bind(id)})"


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
    coerced = get_variable_values(
        schema._schema, operations[0].variable_definitions or (), dict(variables or {})
    )
    if not isinstance(coerced, VariableValues):
        raise NotCompilable("variables")  # the normal path reports them
    compiler = Compiler(fragments, coerced.coerced)
    sql = compiler.root(operations[0])
    return Compiled(sql, compiler.params, compiler.floats)
