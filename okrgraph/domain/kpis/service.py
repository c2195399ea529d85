"""Writes on KPIs: idempotent bulk ingestion of measurements, latest value and health,
and moving the latest value into the key results that follow a KPI."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock, scoring
from okrgraph.domain.access import may_manage_team_kpis, require_write
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import Conflict, ErrorCode, Forbidden, NotFound, ValidationFailed
from okrgraph.domain.models import Kpi, KpiMeasurement
from okrgraph.domain.models.enums import Direction, Health, SubjectType
from okrgraph.domain.outbox.service import KPI_MEASURED
from okrgraph.domain.scores.requests import request_recalculation
from okrgraph.domain.validation import KEY, SHORT_TEXT, instant, number

CLOCK_SKEW = timedelta(minutes=5)
# One call's points: what one statement inserts comfortably, and the API's list bound.
MAX_MEASUREMENTS = 1000


@dataclass(frozen=True, slots=True)
class MeasurementInput:
    value: float
    measured_at: datetime
    source: str = "manual"
    external_id: str | None = None  # with `source`, makes a re-sent point a duplicate


async def record_kpi_measurements(
    session: AsyncSession,
    principal: Principal,
    kpi_id: uuid.UUID,
    items: Sequence[MeasurementInput],
    *,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Insert measurements by `principal` in one statement; returns (inserted, duplicates).

    Admins, leads of the KPI's team and integration tokens with `write` may.
    Idempotent by (kpi, source, external_id): a point sent again is counted as
    a duplicate and changes nothing. Points without external_id are always new.
    """
    now = now or clock.now()
    if len(items) > MAX_MEASUREMENTS:
        raise ValidationFailed(
            "input.items", f"At most {MAX_MEASUREMENTS} per call.", ErrorCode.TOO_MANY
        )
    require_write(principal)
    _check_items(items, now)
    org_id = principal.org_id
    kpi = await session.scalar(
        select(Kpi).where(Kpi.org_id == org_id, Kpi.id == kpi_id).with_for_update()
    )
    if kpi is None:
        raise NotFound("Kpi", kpi_id)
    integration = principal.person_id is None
    if not integration and not await may_manage_team_kpis(session, principal, kpi.owner_team_id):
        raise Forbidden(
            "Only an admin, a lead of the KPI's team or an integration may.", ErrorCode.NOT_OWNER
        )
    if kpi.archived_at is not None:
        raise Conflict("the KPI is archived", ErrorCode.ARCHIVED)
    if not items:
        return 0, 0
    inserted = await _insert(session, org_id, kpi_id, items, now)
    duplicates = len(items) - inserted
    if inserted:
        await refresh_kpis(session, org_id, [kpi_id])
        record_audit(
            session,
            principal,
            KPI_MEASURED,
            SubjectType.KPI,
            kpi_id,
            {"inserted": inserted, "duplicates": duplicates},
            at=now,
        )
        await request_recalculation(
            session,
            org_id,
            KpiMeasurement(org_id=org_id, kpi_id=kpi_id),  # what the inserted rows share
            type=KPI_MEASURED,
            subject_type=SubjectType.KPI,
            subject_id=kpi_id,
            created=True,
            payload={"kpi_id": str(kpi_id), "inserted": inserted},
            now=now,
        )
    await session.flush()
    return inserted, duplicates


def _check_items(items: Sequence[MeasurementInput], now: datetime) -> None:
    for i, item in enumerate(items):
        number(item.value, f"input.items.{i}.value")
        instant(item.measured_at, f"input.items.{i}.measuredAt")
        if item.measured_at > now + CLOCK_SKEW:
            raise ValidationFailed(
                f"input.items.{i}.measuredAt",
                "measuredAt lies in the future",
                ErrorCode.IN_THE_FUTURE,
            )
        if not item.source or len(item.source) > SHORT_TEXT:
            raise ValidationFailed(
                f"input.items.{i}.source",
                f"source must be 1 to {SHORT_TEXT} characters",
                ErrorCode.TEXT_TOO_LONG,
            )
        if item.external_id is not None and len(item.external_id) > KEY:
            raise ValidationFailed(
                f"input.items.{i}.externalId",
                f"externalId is at most {KEY} characters",
                ErrorCode.TEXT_TOO_LONG,
            )


async def _insert(
    session: AsyncSession,
    org_id: uuid.UUID,
    kpi_id: uuid.UUID,
    items: Sequence[MeasurementInput],
    now: datetime,
) -> int:
    """How many of the points were new (a re-sent one is skipped by the unique key)."""
    rows = await session.execute(
        text(
            """
            INSERT INTO kpi_measurements
                (org_id, id, kpi_id, value, measured_at, source, external_id, recorded_at)
            SELECT CAST(:org AS uuid), gen_random_uuid(), CAST(:kpi AS uuid),
                   v, at, src, ext, :now
            FROM unnest(CAST(:values AS float8[]), CAST(:ats AS timestamptz[]),
                        CAST(:sources AS text[]), CAST(:exts AS text[]))
                 AS m(v, at, src, ext)
            ON CONFLICT (org_id, kpi_id, source, external_id) DO NOTHING
            RETURNING id
            """
        ),
        {
            "org": org_id,
            "kpi": kpi_id,
            "now": now,
            "values": [i.value for i in items],
            "ats": [i.measured_at for i in items],
            "sources": [i.source for i in items],
            "exts": [i.external_id for i in items],
        },
    )
    return len(rows.all())


