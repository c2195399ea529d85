"""closeCycle of a large cycle runs in the worker, with its progress kept for the API.

`request_close` is what the API calls: a dry run, or a cycle of at most
`ASYNC_CLOSE_OBJECTIVES` graded objectives, closes at once (closing.py); a
larger one becomes a `CloseJob` (QUEUED) whose job the transaction asks for
after commit (`RunClose`, the after-commit follow-ups like every other job; the
relay re-enqueues a QUEUED one whose enqueue was lost). The cycle keeps its
state until the close commits.

`run_close_job` (the worker's job) claims the job (RUNNING, committed), brings
the organisation's scores current in a transaction of its own (a full
recalculation as the score job runs it: derived numbers, kept if the close then
fails), then closes the cycle in one transaction that also marks the job DONE
with its result: the close is all or nothing. Both transactions run on one
connection holding the organisation's roll-up lock from before the first to
after the second, so no roll-up runs between them: with no change committed
meanwhile (no recalculation event pending), the close does not recalculate again.
Its progress (phase, counts) is written in short transactions of their own, so
the API sees it while the close runs.
A rerun after a crash finds RUNNING and closes again from scratch (nothing of
the crashed attempt was committed); one after the commit finds DONE and does
nothing; two at once queue on the roll-up lock (or the cycle's) and the second
finds DONE. A close that fails rolls back whole and the job is FAILED with why.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain import clock
from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.carry_over import CarryOverPolicy
from okrgraph.domain.cycles.closing import (
    Closing,
    Progress,
    announce_changes,
    check_closable,
    close_cycle,
    locked_cycle,
)
from okrgraph.domain.cycles.next_cycle import next_cycle_for
from okrgraph.domain.errors import Conflict, DomainError, ErrorCode
from okrgraph.domain.models import CloseJob, Objective
from okrgraph.domain.models.enums import (
    CloseJobState,
    ClosePhase,
    ObjectiveState,
    OrgRole,
    SubjectType,
)
from okrgraph.domain.outbox.after_commit import AfterCommit, Job, unit_of_work
from okrgraph.domain.scores.service import full_recalculation, scores_lock_key

log = logging.getLogger(__name__)

# A close of more graded objectives than this runs in the worker (closeCycle returns
# at once); a smaller one, and every dry run, in the request.
ASYNC_CLOSE_OBJECTIVES = 500
CLOSE_CYCLE_JOB = "close_cycle_job"
CLOSE_REQUESTED = "cycle.close_requested"
# The close's statements each write up to every row of a cycle: more than the app's
# per-statement timeout allows at scale; the job's own timeout still bounds them.
JOB_STATEMENT_TIMEOUT_S = 280
LIVE = (CloseJobState.QUEUED, CloseJobState.RUNNING)
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a NOWAIT lock another transaction holds


@dataclass(frozen=True)
class RunClose:
    """A committed CloseJob asks for its run (one arq job per CloseJob)."""

    org_id: uuid.UUID
    job_id: uuid.UUID

    def job(self) -> Job:
        return run_close_job_request(self.org_id, self.job_id)


def run_close_job_request(org_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    return Job(
        CLOSE_CYCLE_JOB,
        {"org_id": str(org_id), "job_id": str(job_id), "_job_id": f"close:{job_id}"},
    )


async def request_close(
    session: AsyncSession,
    principal: Principal,
    cycle_id: uuid.UUID,
    *,
    dry_run: bool = False,
    carry_over: CarryOverPolicy = CarryOverPolicy.CARRY_REMAINDER,
    next_cycle_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Closing | CloseJob:
    """Close the cycle now (a dry run, or a small cycle), or queue its close for the
    worker (more than ASYNC_CLOSE_OBJECTIVES graded objectives) and return the job."""
    require_admin(principal)
    options: dict[str, Any] = {"carry_over": carry_over, "next_cycle_id": next_cycle_id}
    if dry_run:
        return await close_cycle(session, principal, cycle_id, dry_run=True, now=now, **options)
    cycle = await locked_cycle(session, cycle_id)  # two requests at once: one job
    live = await live_job(session, cycle.id)
    if live is not None:
        raise Conflict(
            f"Cycle {cycle.name} is being closed already (job {live.state.value}).",
            ErrorCode.CONFLICT,
        )
    objectives = await _graded_count(session, cycle.id)
    if objectives <= ASYNC_CLOSE_OBJECTIVES:
        return await close_cycle(session, principal, cycle_id, now=now, **options)
    check_closable(cycle)
    if next_cycle_id is not None:  # refused now rather than by the job (a given cycle)
        await next_cycle_for(session, principal, cycle, next_cycle_id)
    job = CloseJob(
        org_id=principal.org_id,
        id=uuid.uuid4(),
        cycle_id=cycle.id,
        state=CloseJobState.QUEUED,
        carry_over=carry_over.value,
        next_cycle_id=next_cycle_id,
        requested_by_person_id=principal.person_id,
        requested_by_token_id=principal.token_id,
        objectives=objectives,
    )
    session.add(job)
    await session.flush()
    summary = {"job_id": job.id, "objectives": objectives, "carry_over": carry_over.value}
    record_audit(session, principal, CLOSE_REQUESTED, SubjectType.CYCLE, cycle.id, summary)
    AfterCommit.of(session).request(RunClose(principal.org_id, job.id))
    return job


async def live_job(session: AsyncSession, cycle_id: uuid.UUID) -> CloseJob | None:
    """The cycle's QUEUED or RUNNING close job, if any."""
    stmt = select(CloseJob).where(CloseJob.cycle_id == cycle_id, CloseJob.state.in_(LIVE))
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_jobs(
    session: AsyncSession, cycle_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CloseJob]:
    """Each cycle's newest close job, for those that ever had one (one statement)."""
    stmt = (
        select(CloseJob)
        .where(CloseJob.cycle_id.in_(cycle_ids))
        .ext(distinct_on(CloseJob.cycle_id))
        .order_by(CloseJob.cycle_id, CloseJob.created_at.desc(), CloseJob.id.desc())
    )
    return {job.cycle_id: job for job in (await session.execute(stmt)).scalars()}


