"""Runs a compilable query as one SQL statement instead of field by field."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from graphql import ExecutionResult as GraphQLExecutionResult
from sqlalchemy import text
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from okrgraph.schema.compiled.compiler import NotCompilable, compile_query, restore_floats
from okrgraph.schema.context import Context
from okrgraph.schema.limits import MAX_RESPONSE_BYTES, response_too_large

log = logging.getLogger(__name__)


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
                compiled = compile_query(ec.graphql_document, ec.operation_name, ec.variables)
            except NotCompilable as reason:
                log.debug("not compiled: %s", reason)
            else:
                async with ctx.db() as session:
                    raw = (await session.execute(text(compiled.sql), compiled.params)).scalar_one()
                if len(raw) > MAX_RESPONSE_BYTES:  # text: one byte or more per character
                    ec.result = GraphQLExecutionResult(data=None, errors=[response_too_large()])
                else:
                    data = json.loads(raw, parse_int=_int) if isinstance(raw, str) else raw
                    restore_floats(data, compiled.floats)
                    ec.result = GraphQLExecutionResult(data=data, errors=None)
        yield
