"""The outbox relay: a sweep that enqueues what an API process could not.

After commit the API enqueues a recalculation; when Redis was down (or the
process died between commit and enqueue) the event waits in the outbox. Every
run of this cron enqueues a recalculation for each organisation whose events
have waited longer than `STALE_AFTER`, so a missed run is made up by the
next one and nothing committed is left behind.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from okrgraph.domain.outbox.consumers import NOTIFIER, WEBHOOKS, orgs_with_unclaimed
from okrgraph.domain.outbox.jobs import Dispatch, full_recalculation_job, recalculation_job
from okrgraph.domain.outbox.service import all_org_ids, orgs_with_pending_recalc

STALE_AFTER = timedelta(seconds=2)
# Statuses follow the clock (expected progress grows): a regular full pass
# moves the ones nothing else touched, and repairs any drift.
REFRESH_PERIOD_S = 600


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Enqueue a recalculation per organisation with stale pending events; returns how many."""
    async with ctx["sessionmaker"]() as session, session.begin():
        orgs = await orgs_with_pending_recalc(session, ctx.get("stale_after", STALE_AFTER))
    for org in orgs:
        name, kwargs = recalculation_job(org)
        await ctx["redis"].enqueue_job(name, **kwargs)
    return len(orgs)


async def relay_events(ctx: dict[str, Any]) -> int:
    """Enqueue a dispatch per organisation with events the webhooks consumer or the
    notifier has not taken for longer than `STALE_AFTER` (a follow-up lost with
    Redis); how many."""
    stale_after = ctx.get("stale_after", STALE_AFTER)
    orgs: set[uuid.UUID] = set()
    async with ctx["sessionmaker"]() as session, session.begin():
        for consumer in (WEBHOOKS, NOTIFIER):
            orgs.update(await orgs_with_unclaimed(session, consumer, stale_after))
    for org in sorted(orgs):
        name, kwargs = Dispatch(org).job()
        await ctx["redis"].enqueue_job(name, **kwargs)
    return len(orgs)


async def refresh_scores(ctx: dict[str, Any]) -> int:
    """Enqueue a full recalculation of every organisation, once per period."""
    async with ctx["sessionmaker"]() as session, session.begin():
        orgs = await all_org_ids(session)
    for org in orgs:
        name, kwargs = full_recalculation_job(org, period_s=REFRESH_PERIOD_S)
        await ctx["redis"].enqueue_job(name, **kwargs)
    return len(orgs)
