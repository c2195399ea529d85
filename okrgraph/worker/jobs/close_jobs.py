"""Closes of large cycles (domain/cycles/close_jobs.py): the job, and the relay that
enqueues a queued close whose after-commit enqueue was lost."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from okrgraph.domain.cycles.close_jobs import queued_jobs, run_close_job, run_close_job_request
from okrgraph.domain.models.enums import CloseJobState

STALE_AFTER_S = 2.0


async def close_cycle_job(ctx: dict[str, Any], org_id: str, job_id: str) -> str | None:
    """Close the job's cycle (idempotent); the job's state afterwards. `ctx["now"]`
    sets the close's clock (tests)."""
    now: datetime | None = ctx.get("now")
    state: CloseJobState | None = await run_close_job(
        ctx["sessionmaker"], uuid.UUID(org_id), uuid.UUID(job_id), ctx.get("redis"), now=now
    )
    return state.value if state else None


async def relay_close_jobs(ctx: dict[str, Any]) -> int:
    """Enqueue every close QUEUED for longer than STALE_AFTER_S (arq keeps one job per
    close: one still queued or running is not enqueued twice); how many."""
    async with ctx["sessionmaker"]() as session, session.begin():
        jobs = await queued_jobs(session, ctx.get("stale_after_s", STALE_AFTER_S))
    for org_id, job_id in jobs:
        name, kwargs = run_close_job_request(org_id, job_id)
        await ctx["redis"].enqueue_job(name, **kwargs)
    return len(jobs)
