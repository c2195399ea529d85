"""What a transaction asks to happen once it has committed: jobs for the worker and
messages for live subscribers.

Every transaction that writes has one `AfterCommit` buffer, kept in its
session's `info`. `emit()` records the outbox event and registers the event's
follow-up job here; a service that ends access registers the announcement here.
Whoever owns the transaction (the API's `TransactionExtension`, the worker's
`unit_of_work`) drains the buffer after commit and drops it on rollback; a
savepoint rolled back (`savepoint`) takes its requests with it. Nothing here is
durable and nothing needs to be: the outbox row commits with the change, and
the worker's relay enqueues whatever a drain could not (a lost Redis, a process
that died between commit and drain; DESIGN.md section 4).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.db import set_tenant

log = logging.getLogger(__name__)

_KEY = "okrgraph.after_commit"
# Each Redis call made after commit waits at most this long (issue 12): a stalled
# Redis never holds the response of a committed change.
ENQUEUE_TIMEOUT_S = 1.0


class Job(NamedTuple):
    """An arq job: `ArqRedis.enqueue_job(name, **kwargs)`. Two requests with the same
    `_job_id` are one job (arq keeps the first)."""

    name: str
    kwargs: dict[str, Any]


class FollowUp(Protocol):
    """Work a commit asks for; hashable (two equal requests are one). Its job is
    made at drain time, after commit: a recalculation's coalescing window must be
    the one its change committed in (outbox/jobs.py)."""

    def job(self) -> Job: ...


class LiveMessage(Protocol):
    """A message for live subscribers (domain/live.py): where it goes, and as what."""

    @property
    def channel(self) -> str: ...

    def encode(self) -> str: ...


class Announcer(Protocol):
    """What delivers live messages: the API's LiveHub (here at once, and to every
    other process), or a Redis client's `publish`."""

    async def announce(self, message: Any) -> None: ...


@dataclass
class AfterCommit:
    follow_ups: list[FollowUp] = field(default_factory=list)
    messages: list[LiveMessage] = field(default_factory=list)

    @classmethod
    def of(cls, session: AsyncSession) -> AfterCommit:
        """The buffer of the session's transaction."""
        buffer = session.info.get(_KEY)
        if buffer is None:
            buffer = session.info[_KEY] = cls()
        return buffer

    @classmethod
    def take(cls, session: AsyncSession) -> AfterCommit:
        """Remove and return the session's buffer (empty if nothing was asked)."""
        return session.info.pop(_KEY, None) or cls()

    def request(self, follow_up: FollowUp) -> None:
        if follow_up not in self.follow_ups:
            self.follow_ups.append(follow_up)

    def announce(self, message: LiveMessage) -> None:
        self.messages.append(message)

    def mark(self) -> tuple[int, int]:
        return len(self.follow_ups), len(self.messages)

    def rollback_to(self, mark: tuple[int, int]) -> None:
        del self.follow_ups[mark[0] :]
        del self.messages[mark[1] :]

    async def drain(self, queue: Any, announcer: Announcer | None = None) -> None:
        """Hand the jobs to arq and the messages to their subscribers, each call
        within ENQUEUE_TIMEOUT_S; best effort (see the module's docstring).
        `queue`: an arq pool (ArqRedis), or None without Redis."""
        jobs = [f.job() for f in self.follow_ups]
        self.follow_ups = []
        messages, self.messages = self.messages, []
        for message in messages:
            if announcer is not None:
                await announcer.announce(message)
            elif queue is not None:
                await _publish(queue, message)
        if queue is None:
            return
        outage = _outage(queue)
        for job in jobs:
            if outage.skip():
                return
            try:
                await asyncio.wait_for(queue.enqueue_job(job.name, **job.kwargs), ENQUEUE_TIMEOUT_S)
            except Exception as exc:  # Redis down or stalled: the outbox relay's turn
                outage.failed(job.name, exc)
            else:
                outage.succeeded()


async def _publish(redis: Any, message: LiveMessage) -> None:
    try:
        await asyncio.wait_for(redis.publish(message.channel, message.encode()), ENQUEUE_TIMEOUT_S)
    except Exception as exc:  # best effort: the outbox holds what happened
        log.warning("could not publish on %s (%s)", message.channel, type(exc).__name__)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A savepoint whose after-commit requests are dropped with it when it rolls back."""
    buffer = AfterCommit.of(session)
    mark = buffer.mark()
    nested = await session.begin_nested()
    try:
        yield
    except BaseException:
        await nested.rollback()
        buffer.rollback_to(mark)
        raise
    await nested.commit()


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID | None,
    queue: Any = None,
    announcer: Announcer | None = None,
) -> AsyncIterator[AsyncSession]:
    """One transaction scoped to `org_id` that commits on success and then drains its
    after-commit buffer; on an error it rolls back and the buffer is dropped."""
    async with sessionmaker() as session:
        async with session.begin():
            await set_tenant(session, org_id)
            try:
                yield session
            except BaseException:
                AfterCommit.take(session)
                raise
        await AfterCommit.take(session).drain(queue, announcer)


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