# The KPIs' latest measurements: of the organisation's KPIs `{which}` keeps. One
# statement per use, as scores.service._REFRESH_FROM_CHECK_INS says why.
_LATEST_MEASUREMENTS = """
SELECT k.id, k.direction, k.warning_threshold, k.critical_threshold,
       k.health, k.latest_value, k.latest_at, m.value, m.measured_at,
       k.xmin::text AS version
FROM kpis k
LEFT JOIN LATERAL (
    SELECT value, measured_at FROM kpi_measurements m
    WHERE m.org_id = k.org_id AND m.kpi_id = k.id
    ORDER BY measured_at DESC, recorded_at DESC, id DESC LIMIT 1
) m ON true
WHERE k.org_id = CAST(:org AS uuid) {which}
"""
_ALL_LATEST = _LATEST_MEASUREMENTS.format(which="")
_SOME_LATEST = _LATEST_MEASUREMENTS.format(which="AND k.id = ANY(CAST(:ids AS uuid[]))")


async def refresh_kpis(
    session: AsyncSession, org_id: uuid.UUID, kpi_ids: Collection[uuid.UUID] | None
) -> None:
    """Latest value (by measured_at) and health of the given KPIs (None: all of the org)."""
    if kpi_ids is None:
        found = await session.execute(text(_ALL_LATEST), {"org": org_id})
    else:
        found = await session.execute(text(_SOME_LATEST), {"org": org_id, "ids": list(kpi_ids)})
    rows = found.all()
    ids, values, ats, healths, versions = [], [], [], [], []
    for r in rows:
        health = scoring.kpi_health(
            Direction(r.direction), r.value, r.warning_threshold, r.critical_threshold
        )
        if (r.latest_value, r.latest_at, Health(r.health)) != (r.value, r.measured_at, health):
            ids.append(r.id)
            values.append(r.value)
            ats.append(r.measured_at)
            healths.append(health.value)
            versions.append(r.version)
    if not ids:
        return
    await session.execute(
        text(
            """
            UPDATE kpis k SET latest_value = u.v, latest_at = u.at, health = u.h
            FROM unnest(CAST(:ids AS uuid[]), CAST(:values AS float8[]),
                        CAST(:ats AS timestamptz[]), CAST(:healths AS text[]),
                        CAST(:versions AS text[])) AS u(id, v, at, h, version)
            WHERE k.org_id = CAST(:org AS uuid) AND k.id = u.id
              -- only over the version read above: a transaction that committed new
              -- measurements meanwhile refreshed the row itself, from a newer log
              AND k.xmin::text = u.version
            """
        ),
        {
            "org": org_id,
            "ids": ids,
            "values": values,
            "ats": ats,
            "healths": healths,
            "versions": versions,
        },
    )


# KPI-driven key results take the latest value: of the links `{which}` keeps (one
# statement per use, as scores.service._REFRESH_FROM_CHECK_INS says why).
_SYNC = """
UPDATE key_results k SET current_value = kp.latest_value
FROM kpi_links l
JOIN kpis kp ON kp.org_id = l.org_id AND kp.id = l.kpi_id
JOIN key_results k2 ON k2.org_id = l.org_id AND k2.id = l.key_result_id
JOIN objectives o ON o.org_id = k2.org_id AND o.id = k2.objective_id
WHERE l.org_id = CAST(:org AS uuid) AND l.key_result_id IS NOT NULL {which}
  AND k.org_id = l.org_id AND k.id = l.key_result_id
  AND k.progress_driver = 'KPI' AND k.final_score IS NULL
  AND o.cycle_id <> ALL(CAST(:closed AS uuid[]))
  AND k.current_value IS DISTINCT FROM kp.latest_value
RETURNING k.id
"""
_OF_KPIS = "AND l.kpi_id = ANY(CAST(:ids AS uuid[]))"
_OF_KEY_RESULTS = "AND l.key_result_id = ANY(CAST(:krs AS uuid[]))"
# By (narrowed to KPIs, narrowed to key results).
_SYNC_KEY_RESULTS = {
    (False, False): _SYNC.format(which=""),
    (True, False): _SYNC.format(which=_OF_KPIS),
    (False, True): _SYNC.format(which=_OF_KEY_RESULTS),
    (True, True): _SYNC.format(which=f"{_OF_KPIS} {_OF_KEY_RESULTS}"),
}


async def sync_kpi_key_results(
    session: AsyncSession,
    org_id: uuid.UUID,
    kpi_ids: Collection[uuid.UUID] | None,
    closed_cycle_ids: Collection[uuid.UUID] = (),
    *,
    key_result_ids: Collection[uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """KRs driven by a KPI take its latest value as current; returns the KRs that changed.

    `kpi_ids` / `key_result_ids` narrow it to those KPIs' / those key results' links
    (None: all). Frozen key results (final score set, or in a closed cycle) are left alone.
    """
    params: dict[str, object] = {"org": org_id, "closed": list(closed_cycle_ids)}
    if kpi_ids is not None:
        params["ids"] = list(kpi_ids)
    if key_result_ids is not None:
        params["krs"] = list(key_result_ids)
    statement = _SYNC_KEY_RESULTS[kpi_ids is not None, key_result_ids is not None]
    return [r[0] for r in await session.execute(text(statement), params)]