async def _graded_count(session: AsyncSession, cycle_id: uuid.UUID) -> int:
    """How many objectives a close of the cycle grades (neither DRAFT nor CANCELLED)."""
    stmt = select(func.count()).where(
        Objective.cycle_id == cycle_id,
        Objective.state.not_in([ObjectiveState.DRAFT, ObjectiveState.CANCELLED]),
    )
    return int((await session.execute(stmt)).scalar_one())


def _principal(job: CloseJob) -> Principal:
    """Who asked, with the authority they asked with (an admin: closeCycle requires it)."""
    person = job.requested_by_person_id
    return Principal(
        org_id=job.org_id,
        token_id=job.requested_by_token_id,
        scopes=frozenset({"admin"}),
        person_id=person,
        org_role=OrgRole.ADMIN if person is not None else None,
    )


async def run_close_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    job_id: uuid.UUID,
    queue: Any = None,
    *,
    now: datetime | None = None,
    observe: Progress | None = None,
) -> CloseJobState | None:
    """Run a queued close (idempotent, see the module's docstring); the job's state
    after this run (None: no such job). `observe` is told each phase too, once it is
    committed (bench/close_cycle.py times them)."""
    now = now or clock.now()  # one instant for the recalculation and the close
    async with unit_of_work(sessionmaker, org_id) as session:
        job = await session.get(CloseJob, (org_id, job_id), with_for_update=True)
        if job is None or job.state not in LIVE:
            return job.state if job else None
        job.state, job.started_at, job.phase = CloseJobState.RUNNING, clock.now(), None
        job.attempts += 1
        principal, cycle_id = _principal(job), job.cycle_id
        policy, next_cycle_id = CarryOverPolicy(job.carry_over), job.next_cycle_id
    progress = _reporter(sessionmaker, org_id, job_id, observe)
    try:
        await progress(ClosePhase.RECALCULATING.value, {})
        close = partial(
            _close_in_job, principal, job_id, cycle_id, policy, next_cycle_id, queue, now, progress
        )
        try:
            async with _holding_scores(sessionmaker, org_id) as held:
                await _bring_scores_current(held, org_id, queue, now)
                return await close(held, scores_held=True)
        except _CycleBusy:
            # Whoever holds the cycle (a dry run, the cron's close) may be waiting for
            # the roll-up lock held here: let it go, then wait for the cycle as usual.
            return await close(sessionmaker, scores_held=False)
    except DomainError as exc:  # the close refused (closed meanwhile, a bad target, ...)
        await _fail(sessionmaker, org_id, job_id, exc.message)
    except Exception as exc:
        log.exception("close job %s of organisation %s failed", job_id, org_id)
        await _fail(sessionmaker, org_id, job_id, f"Internal error ({type(exc).__name__}).")
    return CloseJobState.FAILED


class _CycleBusy(Exception):
    """Another transaction holds the cycle's row (see run_close_job)."""


