"""Score jobs: roll up what the outbox says changed, or a whole organisation.

Both commit before they publish: a subscriber of `okr:org:<id>:progress`
that reads after a message sees the numbers it announced.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.messages import ProgressChanged, ScoreChange
from okrgraph.domain.outbox.after_commit import AfterCommit, unit_of_work
from okrgraph.domain.outbox.jobs import Dispatch, Recalculation
from okrgraph.domain.scores import pending_events, service

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
        async with unit_of_work(ctx["sessionmaker"], org, queue) as session:
            result = await pending_events.process_pending_events(session, org, wait=queue is None)
            if result.busy:
                AfterCommit.of(session).request(Recalculation(org))
            else:
                announce(session, org, result.changes, result.through)
        if result.busy:
            totals["deferred"] = 1
            break
        totals["rounds"] += 1
        totals["events"] += result.events
        totals["changes"] += len(result.changes)
        if result.events == 0:  # re-checked after commit: nothing left pending
            break
    return totals


async def full_recalculation(ctx: dict[str, Any], org_id: str) -> dict[str, int]:
    """Recompute everything of the organisation from its logs (repairs drift)."""
    org = uuid.UUID(str(org_id))
    async with unit_of_work(ctx["sessionmaker"], org, ctx.get("redis")) as session:
        result = await service.full_recalculation(session, org)
        announce(session, org, result.changes, result.through)
    return {"nodes": result.nodes, "changes": len(result.changes), "events": result.events}


def announce(
    session: AsyncSession,
    org: uuid.UUID,
    changes: list[ScoreChange],
    through: datetime | None = None,
) -> None:
    """Announce the changes for live updates once they are committed; best effort
    (the outbox has them as `score.changed` events).

    `through`: every change recorded up to that time is included in the numbers.
    """
    if changes:
        message = ProgressChanged(org, tuple(changes), through)
        AfterCommit.of(session).announce(message)
        # The roll-up wrote their `score.changed` events in SQL, not through emit():
        # the webhooks and the notifier take them now rather than at the relay's sweep.
        AfterCommit.of(session).request(Dispatch(org))
