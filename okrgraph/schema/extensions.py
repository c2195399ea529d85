"""Schema extensions: one tenant-scoped transaction per operation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from okrgraph.domain.db import set_tenant
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.schema.context import Context

SUBSCRIPTION = OperationType.SUBSCRIPTION


def _failed(result: Any) -> bool:
    """Nothing is committed when the operation produced no data or a top-level
    field failed (an unexpected error inside a mutation, say)."""
    if result is None or getattr(result, "data", None) is None:
        return True
    return any(err.path is not None and len(err.path) == 1 for err in result.errors or [])


class TransactionExtension(SchemaExtension):
    """Opens the operation's transaction scoped to the caller's organisation,
    commits it when the operation ends without errors, then drains what the
    operation asked for after commit (jobs, live announcements: after_commit.py)."""

    async def on_execute(self) -> AsyncIterator[None]:
        ctx: Context = self.execution_context.context
        # Subscriptions live long and read nothing from the database: no transaction.
        if ctx.principal is None or self.execution_context.operation_type is SUBSCRIPTION:
            yield
            return
        async with ctx.sessionmaker() as session:
            transaction = await session.begin()
            await set_tenant(session, ctx.principal.org_id)
            ctx.session = session
            try:
                yield
            finally:
                ctx.session = None
                after_commit = AfterCommit.take(session)
                if _failed(self.execution_context.result):
                    await transaction.rollback()
                    after_commit = AfterCommit()  # what it asked for never happened
                else:
                    await transaction.commit()
        await after_commit.drain(ctx.queue, ctx.live)
