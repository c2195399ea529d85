"""The transactional outbox: events written with the change, consumed after commit.

An event whose payload carries `recalc` asks for the scores around what it
names to be recomputed:

    {"recalc": {"key_results": [...], "objectives": [...], "kpis": [...]}}

(all lists optional, ids as strings). The recalculation job claims those
events (FOR UPDATE SKIP LOCKED), recomputes, and sets `processed_at`; the
relay sweeps the ones left pending. Events without `recalc` (e.g.
`score.changed`) are left to their own consumers: `processed_at` marks
only what the score pipeline consumed. Events every consumer is done with are
pruned once past the retention period (retention.py: each consumer declares
what it still needs).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import OutboxEvent

CHECKIN_CREATED = "checkin.created"
KPI_MEASURED = "kpi.measured"
SCORE_CHANGED = "score.changed"


def recalc_payload(
    *,
    key_result_ids: Iterable[uuid.UUID] = (),
    objective_ids: Iterable[uuid.UUID] = (),
    kpi_ids: Iterable[uuid.UUID] = (),
) -> dict[str, list[str]]:
    """The `recalc` part of a payload: what changed, for the job to roll up."""
    out: dict[str, list[str]] = {}
    for key, ids in (
        ("key_results", key_result_ids),
        ("objectives", objective_ids),
        ("kpis", kpi_ids),
    ):
        values = sorted({str(i) for i in ids})
        if values:
            out[key] = values
    return out


async def emit(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    type: str,
    subject_type: str | None = None,
    subject_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OutboxEvent:
    """Add an outbox event to the session (the caller's transaction commits it)."""
    event = OutboxEvent(
        org_id=org_id,
        id=uuid.uuid4(),
        type=type,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload or {},
    )
    if now is not None:
        event.created_at = now
    session.add(event)
    return event


@dataclass
class Claimed:
    """Pending recalculation events of one organisation, locked by this transaction."""

    event_ids: list[uuid.UUID] = field(default_factory=list)
    key_result_ids: set[uuid.UUID] = field(default_factory=set)
    objective_ids: set[uuid.UUID] = field(default_factory=set)
    kpi_ids: set[uuid.UUID] = field(default_factory=set)
    through: datetime | None = None  # created_at of the newest claimed event
    events: list[Claimed] = field(default_factory=list)  # each event on its own

    def add(self, other: Claimed) -> None:
        self.event_ids.extend(other.event_ids)
        self.key_result_ids |= other.key_result_ids
        self.objective_ids |= other.objective_ids
        self.kpi_ids |= other.kpi_ids
        if other.through is not None:
            self.through = max(other.through, self.through or other.through)


async def claim_recalc_events(session: AsyncSession, org_id: uuid.UUID, limit: int) -> Claimed:
    """Lock up to `limit` pending recalculation events, skipping ones another job holds."""
    rows = await session.execute(
        text(
            """
            SELECT id, payload -> 'recalc' AS recalc, created_at FROM outbox_events
            WHERE org_id = CAST(:org AS uuid) AND processed_at IS NULL AND payload ? 'recalc'
            ORDER BY created_at
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
            """
        ),
        {"org": org_id, "limit": limit},
    )
    claimed = Claimed()
    for event_id, recalc, created_at in rows:
        recalc = recalc if isinstance(recalc, dict) else {}
        one = Claimed(
            event_ids=[event_id],
            key_result_ids=set(_ids(recalc.get("key_results"))),
            objective_ids=set(_ids(recalc.get("objectives"))),
            kpi_ids=set(_ids(recalc.get("kpis"))),
            through=created_at,
        )
        claimed.add(one)
        claimed.events.append(one)
    return claimed


def _ids(values: Any) -> list[uuid.UUID]:
    if not isinstance(values, list):
        return []
    out = []
    for v in values:
        try:
            out.append(uuid.UUID(str(v)))
        except ValueError:
            continue  # a malformed id names nothing to recompute
    return out


async def mark_processed(
    session: AsyncSession, org_id: uuid.UUID, event_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    if not event_ids:
        return
    await session.execute(
        text(
            """
            UPDATE outbox_events SET processed_at = :now
            WHERE org_id = CAST(:org AS uuid) AND id = ANY(CAST(:ids AS uuid[]))
              AND processed_at IS NULL
            """
        ),
        {"org": org_id, "ids": list(event_ids), "now": now},
    )


async def mark_failed(
    session: AsyncSession, org_id: uuid.UUID, event_id: uuid.UUID, now: datetime, failure: str
) -> None:
    """Set a recalculation event aside: processed, with when and why it failed."""
    await session.execute(
        text(
            """
            UPDATE outbox_events SET processed_at = :now, failed_at = :now, failure = :failure
            WHERE org_id = CAST(:org AS uuid) AND id = CAST(:id AS uuid)
            """
        ),
        {"org": org_id, "id": event_id, "now": now, "failure": failure[:500]},
    )


async def orgs_with_pending_recalc(session: AsyncSession, older_than: timedelta) -> list[uuid.UUID]:
    """Organisations with recalculation events pending longer than `older_than`.

    Needs no tenant: goes through the SECURITY DEFINER function of migration 0002.
    """
    rows = await session.execute(
        text("SELECT okr_orgs_with_pending_recalc(CAST(:age AS interval))"),
        {"age": older_than},
    )
    return [r[0] for r in rows]


async def all_org_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every organisation (SECURITY DEFINER okr_organization_ids(): no tenant needed)."""
    return [r[0] for r in await session.execute(text("SELECT okr_organization_ids()"))]


async def consume_all_pending(
    session: AsyncSession, org_id: uuid.UUID, now: datetime
) -> tuple[int, datetime | None]:
    """Mark every pending recalculation event processed; (how many, newest created_at).

    For a full pass: it recomputes from the logs in statements that start after
    this one, so it covers every event committed before it. Later events stay
    pending for the next incremental job.
    """
    row = (
        await session.execute(
            text(
                """
                WITH consumed AS (
                    UPDATE outbox_events SET processed_at = :now
                    WHERE org_id = CAST(:org AS uuid) AND processed_at IS NULL
                      AND payload ? 'recalc'
                    RETURNING created_at
                )
                SELECT count(*), max(created_at) FROM consumed
                """
            ),
            {"org": org_id, "now": now},
        )
    ).one()
    return int(row[0]), row[1]
