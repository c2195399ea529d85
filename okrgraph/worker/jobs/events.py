"""The event dispatch job: the outbox's new events become webhook deliveries and
notifications, each consumer in transactions of its own (one never waits for, nor
fails with, the other's work)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.notifications.triggers import notify_events
from okrgraph.domain.outbox.after_commit import AfterCommit, unit_of_work
from okrgraph.domain.outbox.consumers import BATCH, NOTIFIER, WEBHOOKS, try_lock_consumer
from okrgraph.domain.outbox.jobs import Dispatch
from okrgraph.domain.webhooks.dispatch import dispatch_events as dispatch

# Batches per consumer and job; the rest is the next job's (asked for by the next
# event or the relay).
MAX_ROUNDS = 20


async def dispatch_events(ctx: dict[str, Any], org_id: str) -> dict[str, int]:
    """Dispatch every event of the organisation no dispatch has taken, then tell people
    of every event the notifier has not taken (idempotent: each consumer claims each
    event once; each delivery and notification is written once)."""
    org = uuid.UUID(str(org_id))
    totals = {"events": 0, "deliveries": 0, "notified_events": 0, "notifications": 0}

    async def webhooks(session: AsyncSession) -> int:
        done = await dispatch(session, org)
        totals["events"] += done.events
        totals["deliveries"] += done.deliveries
        return done.events

    async def notifier(session: AsyncSession) -> int:
        told = await notify_events(session, org, now=ctx.get("now"))
        totals["notified_events"] += told.events
        totals["notifications"] += told.notifications
        return told.events

    failures = []
    for name, consumer in ((WEBHOOKS, webhooks), (NOTIFIER, notifier)):
        try:
            await _drain(ctx, org, name, consumer)
        except Exception as exc:  # the other consumer still runs; the job fails after
            failures.append(exc)
    if failures:
        raise failures[0]
    return totals


async def _drain(
    ctx: dict[str, Any],
    org: uuid.UUID,
    name: str,
    consume: Callable[[AsyncSession], Awaitable[int]],
) -> None:
    """Rounds of one consumer, each its own transaction, until a batch is not full.

    One job of the organisation per consumer at a time: a job whose consumer is busy
    in another asks for one in the next window and leaves (as the roll-up does).
    Two at once would claim the same events, the second waiting on each of the
    first's rows, then scanning again: a job per 50 ms window piled up a dozen of
    them, 1-7 s each, beside the roll-up (issue 11, 300k key results)."""
    for _ in range(MAX_ROUNDS):
        async with unit_of_work(ctx["sessionmaker"], org, ctx.get("redis")) as session:
            if not await try_lock_consumer(session, org, name):
                AfterCommit.of(session).request(Dispatch(org))
                return
            taken = await consume(session)
        if taken < BATCH:
            break
