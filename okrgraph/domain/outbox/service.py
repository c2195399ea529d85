"""The transactional outbox: events written with the change, consumed after commit.

An event whose payload carries `recalc` asks for the scores around what it
names to be recomputed:

    {"recalc": {"key_results": [...], "objectives": [...], "cycles": [...],
                "kpis": [...], "written": [...]}}

(all lists optional, ids as strings; `cycles` names every node of a cycle;
`written` carries scores the change wrote itself, for the score job to
announce; scores.requests decides what a change names). The recalculation
job claims those events (FOR UPDATE SKIP LOCKED), recomputes, and sets `processed_at`; the
relay sweeps the ones left pending. Events without `recalc` (e.g.
`score.changed`) are left to their own consumers: `processed_at` marks
only what the score pipeline consumed. `emit` also registers the event's follow-up
job in the transaction's after-commit buffer (`follow_ups_of`, after_commit.py).
Events every consumer is done with are
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

from okrgraph.domain import clock
from okrgraph.domain.models import OutboxEvent
from okrgraph.domain.models.enums import SubjectType
from okrgraph.domain.outbox.after_commit import AfterCommit, FollowUp
from okrgraph.domain.outbox.jobs import Dispatch, Recalculation

CHECKIN_CREATED = "checkin.created"
KPI_MEASURED = "kpi.measured"
SCORE_CHANGED = "score.changed"
ROLLUP_RETRY = "rollup.retry"  # the roll-up asking itself again (scores/rollup.py)
# Bookkeeping of the pipeline, never sent to integrations.
INTERNAL_EVENT_TYPES = frozenset({ROLLUP_RETRY})


def recalc_payload(
    *,
    key_result_ids: Iterable[uuid.UUID] = (),
    objective_ids: Iterable[uuid.UUID] = (),
    kpi_ids: Iterable[uuid.UUID] = (),
    cycle_ids: Iterable[uuid.UUID] = (),
    written: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The `recalc` part of a payload: what changed, for the job to roll up."""
    out: dict[str, Any] = {}
    for key, ids in (
        ("key_results", key_result_ids),
        ("objectives", objective_ids),
        ("cycles", cycle_ids),
        ("kpis", kpi_ids),
    ):
        values = sorted({str(i) for i in ids})
        if values:
            out[key] = values
    if written:
        out["written"] = list(written)
    return out


async def emit(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    type: str,
    subject_type: SubjectType | None = None,
    subject_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OutboxEvent:
    """Add an outbox event to the session (the caller's transaction commits it) and
    register its follow-up job to run once that transaction has committed."""
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
    for follow_up in follow_ups_of(event):
        AfterCommit.of(session).request(follow_up)
    return event


def follow_ups_of(event: OutboxEvent) -> list[FollowUp]:
    """What consumes an event once committed: a recalculation for one asking for it,
    and the dispatch to the other consumers (webhooks) for every event not internal."""
    out: list[FollowUp] = []
    if "recalc" in event.payload:
        out.append(Recalculation(event.org_id))
    if event.type not in INTERNAL_EVENT_TYPES:
        out.append(Dispatch(event.org_id))
    return out


@dataclass
class Claimed:
    """Pending recalculation events of one organisation, locked by this transaction."""

    event_ids: list[uuid.UUID] = field(default_factory=list)
    key_result_ids: set[uuid.UUID] = field(default_factory=set)
    objective_ids: set[uuid.UUID] = field(default_factory=set)
    kpi_ids: set[uuid.UUID] = field(default_factory=set)
    cycle_ids: set[uuid.UUID] = field(default_factory=set)
    written: list[Any] = field(default_factory=list)  # scores the changes wrote themselves
    through: datetime | None = None  # created_at of the newest claimed event
    events: list[Claimed] = field(default_factory=list)  # each event on its own

    def add(self, other: Claimed) -> None:
        self.event_ids.extend(other.event_ids)
        self.key_result_ids |= other.key_result_ids
        self.objective_ids |= other.objective_ids
        self.kpi_ids |= other.kpi_ids
        self.cycle_ids |= other.cycle_ids
        self.written.extend(other.written)
        if other.through is not None:
            self.through = max(other.through, self.through or other.through)


async def recalc_pending(session: AsyncSession, org_id: uuid.UUID) -> bool:
    """Whether a committed change waits for the score pipeline (every change to what
    scores are made of names its subjects in an event's `recalc`, DESIGN.md section 4)."""
    pending = text(
        "SELECT EXISTS (SELECT 1 FROM outbox_events WHERE org_id = CAST(:org AS uuid)"
        " AND processed_at IS NULL AND payload ? 'recalc')"
    )
    return bool(await session.scalar(pending, {"org": org_id}))


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
            cycle_ids=set(_ids(recalc.get("cycles"))),
            written=_written(recalc),
            through=created_at,
        )
        claimed.add(one)
        claimed.events.append(one)
    return claimed


def _written(recalc: Any) -> list[Any]:
    written = recalc.get("written") if isinstance(recalc, dict) else None
    return written if isinstance(written, list) else []


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
    The function compares with the database's clock while services stamp events
    with okrgraph's (`clock.now()`), so the age is moved by the clock's offset.
    """
    rows = await session.execute(
        text("SELECT okr_orgs_with_pending_recalc(CAST(:age AS interval))"),
        {"age": older_than - clock.offset()},
    )
    return [r[0] for r in rows]


async def all_org_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every organisation (SECURITY DEFINER okr_organization_ids(): no tenant needed)."""
    return [r[0] for r in await session.execute(text("SELECT okr_organization_ids()"))]


async def consume_all_pending(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> Claimed:
    """Mark every pending recalculation event processed: how many (`event_ids`), the
    newest created_at (`through`) and the scores they wrote themselves (`written`).

    For a full pass: it recomputes from the logs in statements that start after
    this one, so it covers every event committed before it. Later events stay
    pending for the next incremental job.
    """
    rows = await session.execute(
        text(
            """
            UPDATE outbox_events SET processed_at = :now
            WHERE org_id = CAST(:org AS uuid) AND processed_at IS NULL AND payload ? 'recalc'
            RETURNING id, created_at, payload -> 'recalc' -> 'written' AS written
            """
        ),
        {"org": org_id, "now": now},
    )
    consumed = Claimed()
    for event_id, created_at, written in sorted(rows, key=lambda r: (r.created_at, r.id)):
        consumed.add(
            Claimed(
                event_ids=[event_id],
                written=written if isinstance(written, list) else [],
                through=created_at,
            )
        )
    return consumed
