"""Retention of the outbox: an event is deleted once every consumer is done with
it and it is older than the retention period (`OKR_OUTBOX_RETENTION_HOURS`).

The outbox has several consumers, each keeping its own progress through it, so
no consumer's bookkeeping is another's. Each one says here which events it
still needs, as a SQL condition over the row `e` of `outbox_events`; the sweep
deletes only old events that no consumer needs. A condition that is NULL
counts as needed (a consumer that can't tell keeps the event). The consumers
of this service are declared here (the sweep runs in processes that need not
import them); one added by a plugin or a test registers its condition with
`register_consumer`, and the sweep keeps what it has not taken without knowing
how it keeps track.

An event every consumer has taken (and no delivery names) is needed by nobody,
so it goes once old enough.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.outbox.service import INTERNAL_EVENT_TYPES


@dataclass(frozen=True)
class Consumer:
    """A reader of the outbox and the events it still needs."""

    name: str
    still_needs: str  # SQL boolean over `e` (a row of outbox_events); NULL counts as true


# The score pipeline marks what it consumed with `processed_at`: a recalculation
# event not yet processed is pending work, never pruned however old.
SCORES = Consumer("scores", "e.payload ? 'recalc' AND e.processed_at IS NULL")
# The webhook dispatcher needs what it has not taken yet (outbox/consumers.py), and a
# delivery names its event (the receiver's dedup key, and what a redelivery sends
# again): the event stays while its delivery log does.
WEBHOOKS = Consumer(
    "webhooks",
    f"(e.type NOT IN ({', '.join(repr(t) for t in sorted(INTERNAL_EVENT_TYPES))})"
    " AND NOT EXISTS (SELECT 1 FROM outbox_consumed c"
    " WHERE c.org_id = e.org_id AND c.consumer = 'webhooks' AND c.event_id = e.id))"
    " OR EXISTS (SELECT 1 FROM webhook_deliveries d"
    " WHERE d.org_id = e.org_id AND d.event_id = e.id)",
)
# The notifier (notifications/triggers.py) needs what it has not taken yet; what it
# made of an event (inbox items, sends) does not name the event.
NOTIFIER = Consumer(
    "notifier",
    f"e.type NOT IN ({', '.join(repr(t) for t in sorted(INTERNAL_EVENT_TYPES))})"
    " AND NOT EXISTS (SELECT 1 FROM outbox_consumed c"
    " WHERE c.org_id = e.org_id AND c.consumer = 'notifier' AND c.event_id = e.id)",
)
_consumers: dict[str, Consumer] = {c.name: c for c in (SCORES, WEBHOOKS, NOTIFIER)}

BATCH = 5000  # rows per statement: each batch is its own short transaction


def register_consumer(consumer: Consumer) -> None:
    """Add (or replace, by name) a consumer whose needs the sweep respects."""
    _consumers[consumer.name] = consumer


def consumers() -> list[Consumer]:
    return list(_consumers.values())


def _prune_sql() -> str:
    kept = " OR ".join(f"coalesce(({c.still_needs}), true)" for c in consumers()) or "false"
    return f"""
        WITH doomed AS (
            SELECT e.id FROM outbox_events e
            WHERE e.org_id = CAST(:org AS uuid) AND e.created_at < :before
              AND NOT ({kept})
            ORDER BY e.created_at
            LIMIT :batch
            FOR UPDATE SKIP LOCKED
        )
        DELETE FROM outbox_events o USING doomed
        WHERE o.org_id = CAST(:org AS uuid) AND o.id = doomed.id
        """


async def prune_batch(
    session: AsyncSession, org_id: uuid.UUID, before: datetime, batch: int = BATCH
) -> int:
    """Delete up to `batch` of the organisation's events created before `before`
    that no consumer needs; how many. Rows another transaction holds are skipped
    (the next sweep gets them)."""
    result = await session.execute(
        text(_prune_sql()), {"org": org_id, "before": before, "batch": batch}
    )
    return int(getattr(result, "rowcount", 0) or 0)
