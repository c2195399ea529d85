"""Runs a compilable query as one SQL statement instead of field by field.

Compiling depends only on the document, the operation's name and the variables (the
tenant is the transaction's, for row-level security), so the outcome, a statement or
NotCompilable, is kept for requests that repeat all three (`CompiledStore`: at most
`MAX_ENTRIES`, and `MAX_CHARS` of SQL, least recently used out): ~0.25-0.4 ms of
compiling a small query saved per request (bench/fixed_cost.py).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from graphql import DocumentNode
from graphql import ExecutionResult as GraphQLExecutionResult
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from okrgraph.schema.compiled.compiler import (
    Compiled,
    NotCompilable,
    compile_query,
    restore_floats,
)
from okrgraph.schema.context import Context
from okrgraph.schema.documents import variables_key
from okrgraph.schema.limits import MAX_RESPONSE_BYTES, response_too_large

log = logging.getLogger(__name__)

MAX_ENTRIES = 256
MAX_CHARS = 8_000_000


class CompiledStore:
    """Bounded LRU of compile outcomes by (document text, operation name, variables)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_CHARS) -> None:
        self.max_entries, self.max_chars = max_entries, max_chars
        self.chars = 0  # of the kept statements and their documents' texts
        # A statement, or why the query does not compile.
        self.entries: OrderedDict[tuple[str, str | None, str], Compiled | str] = OrderedDict()

    def compiled(
        self,
        query: str | None,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> Compiled:
        """`compile_query`'s statement (or its NotCompilable), kept when it can be."""
        variables_text = variables_key(variables) if query is not None else None
        key = (
            None
            if query is None or variables_text is None
            else (query, operation_name, variables_text)
        )
        entry = self._kept(key) if key is not None else None
        if entry is None:
            try:
                entry = compile_query(document, operation_name, variables)
            except NotCompilable as reason:
                entry = str(reason)
            if key is not None:
                self._put(key, entry)
        if isinstance(entry, str):
            raise NotCompilable(entry)  # a new one: raising a kept one grows its traceback
        return entry

    def remembered(
        self, query: str, operation_name: str | None, variables: dict[str, Any] | None
    ) -> Compiled | None:
        """The statement kept for a request repeating `query`, `operation_name` and
        `variables`, else None. Only CompiledReads keeps one, after parsing,
        validation and the limits passed, and all three depend on nothing else, so
        a request that finds one would pass them too (api/remembered.py)."""
        variables_text = variables_key(variables)
        if variables_text is None:
            return None
        entry = self._kept((query, operation_name, variables_text))
        return entry if isinstance(entry, Compiled) else None

    def _kept(self, key: tuple[str, str | None, str]) -> Compiled | str | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def _put(self, key: tuple[str, str | None, str], entry: Compiled | str) -> None:
        size = _chars(key, entry)
        if size > self.max_chars:
            return
        self.entries[key] = entry
        self.chars += size
        while len(self.entries) > self.max_entries or self.chars > self.max_chars:
            dropped, old = self.entries.popitem(last=False)
            self.chars -= _chars(dropped, old)

    def clear(self) -> None:
        self.entries.clear()
        self.chars = 0


def _chars(key: tuple[str, str | None, str], entry: Compiled | str) -> int:
    return len(key[0]) + len(key[2]) + (len(entry.sql) if isinstance(entry, Compiled) else 0)


store = CompiledStore()


def _int(text: str) -> int | float:
    """Only a float is ever written `-0` (PostgreSQL's -0.0)."""
    return -0.0 if text == "-0" else int(text)


class CompiledReads(SchemaExtension):
    """After validation and inside the operation's transaction (TransactionExtension
    runs first): a query the compiler understands is answered by PostgreSQL."""

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx: Context = ec.context
        principal = ctx.principal
        if (
            ec.result is None  # else answered already (the introspection cache)
            and ec.operation_type is OperationType.QUERY
            and principal is not None
            and principal.has_scope("read")
            and ctx.session is not None
            and ec.graphql_document is not None
        ):
            try:
                compiled = store.compiled(
                    ec.query, ec.graphql_document, ec.operation_name, ec.variables
                )
            except NotCompilable as reason:
                log.debug("not compiled: %s", reason)
            else:
                async with ctx.db() as session:
                    ec.result = await run_compiled(session, compiled)
        yield


async def run_compiled(session: AsyncSession, compiled: Compiled) -> GraphQLExecutionResult:
    """The statement's answer as the operation's result (at most MAX_RESPONSE_BYTES)."""
    raw = (await session.execute(text(compiled.sql), compiled.params)).scalar_one()
    if len(raw) > MAX_RESPONSE_BYTES:  # text: one byte or more per character
        return GraphQLExecutionResult(data=None, errors=[response_too_large()])
    data = json.loads(raw, parse_int=_int) if isinstance(raw, str) else raw
    restore_floats(data, compiled.floats)
    return GraphQLExecutionResult(data=data, errors=None)
