"""Schema extensions: one tenant-scoped transaction per operation."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import OutboxEvent
from okrgraph.domain.outbox.jobs import recalculation_job
from okrgraph.schema.context import Context

log = logging.getLogger(__name__)
SUBSCRIPTION = OperationType.SUBSCRIPTION


def _note_recalc(ctx: Context, session: Session, _flush_context: Any) -> None:
    """A flushed outbox event asking for a roll-up: enqueue the job after commit."""
    if any(isinstance(o, OutboxEvent) and "recalc" in (o.payload or {}) for o in session.new):
        ctx.recalc_requested = True


def _failed(result: Any) -> bool:
    """Nothing is committed when the operation produced no data or a top-level
    field failed (an unexpected error inside a mutation, say)."""
    if result is None or getattr(result, "data", None) is None:
        return True
    return any(err.path is not None and len(err.path) == 1 for err in result.errors or [])


class TransactionExtension(SchemaExtension):
    """Opens the operation's transaction scoped to the caller's organisation,
    commits it when the operation ends without errors, then enqueues the jobs
    the operation asked for (the outbox already holds them durably)."""

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
            event.listen(session.sync_session, "after_flush", partial(_note_recalc, ctx))
            try:
                yield
            finally:
                ctx.session = None
                result = self.execution_context.result
                if _failed(result):
                    await transaction.rollback()
                    ctx.jobs_after_commit.clear()
                    ctx.announcements.clear()
                else:
                    await transaction.commit()
                    if ctx.recalc_requested:
                        ctx.jobs_after_commit.append(recalculation_job(ctx.principal.org_id))
        await self._announce(ctx)
        await self._enqueue(ctx)

    async def _announce(self, ctx: Context) -> None:
        announcements, ctx.announcements = ctx.announcements, []
        if ctx.live is None:
            return
        for message in announcements:
            await ctx.live.announce(message)

    async def _enqueue(self, ctx: Context) -> None:
        """Hand the committed operation's jobs to arq, each within ENQUEUE_TIMEOUT_S:
        a stalled or lost Redis never holds the response of a committed change. What
        is not enqueued still sits in the outbox, and the worker's relay cron
        enqueues it (DESIGN.md section 4)."""
        jobs, ctx.jobs_after_commit = ctx.jobs_after_commit, []
        if ctx.queue is None or not jobs:
            return
        outage = _outage(ctx.queue)
        for name, kwargs in jobs:
            if outage.skip():
                return
            try:
                await asyncio.wait_for(ctx.queue.enqueue_job(name, **kwargs), ENQUEUE_TIMEOUT_S)
            except Exception as exc:  # Redis down or stalled: the outbox relay's turn
                outage.failed(name, exc)
            else:
                outage.succeeded()


# Each Redis call on the request path waits at most this long (issue 12).
ENQUEUE_TIMEOUT_S = 1.0


class QueueOutage:
    """A Redis that fails to take jobs: logged once when it starts and once when it
    ends (not per request), and not asked again for RETRY_AFTER_S after a failure,
    so a stalled Redis costs one write the timeout, not every write."""

    RETRY_AFTER_S = 5.0

    def __init__(self) -> None:
        self.since: float | None = None
        self.retry_at = 0.0

    def skip(self) -> bool:
        return self.since is not None and time.monotonic() < self.retry_at

    def failed(self, job: str, exc: BaseException) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
            log.warning(
                "Redis did not take job %s (%s); jobs are left to the outbox relay "
                "until it does (logged once per outage)",
                job,
                type(exc).__name__,
            )
        self.retry_at = now + self.RETRY_AFTER_S

    def succeeded(self) -> None:
        if self.since is not None:
            log.warning("Redis takes jobs again after %.0f s", time.monotonic() - self.since)
            self.since = None


_OUTAGES: weakref.WeakKeyDictionary[Any, QueueOutage] = weakref.WeakKeyDictionary()


def _outage(queue: Any) -> QueueOutage:
    """The outage state of one arq pool (per pool, so apps and tests stay apart)."""
    outage = _OUTAGES.get(queue)
    if outage is None:
        outage = _OUTAGES[queue] = QueueOutage()
    return outage
