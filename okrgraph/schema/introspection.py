"""Introspection answered from a cache: the schema is fixed for the life of the
process, so a query of introspection fields only (`__schema`, `__type`,
`__typename` at its root) gives the same result for the same document, operation
name and variables, whoever asks. The first answer is kept (at most
`MAX_ENTRIES`, least recently used out); repeats cost a dictionary look-up.
Its cost still counts in the limits (limits.py) before it is looked up.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

MAX_ENTRIES = 64
META_ROOT_FIELDS = frozenset({"__schema", "__type", "__typename"})

_cache: OrderedDict[tuple[str, str | None, str], dict[str, Any]] = OrderedDict()


def cache_key(
    query: str, operation_name: str | None, variables: dict[str, Any] | None
) -> tuple[str, str | None, str]:
    return (query, operation_name, json.dumps(variables or {}, sort_keys=True, default=str))


def remembered(
    query: str, operation_name: str | None, variables: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The answer kept for a request repeating all three, else None: only answers of
    operations that passed the limits and validation are kept (api/remembered.py)."""
    return _kept(cache_key(query, operation_name, variables))


def _kept(key: tuple[str, str | None, str]) -> dict[str, Any] | None:
    data = _cache.get(key)
    if data is not None:
        _cache.move_to_end(key)
    return data


def introspection_only(document: DocumentNode, operation_name: str | None) -> bool:
    """Whether the operation to run selects only introspection fields at its root."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation.value != "query":
        return False
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    seen: set[str] = set()

    def meta(selection_set: SelectionSetNode) -> bool:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value not in META_ROOT_FIELDS:
                    return False
            elif isinstance(selection, InlineFragmentNode):
                if not meta(selection.selection_set):
                    return False
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen:
                    continue
                seen.add(name)
                fragment = fragments.get(name)
                if fragment is None or not meta(fragment.selection_set):
                    return False
        return True

    return meta(operations[0].selection_set)


class IntrospectionCache(SchemaExtension):
    """After validation (and the limits): answers a cached introspection query,
    or keeps the answer of one that ran without errors."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        key = None
        if (
            ec.operation_type is OperationType.QUERY
            and ec.graphql_document is not None
            and ec.query is not None
            and introspection_only(ec.graphql_document, ec.operation_name)
        ):
            key = cache_key(ec.query, ec.operation_name, ec.variables)
            data = _kept(key)
            if data is not None:
                ec.result = GraphQLExecutionResult(data=data, errors=None)
                key = None
        yield
        result = ec.result
        if key is not None and result is not None and not result.errors and result.data:
            _cache[key] = result.data
            while len(_cache) > MAX_ENTRIES:
                _cache.popitem(last=False)
