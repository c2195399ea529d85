"""The event dispatch job: the outbox's new events become webhook deliveries."""

from __future__ import annotations

import uuid
from typing import Any

from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.domain.outbox.consumers import BATCH
from okrgraph.domain.webhooks.dispatch import dispatch_events as dispatch

# Batches per job; the rest is the next job's (asked for by the next event or the relay).
MAX_ROUNDS = 20


async def dispatch_events(ctx: dict[str, Any], org_id: str) -> dict[str, int]:
    """Dispatch every event of the organisation no dispatch has taken (idempotent:
    each event is claimed once, each delivery written once)."""
    org = uuid.UUID(str(org_id))
    totals = {"events": 0, "deliveries": 0}
    for _ in range(MAX_ROUNDS):
        async with unit_of_work(ctx["sessionmaker"], org, ctx.get("redis")) as session:
            done = await dispatch(session, org)
        totals["events"] += done.events
        totals["deliveries"] += done.deliveries
        if done.events < BATCH:
            break
    return totals
