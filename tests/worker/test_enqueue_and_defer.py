"""The API's after-commit enqueue and the job's busy -> defer branch, as production
runs them: a real arq pool on Redis, a real arq worker, no relay sweep to make up
for a lost job."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.api.app import create_app
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.db import tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.outbox.after_commit import AfterCommit, savepoint, unit_of_work
from okrgraph.domain.outbox.jobs import RECALCULATE_SCORES
from okrgraph.domain.scores.service import lock_scores
from okrgraph.worker.jobs.scores import recalculate_scores
from tests.worker.conftest import Committed, build_company
from tests.worker.test_jobs import (
    admin_token,
    check_in,
    check_in_over_http,
    count,
    pending,
    progress,
    run_worker_burst,
)

# Bounds a job that would wait for the lock instead of deferring (a hang, not a timing).
HANG_S = 30


async def _recalc_jobs(pool: ArqRedis, org: uuid.UUID) -> list[str]:
    return [
        job.job_id or ""
        for job in await pool.queued_jobs()
        if job.function == RECALCULATE_SCORES and job.kwargs.get("org_id") == str(org)
    ]


async def test_a_check_in_over_http_is_enqueued_after_commit(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    token = await admin_token(sm, c.org_id)
    app = create_app(sessionmaker=sm, queue=arq_pool)
    async with app.router.lifespan_context(app):
        response = await check_in_over_http(app, token, c.person_krs[0], 100)
    assert response.json()["data"]["checkIn"]["__typename"] == "CheckInSuccess", response.text
    # the API itself asked for the roll-up (nothing here runs the relay)
    assert len(await _recalc_jobs(arq_pool, c.org_id)) == 1
    assert await count(sm, c.org_id, pending()) == 1
    await run_worker_burst(arq_pool, sm)
    assert await count(sm, c.org_id, pending()) == 0
    assert await progress(sm, c.org_id, c.person) == pytest.approx(0.5)
    assert await progress(sm, c.org_id, c.company) == pytest.approx(0.25)  # (0 + 2*0.25 + 0.5)/4


async def test_a_busy_organisation_defers_the_job_to_the_next_window(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    await check_in(sm, c.org_id, c.person_krs[0], 100)
    assert await count(sm, c.org_id, pending()) == 1
    ctx = {"sessionmaker": sm, "redis": arq_pool}  # as the arq worker passes it
    async with tenant_session(sm, c.org_id) as holder:
        await lock_scores(holder, c.org_id)  # another roll-up of the org is running
        totals = await asyncio.wait_for(recalculate_scores(ctx, str(c.org_id)), HANG_S)
        assert totals == {"rounds": 0, "events": 0, "changes": 0, "deferred": 1}
        assert len(await _recalc_jobs(arq_pool, c.org_id)) == 1  # the next window's job
        assert await count(sm, c.org_id, pending()) == 1  # nothing claimed meanwhile
    # the other roll-up is done: the deferred job, run by a real worker, converges
    await run_worker_burst(arq_pool, sm)
    assert await count(sm, c.org_id, pending()) == 0
    assert await progress(sm, c.org_id, c.person) == pytest.approx(0.5)


async def test_jobs_are_enqueued_after_commit_and_dropped_with_a_rollback(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    """The after-commit buffer: a check-in's job reaches arq only once its transaction
    has committed; one rolled back (whole, or its savepoint) enqueues nothing and
    leaves no event."""
    sm = committed.sessionmaker
    c = await build_company(sm)

    class Refused(Exception):
        pass

    async def refused_transaction() -> None:
        async with unit_of_work(sm, c.org_id, arq_pool) as session:
            await record_check_in(
                session,
                principal=system_principal(c.org_id),
                key_result_id=c.person_krs[0],
                value=1,
            )
            raise Refused

    async def refused_savepoint(session: AsyncSession) -> None:
        async with savepoint(session):
            await record_check_in(
                session,
                principal=system_principal(c.org_id),
                key_result_id=c.person_krs[0],
                value=2,
            )
            raise Refused

    with pytest.raises(Refused):
        await refused_transaction()
    async with unit_of_work(sm, c.org_id, arq_pool) as session:
        with pytest.raises(Refused):
            await refused_savepoint(session)
        assert AfterCommit.of(session).follow_ups == []
    assert await _recalc_jobs(arq_pool, c.org_id) == []
    assert await count(sm, c.org_id, pending()) == 0

    async with unit_of_work(sm, c.org_id, arq_pool) as session:
        for value in (30, 40):  # two events, one job
            await record_check_in(
                session,
                principal=system_principal(c.org_id),
                key_result_id=c.person_krs[0],
                value=value,
            )
        await session.flush()
        assert await _recalc_jobs(arq_pool, c.org_id) == []  # not before commit
    assert len(await _recalc_jobs(arq_pool, c.org_id)) == 1
    assert await count(sm, c.org_id, pending()) == 2
