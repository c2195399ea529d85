"""Schema extensions: one tenant-scoped transaction per operation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from okrgraph.domain.db import set_tenant
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.schema.context import Context
from okrgraph.schema.introspection import introspection_only

SUBSCRIPTION = OperationType.SUBSCRIPTION


def _failed(result: Any) -> bool:
    """Nothing is committed when the operation produced no data or a top-level
    field failed (an unexpected error inside a mutation, say)."""
    if result is None or getattr(result, "data", None) is None:
        return True
    return any(err.path is not None and len(err.path) == 1 for err in result.errors or [])


class TransactionExtension(SchemaExtension):
    """Runs the operation in a transaction scoped to the caller's organisation (an
    HTTP request's, begun when its token was checked, or one of its own), commits
    it when the operation ends without errors, then drains what the operation asked
    for after commit (jobs, live announcements: after_commit.py)."""

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx: Context = ec.context
        # Subscriptions live long and read nothing from the database, introspection
        # reads only the schema: no transaction.
        if (
            ctx.principal is None
            or ec.operation_type is SUBSCRIPTION
            or (ec.graphql_document and introspection_only(ec.graphql_document, ec.operation_name))
        ):
            yield
            return
        async with operation_session(ctx) as session:
            ctx.session = session
            try:
                yield
            finally:
                ctx.session = None
                after_commit = AfterCommit.take(session)
                if _failed(ec.result):
                    await session.rollback()
                    after_commit = AfterCommit()  # what it asked for never happened
                else:
                    await session.commit()
        await after_commit.drain(ctx.queue, ctx.live)


@asynccontextmanager
async def operation_session(ctx: Context) -> AsyncIterator[AsyncSession]:
    """The HTTP request's session, else one of the operation's own, scoped to the tenant."""
    if ctx.request_session is not None:
        yield ctx.request_session
        return
    assert ctx.principal is not None
    async with ctx.sessionmaker() as session:
        await set_tenant(session, ctx.principal.org_id)
        yield session