async def _close_in_job(
    principal: Principal,
    job_id: uuid.UUID,
    cycle_id: uuid.UUID,
    policy: CarryOverPolicy,
    next_cycle_id: uuid.UUID | None,
    queue: Any,
    now: datetime,
    progress: Progress,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    scores_held: bool,
) -> CloseJobState | None:
    """The close and the job's DONE in one transaction (the state the job ends in).
    With `scores_held` (see close_cycle), a cycle another transaction holds is
    `_CycleBusy` rather than waited for."""
    async with unit_of_work(sessionmaker, principal.org_id, queue) as session:
        try:  # a second run waits for the first (at the roll-up lock, or here)
            await locked_cycle(session, cycle_id, nowait=scores_held)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise _CycleBusy from exc
            raise
        state = await session.scalar(select(CloseJob.state).where(CloseJob.id == job_id))
        if state is not CloseJobState.RUNNING:
            return state  # the run before this one finished it
        await session.execute(text(f"SET LOCAL statement_timeout = '{JOB_STATEMENT_TIMEOUT_S}s'"))
        closing = await close_cycle(
            session,
            principal,
            cycle_id,
            carry_over=policy,
            next_cycle_id=next_cycle_id,
            now=now,
            progress=progress,
            scores_held=scores_held,
        )
        await session.execute(
            update(CloseJob)
            .where(CloseJob.id == job_id)
            .values(
                state=CloseJobState.DONE,
                phase=None,
                result=closing.as_json(),
                objectives_graded=len(closing.objectives),
                key_results_frozen=closing.key_results_frozen,
                objectives_carried_over=closing.objectives_carried_over,
                key_results_carried_over=closing.key_results_carried_over,
                finished_at=clock.now(),
            )
        )
    return CloseJobState.DONE


@asynccontextmanager
async def _holding_scores(
    sessionmaker: async_sessionmaker[AsyncSession], org_id: uuid.UUID
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on one connection that holds the organisation's roll-up lock
    (lock_scores' key, at session level) until the block ends; their own
    lock_scores takes it again at once, anyone else's waits."""
    engine = sessionmaker.kw["bind"]
    key = {"key": scores_lock_key(org_id)}
    async with engine.connect() as conn:
        # waits as long as the job may (a roll-up holding it), not the app's timeout
        await conn.execute(text(f"SET LOCAL statement_timeout = '{JOB_STATEMENT_TIMEOUT_S}s'"))
        await conn.execute(text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"), key)
        await conn.commit()
        try:
            yield async_sessionmaker(**{**sessionmaker.kw, "bind": conn})
        finally:
            if conn.in_transaction():
                await conn.rollback()
            await conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), key)
            await conn.commit()


async def _bring_scores_current(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    queue: Any,
    now: datetime | None,
) -> None:
    """A full recalculation committed before the close, as the score job would run it.

    The close still makes its own (its frozen numbers are a full pass's of that
    moment), which then has (about) nothing to write. Without this, the close's
    grading rewrites rows its own transaction's pass had just written: PostgreSQL
    re-checks every foreign key of a row whose old version the same transaction
    wrote, and the pass's versions, not yet dead to anyone, fill the pages a HOT
    update needs (10k objectives, every score changed: grading 2.2 s -> 0.3 s).
    """
    async with unit_of_work(sessionmaker, org_id, queue) as session:
        result = await full_recalculation(session, org_id, now=now)
        announce_changes(session, org_id, result)


def _reporter(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    job_id: uuid.UUID,
    observe: Progress | None = None,
) -> Progress:
    """Writes the close's progress into its job, each report committed on its own."""

    async def report(phase: str, counts: dict[str, int]) -> None:
        async with unit_of_work(sessionmaker, org_id) as session:
            await session.execute(
                update(CloseJob)
                .where(CloseJob.id == job_id, CloseJob.state == CloseJobState.RUNNING)
                .values(phase=ClosePhase(phase), **counts)
            )
        if observe is not None:
            await observe(phase, counts)

    return report


async def _fail(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    job_id: uuid.UUID,
    error: str,
) -> None:
    async with unit_of_work(sessionmaker, org_id) as session:
        await session.execute(
            update(CloseJob)
            .where(CloseJob.id == job_id, CloseJob.state.in_(LIVE))
            .values(state=CloseJobState.FAILED, error=error[:500], finished_at=clock.now())
        )


async def queued_jobs(
    session: AsyncSession, older_than_s: float
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(org_id, job id) of the QUEUED jobs waiting longer than `older_than_s` (any tenant)."""
    rows = await session.execute(
        text("SELECT org_id, id FROM okr_queued_close_jobs(make_interval(secs => :s))"),
        {"s": older_than_s},
    )
    return [(row[0], row[1]) for row in rows]
