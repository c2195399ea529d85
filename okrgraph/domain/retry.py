"""Sending with retries: how long after a failed attempt the next one is due
(`RetrySchedule`), and the leased claim -> send -> record loop (`send_leased`).

One rule for every sender (webhooks, e-mail, Slack), each with its own delays:
after failed attempt n (1-based) the next is due `delays[n - 1]` later, +-`jitter`
so that a receiver coming back is not hit by every retry at once; once the delays
are used up (`max_attempts` attempts made) the sender gives up.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain import clock
from okrgraph.domain.db import tenant_session
from okrgraph.domain.models.enums import DeliveryStatus
from okrgraph.domain.outbox.after_commit import unit_of_work


@dataclass(frozen=True)
class RetrySchedule:
    delays: tuple[timedelta, ...]
    jitter: float = 0.2

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    @property
    def span(self) -> timedelta:
        """From the first attempt to the last, without jitter."""
        return sum(self.delays, timedelta())

    def after(self, attempt: int, rng: random.Random | None = None) -> timedelta | None:
        """The delay after failed attempt `attempt`, with jitter; None once the
        schedule is exhausted (give up)."""
        if attempt >= self.max_attempts:
            return None
        delay = self.delays[max(attempt, 1) - 1]
        return delay * (rng or random).uniform(1 - self.jitter, 1 + self.jitter)

    def after_failure(self, attempt: int, done: datetime) -> dict[str, Any]:
        """A row's new state after failed attempt `attempt` ended at `done`: FAILED and
        due again after the delay, or GAVE_UP once the schedule is used up."""
        delay = self.after(attempt)
        if delay is None:
            return {"status": DeliveryStatus.GAVE_UP}
        return {"status": DeliveryStatus.FAILED, "next_attempt_at": done + delay}


ClaimT = TypeVar("ClaimT")
OutcomeT = TypeVar("OutcomeT")


async def send_leased(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    now: datetime | None,
    *,
    claim: Callable[[AsyncSession, uuid.UUID, datetime, int], Awaitable[list[ClaimT]]],
    send: Callable[[ClaimT, datetime], Awaitable[OutcomeT]],
    record: Callable[[AsyncSession, list[tuple[ClaimT, OutcomeT]], datetime], Awaitable[None]],
    batch: int,
    max_batches: int,
    queue: Any = None,
) -> None:
    """The loop every sender runs, a batch at a time: `claim` leases due rows (counted
    as attempted, not due again before the lease ends) in a transaction that commits
    before any I/O; `send` runs outside any transaction, the batch at once; `record`
    writes the outcomes in a second transaction (its follow-ups drained after commit)
    with the time the sends ended. A worker that dies mid-send leaves its rows to come
    due again once the lease is over. `now` (default okrgraph's clock) decides what
    is due."""
    for _ in range(max_batches):
        at = now or clock.now()
        async with tenant_session(sessionmaker, org_id) as session:
            claims = await claim(session, org_id, at, batch)
        if not claims:
            return
        start = time.monotonic()
        outcomes = await asyncio.gather(*(send(c, at) for c in claims))
        done = at + timedelta(seconds=time.monotonic() - start)
        async with unit_of_work(sessionmaker, org_id, queue) as session:
            await record(session, list(zip(claims, outcomes, strict=True)), done)
        if len(claims) < batch:
            return
