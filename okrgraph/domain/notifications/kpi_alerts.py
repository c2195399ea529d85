"""KPI alerts with hysteresis: KPI_WARNING and KPI_CRITICAL (DESIGN.md section 5).

A KPI's alert (`kpis.alert_level`: NULL, WARNING or CRITICAL) follows its latest
value, as its health does, but with hysteresis, so a value wobbling around a
threshold raises one alert:

- it **rises** as soon as the value is past a threshold (below it for
  HIGHER_IS_BETTER, above it for LOWER_IS_BETTER: the same test as health), and
  each rise (NULL -> WARNING, NULL or WARNING -> CRITICAL) tells the leads of the
  KPI's team (the organisation's admins when no team owns it, or the team has no
  lead);
- it **falls** (to WARNING or clear, telling nobody) only once the value is back
  past the threshold by the margin: 5% of the threshold's magnitude
  (`HYSTERESIS`), or, for a threshold of 0, 5% of the warning-critical gap. With
  a warning at 80 (higher is better) an alert raised at 79 stays through 81 and
  83 and clears at 84 or more; the next value under 80 raises it again.

The notifier evaluates a KPI when it takes a `kpi.measured` event, on the KPI's
latest value then (several events of one batch evaluate it once). The new level
is written with a guard on the old one, in the notifier's transaction, so two
notifiers evaluating one KPI at once raise its alert once; the dedup key (the
level and the latest measurement's time) lets a later rise after a fall tell
people again.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models.enums import Direction, NotificationKind, SubjectType
from okrgraph.domain.notifications import queries
from okrgraph.domain.notifications.notify import Note, notify

HYSTERESIS = 0.05
LEVELS: tuple[str | None, ...] = (None, "WARNING", "CRITICAL")
KINDS = {"WARNING": NotificationKind.KPI_WARNING, "CRITICAL": NotificationKind.KPI_CRITICAL}


def margin(threshold: float, warning: float | None, critical: float | None) -> float:
    """How far past `threshold` a value must be back before its alert falls."""
    if threshold != 0:
        return HYSTERESIS * abs(threshold)
    if warning is not None and critical is not None:
        return HYSTERESIS * abs(warning - critical)
    return 0.0


def clears_at(direction: Direction, threshold: float, margin_: float) -> float:
    """The value at which an alert raised by `threshold` falls."""
    return threshold + margin_ if direction is Direction.HIGHER_IS_BETTER else threshold - margin_


def _rank(
    direction: Direction,
    value: float | None,
    warning: float | None,
    critical: float | None,
    *,
    with_margin: bool,
) -> int:
    """0 clear, 1 WARNING, 2 CRITICAL: past a threshold, or (with the margin) not yet
    back past it by its margin."""
    if value is None:
        return 0

    def past(threshold: float | None) -> bool:
        if threshold is None:
            return False
        bound = threshold
        if with_margin:
            bound = clears_at(direction, threshold, margin(threshold, warning, critical))
        return value < bound if direction is Direction.HIGHER_IS_BETTER else value > bound

    if past(critical):
        return 2
    return 1 if past(warning) else 0


def next_level(
    direction: Direction,
    value: float | None,
    warning: float | None,
    critical: float | None,
    current: str | None,
) -> str | None:
    """The alert level after seeing `value`, from `current` (the hysteresis above)."""
    now = LEVELS.index(current) if current in LEVELS else 0
    raised = _rank(direction, value, warning, critical, with_margin=False)
    if raised > now:
        return LEVELS[raised]
    held = _rank(direction, value, warning, critical, with_margin=True)
    return LEVELS[held] if held < now else LEVELS[now]


async def evaluate_kpi_alerts(
    session: AsyncSession, org_id: uuid.UUID, kpi_ids: Collection[uuid.UUID]
) -> int:
    """Move the alerts of these KPIs and tell people of each rise; how many new
    notifications."""
    if not kpi_ids:
        return 0
    raised = []
    for kpi in await _kpis(session, org_id, kpi_ids):
        level = next_level(
            Direction(kpi.direction),
            kpi.latest_value,
            kpi.warning_threshold,
            kpi.critical_threshold,
            kpi.alert_level,
        )
        if level == kpi.alert_level or not await _move(session, org_id, kpi, level):
            continue
        if level is not None and LEVELS.index(level) > LEVELS.index(kpi.alert_level):
            raised.append((kpi, level))
    if not raised:
        return 0
    teams = {kpi.owner_team_id for kpi, _ in raised if kpi.owner_team_id is not None}
    leads = await queries.team_leads(session, org_id, teams)
    fallback: set[uuid.UUID] | None = None
    new = 0
    for kpi, level in raised:
        people = leads.get(kpi.owner_team_id) if kpi.owner_team_id else None
        if not people:
            fallback = fallback if fallback is not None else await queries.admins(session, org_id)
            people = fallback
        new += await notify(session, org_id, people, alert_note(kpi, level))
    return new


def alert_note(kpi: Any, level: str) -> Note:
    """What the people hear when `kpi` enters `level`."""
    direction = Direction(kpi.direction)
    threshold = kpi.critical_threshold if level == "CRITICAL" else kpi.warning_threshold
    higher = direction is Direction.HIGHER_IS_BETTER
    unit = f" {kpi.unit}" if kpi.unit else ""
    clear = clears_at(
        direction, threshold, margin(threshold, kpi.warning_threshold, kpi.critical_threshold)
    )
    word = level.lower()
    return Note(
        kind=KINDS[level],
        title=f"{kpi.name} entered {level}: {_num(kpi.latest_value)}{unit}",
        text=(
            f"{kpi.name} measured {_num(kpi.latest_value)}{unit}, "
            f"{'below' if higher else 'above'} its {word} threshold of {_num(threshold)}{unit}. "
            f"The alert clears once it is back {'at or above' if higher else 'at or below'} "
            f"{_num(clear)}{unit}."
        ),
        dedup_key=f"kpi:{kpi.id}:{level}:{kpi.latest_at.isoformat()}",
        subject_type=SubjectType.KPI,
        subject_id=kpi.id,
    )


def _num(value: float) -> str:
    return f"{value:,.6g}"


async def _kpis(session: AsyncSession, org_id: uuid.UUID, kpi_ids: Collection[uuid.UUID]) -> Any:
    rows = await session.execute(
        text(
            """
            SELECT id, name, unit, owner_team_id, direction, warning_threshold,
                   critical_threshold, latest_value, latest_at, alert_level
            FROM kpis
            WHERE org_id = CAST(:org AS uuid) AND id = ANY(CAST(:ids AS uuid[]))
              AND archived_at IS NULL
            ORDER BY id
            """
        ),
        {"org": org_id, "ids": list(kpi_ids)},
    )
    return rows.all()


async def _move(session: AsyncSession, org_id: uuid.UUID, kpi: Any, level: str | None) -> bool:
    """Set the KPI's alert level if it still is what this notifier read (a second
    notifier that read the same level finds it moved and does nothing)."""
    moved = await session.execute(
        text(
            """
            UPDATE kpis SET alert_level = :level
            WHERE org_id = CAST(:org AS uuid) AND id = CAST(:id AS uuid)
              AND alert_level IS NOT DISTINCT FROM CAST(:old AS varchar)
            RETURNING id
            """
        ),
        {"org": org_id, "id": kpi.id, "level": level, "old": kpi.alert_level},
    )
    return moved.first() is not None
