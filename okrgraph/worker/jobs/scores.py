"""Score jobs: roll up what the outbox says changed, or a whole organisation.

Both commit before they publish: a subscriber of `okr:org:<id>:progress`
that reads after a message sees the numbers it announced.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, cast

from okrgraph.domain.db import tenant_session
from okrgraph.domain.live import ProgressChanged, SubjectChange, SubjectType, progress_channel
from okrgraph.domain.outbox.jobs import recalculation_job
from okrgraph.domain.scores import pending_events, service
from okrgraph.domain.scores.changes import ScoreChange

log = logging.getLogger(__name__)

# Rounds of claim -> recompute -> commit per job; events arriving while a round
# runs are taken by the next round, the rest by the next window's job.
MAX_ROUNDS = 20


async def recalculate_scores(ctx: dict[str, Any], org_id: str) -> dict[str, int]:
    """Process every pending recalculation event of the organisation (idempotent).

    When another job of the organisation is rolling up, this one does not wait
    for it (holding a connection and a job slot): it asks for a job in the
    next window instead, which runs once the other is done, and returns.
    """
    org = uuid.UUID(str(org_id))
    totals = {"rounds": 0, "events": 0, "changes": 0}
    queue = ctx.get("redis")
    for _ in range(MAX_ROUNDS):
        async with tenant_session(ctx["sessionmaker"], org) as session:
            result = await pending_events.process_pending_events(session, org, wait=queue is None)
        if result.busy and queue is not None:
            name, kwargs = recalculation_job(org)
            await queue.enqueue_job(name, **kwargs)
            totals["deferred"] = 1
            break
        totals["rounds"] += 1
        totals["events"] += result.events
        totals["changes"] += len(result.changes)
        await publish(ctx, org, result.changes, result.through)
        if result.events == 0:  # re-checked after commit: nothing left pending
            break
    return totals


async def full_recalculation(ctx: dict[str, Any], org_id: str) -> dict[str, int]:
    """Recompute everything of the organisation from its logs (repairs drift)."""
    org = uuid.UUID(str(org_id))
    async with tenant_session(ctx["sessionmaker"], org) as session:
        result = await service.full_recalculation(session, org)
    await publish(ctx, org, result.changes, result.through)
    return {"nodes": result.nodes, "changes": len(result.changes), "events": result.events}


async def publish(
    ctx: dict[str, Any],
    org: uuid.UUID,
    changes: list[ScoreChange],
    through: datetime | None = None,
) -> None:
    """Announce committed changes for live updates; best effort (the outbox has them).

    `through`: every change recorded up to that time is included in the numbers.
    """
    if not changes or ctx.get("redis") is None:
        return
    message = ProgressChanged(org, tuple(subject_change(c) for c in changes), through)
    try:
        await ctx["redis"].publish(progress_channel(org), message.encode())
    except Exception:  # Redis down: score.changed events stay in the outbox
        log.warning("could not publish score changes of %s", org)


def subject_change(change: ScoreChange) -> SubjectChange:
    return SubjectChange(
        subject_type=cast(SubjectType, change.subject_type),
        subject_id=change.subject_id,
        value=change.value,
        status=change.status,
        previous_value=change.previous_value,
        previous_status=change.previous_status,
    )
