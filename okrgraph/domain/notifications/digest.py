"""The weekly digest (WEEKLY_DIGEST): once per person per ISO week, from Monday
morning (`MORNING_STARTS`) in the organisation's time zone, or the first run after.

Each person's digest says:
- their objectives' movement over the last 7 days: progress then (the last
  score_history value at or before `now - 7 days`) and now, with the status;
  objectives of ACTIVE cycles, owned by the person or, owned by no person, by a
  team they lead (schedules.OBJECTIVE_OWNERS);
- what is at risk: those objectives and the key results they own that are
  AT_RISK or OFF_TRACK;
- the KPIs in alarm of the teams they belong to (an alert raised, or health
  WARNING or CRITICAL).
A person with none of these gets no digest. The whole organisation costs the
same few statements whatever its number of people (the reads are batched for
everyone, notify_each writes every digest at once): bench/digest.py measures it.
Dedup key `digest:<person>:<ISO week>` (e.g. `2026-W49`).
"""

from __future__ import annotations

import html
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models.enums import NotificationKind
from okrgraph.domain.notifications.notify import Note, notify_each
from okrgraph.domain.notifications.schedules import OBJECTIVE_OWNERS, not_told, org_calendar

WINDOW = timedelta(days=7)
AT_RISK = ("AT_RISK", "OFF_TRACK")

_RECIPIENTS = f"""
    SELECT p.id FROM people p
    WHERE p.archived_at IS NULL
      AND {not_told("p.id", "'digest:' || p.id || ':' || :week")}
    ORDER BY p.id"""

_OBJECTIVES = f"""
    SELECT owner.person_id, owner.id, owner.title, owner.progress, owner.status,
           before.value AS progress_then
    FROM ({OBJECTIVE_OWNERS}) owner
    JOIN cycles c ON c.org_id = owner.org_id AND c.id = owner.cycle_id AND c.state = 'ACTIVE'
    LEFT JOIN LATERAL (
        SELECT h.value FROM score_history h
        WHERE h.org_id = owner.org_id AND h.subject_id = owner.id AND h.recorded_at <= :since
        ORDER BY h.recorded_at DESC, h.id DESC LIMIT 1
    ) before ON true
    WHERE owner.person_id = ANY(:people)
    ORDER BY owner.person_id, owner.title, owner.id"""

_KEY_RESULTS_AT_RISK = """
    SELECT kr.owner_person_id AS person_id, kr.title, kr.status, o.title AS objective
    FROM key_results kr
    JOIN objectives o ON o.org_id = kr.org_id AND o.id = kr.objective_id AND o.state = 'ACTIVE'
    JOIN cycles c ON c.org_id = o.org_id AND c.id = o.cycle_id AND c.state = 'ACTIVE'
    WHERE kr.state = 'ACTIVE' AND kr.status IN ('AT_RISK', 'OFF_TRACK')
      AND kr.owner_person_id = ANY(:people)
    ORDER BY kr.owner_person_id, o.title, kr.title, kr.id"""

_KPIS_IN_ALARM = """
    SELECT DISTINCT m.person_id, k.name, k.id, coalesce(k.alert_level, k.health) AS level,
           k.latest_value, k.unit
    FROM kpis k
    JOIN memberships m ON m.org_id = k.org_id AND m.team_id = k.owner_team_id
    WHERE k.archived_at IS NULL
      AND (k.alert_level IS NOT NULL OR k.health IN ('WARNING', 'CRITICAL'))
      AND m.person_id = ANY(:people)
    ORDER BY m.person_id, k.name, k.id"""


@dataclass
class Digest:
    """One person's week: lines of text per section (empty sections are left out)."""

    movement: list[str] = field(default_factory=list)
    at_risk: list[str] = field(default_factory=list)
    kpis: list[str] = field(default_factory=list)

    def sections(self) -> list[tuple[str, list[str]]]:
        named = [
            ("Your objectives over the last 7 days", self.movement),
            ("At risk", self.at_risk),
            ("KPIs in alarm", self.kpis),
        ]
        return [(name, lines) for name, lines in named if lines]


async def send_weekly_digest(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> int:
    """This week's digest to everyone not sent it yet, once Monday morning has come;
    how many inbox items and sends were new."""
    calendar = await org_calendar(session, org_id, now)
    if not calendar.digest_due:
        return 0
    week = calendar.iso_week
    people = list(
        (await session.execute(text(_RECIPIENTS), {"org": org_id, "week": week})).scalars()
    )
    if not people:
        return 0
    digests = await collect_digests(session, people, now)
    notes = {
        person: digest_note(person, digest, week)
        for person, digest in digests.items()
        if digest.sections()
    }
    return await notify_each(session, org_id, notes, now=now)


async def collect_digests(
    session: AsyncSession, people: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, Digest]:
    """Each person's digest at `now`, in three statements for all of them."""
    digests: dict[uuid.UUID, Digest] = defaultdict(Digest)
    bind = {"people": people}
    for r in await session.execute(text(_OBJECTIVES), bind | {"since": now - WINDOW}):
        digests[r.person_id].movement.append(_movement(r))
        if r.status in AT_RISK:
            digests[r.person_id].at_risk.append(f"Objective {r.title}: {r.status}")
    for r in await session.execute(text(_KEY_RESULTS_AT_RISK), bind):
        digests[r.person_id].at_risk.append(
            f"Key result {r.title} (objective: {r.objective}): {r.status}"
        )
    for r in await session.execute(text(_KPIS_IN_ALARM), bind):
        latest = "no value yet" if r.latest_value is None else f"latest {r.latest_value:g}{r.unit}"
        digests[r.person_id].kpis.append(f"{r.name}: {r.level} ({latest})")
    return digests


def _movement(r: Any) -> str:
    now = round(100 * r.progress)
    if r.progress_then is None:
        return f"{r.title}: {now}% ({r.status}; no earlier score)"
    change = now - round(100 * r.progress_then)
    return f"{r.title}: {round(100 * r.progress_then)}% -> {now}% ({change:+d} pts, {r.status})"


def digest_note(person: uuid.UUID, digest: Digest, week: str) -> Note:
    sections = digest.sections()
    plain = "\n\n".join(
        f"{name}:\n" + "\n".join(f"- {x}" for x in lines) for name, lines in sections
    )
    rich = "".join(
        f"<h3>{html.escape(name)}</h3><ul>"
        + "".join(f"<li>{html.escape(x)}</li>" for x in lines)
        + "</ul>"
        for name, lines in sections
    )
    at_risk = len(digest.at_risk)
    return Note(
        kind=NotificationKind.WEEKLY_DIGEST,
        title=f"Your week in OKRs ({week})" + (f": {at_risk} at risk" if at_risk else ""),
        text=plain,
        html=rich,
        dedup_key=f"digest:{person}:{week}",
    )
