"""The outbox retention sweep (cron): prunes, organisation by organisation, the
events every consumer is done with and older than `OKR_OUTBOX_RETENTION_HOURS`
(domain/outbox/retention.py says who needs what). A sweep: a missed run leaves
more for the next one, and two workers running it at once skip each other's
rows."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from okrgraph.domain.config import settings
from okrgraph.domain.db import tenant_session
from okrgraph.domain.outbox.retention import BATCH, prune_batch
from okrgraph.domain.outbox.service import all_org_ids

log = logging.getLogger("okrgraph.worker")


async def prune_outbox(ctx: dict[str, Any]) -> int:
    """Delete the outbox events no consumer needs, past the retention period; how many."""
    sessionmaker = ctx["sessionmaker"]
    hours = ctx.get("outbox_retention_hours", settings.outbox_retention_hours)
    batch = ctx.get("outbox_prune_batch", BATCH)
    before = datetime.now(UTC) - timedelta(hours=hours)
    async with sessionmaker() as session, session.begin():
        orgs = await all_org_ids(session)
    total = 0
    for org_id in orgs:
        while True:
            async with tenant_session(sessionmaker, org_id) as session:
                deleted = await prune_batch(session, org_id, before, batch)
            total += deleted
            if deleted < batch:
                break
    if total:
        log.info("outbox retention: pruned %d event(s) older than %g h", total, hours)
    return total
