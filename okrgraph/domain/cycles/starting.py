"""A cycle's start: KPI-driven key results take their start from their KPI.

DESIGN.md section 2: a KPI can be the measure of a key result, and the key
result's start is the KPI's value when the cycle starts. `take_kpi_starts` is
that step, for every ACTIVE cycle that has begun (by the organisation's date):
each KPI-driven key result whose start was not taken yet gets the KPI's value
at the cycle's first instant (the latest measurement at or before it, else the
first one after it) and `start_taken_at`. Guarded by `start_taken_at IS NULL`,
so it runs once per key result, whoever runs it: the hourly cycle sweep, or
`updateCycle` moving a cycle to ACTIVE. A value the key result's kind cannot
start from (an INCREASE already at or past its target) leaves the start as it
was, still marked taken; a KPI with no measurement yet is tried again later.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.models.enums import SubjectType
from okrgraph.domain.outbox.service import emit, recalc_payload
from okrgraph.domain.scores.queries import org_timezone

KPI_STARTS_TAKEN = "key_results.start_taken"

_TAKE = text(
    """
    WITH due AS (
        SELECT DISTINCT ON (k.id) k.id, k.kind, k.target_value, k.start_value, l.kpi_id,
               (c.starts_on::timestamp AT TIME ZONE CAST(:tz AS text)) AS started_at
        FROM key_results k
        JOIN objectives o ON o.org_id = k.org_id AND o.id = k.objective_id
        JOIN cycles c ON c.org_id = o.org_id AND c.id = o.cycle_id
        JOIN kpi_links l ON l.org_id = k.org_id AND l.key_result_id = k.id
        WHERE k.org_id = CAST(:org AS uuid) AND k.progress_driver = 'KPI'
          AND k.start_taken_at IS NULL AND k.final_score IS NULL
          AND c.state = 'ACTIVE' AND c.starts_on <= CAST(:today AS date)
          AND (CAST(:cycle AS uuid) IS NULL OR c.id = CAST(:cycle AS uuid))
        ORDER BY k.id, l.kpi_id
    ),
    valued AS (
        SELECT due.*, coalesce(
            (SELECT m.value FROM kpi_measurements m
             WHERE m.org_id = CAST(:org AS uuid) AND m.kpi_id = due.kpi_id
               AND m.measured_at <= due.started_at
             ORDER BY m.measured_at DESC, m.recorded_at DESC, m.id DESC LIMIT 1),
            (SELECT m.value FROM kpi_measurements m
             WHERE m.org_id = CAST(:org AS uuid) AND m.kpi_id = due.kpi_id
             ORDER BY m.measured_at, m.recorded_at, m.id LIMIT 1)
        ) AS value
        FROM due
    )
    UPDATE key_results k
    SET start_value = CASE
            WHEN (v.kind = 'INCREASE' AND v.target_value IS NOT NULL AND v.target_value <= v.value)
              OR (v.kind = 'DECREASE' AND v.target_value IS NOT NULL AND v.target_value >= v.value)
            THEN k.start_value ELSE v.value END,
        start_taken_at = CAST(:now AS timestamptz)
    FROM valued v
    WHERE k.org_id = CAST(:org AS uuid) AND k.id = v.id AND v.value IS NOT NULL
      AND k.start_taken_at IS NULL
    RETURNING k.id, v.start_value AS old_start, k.start_value AS new_start
    """
)


async def take_kpi_starts(
    session: AsyncSession, principal: Principal, now: datetime, *, cycle_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Take the start of every due KPI-driven key result (of `cycle_id`, or of every
    ACTIVE cycle begun by the organisation's date at `now`); returns the key results
    whose start changed."""
    tz = await org_timezone(session, principal.org_id)
    today = now.astimezone(tz).date()
    rows = (
        await session.execute(
            _TAKE,
            {"org": principal.org_id, "tz": str(tz), "today": today, "now": now, "cycle": cycle_id},
        )
    ).all()
    moved = [r.id for r in rows if r.new_start != r.old_start]
    for r in rows:
        record_audit(
            session,
            principal,
            KPI_STARTS_TAKEN,
            SubjectType.KEY_RESULT,
            r.id,
            {"start": [r.old_start, r.new_start]},
        )
    if moved:  # their scores move with their start: the roll-up's to recompute
        await emit(
            session,
            org_id=principal.org_id,
            type=KPI_STARTS_TAKEN,
            payload={"recalc": recalc_payload(key_result_ids=moved)},
            now=now,
        )
    await session.flush()
    return moved
