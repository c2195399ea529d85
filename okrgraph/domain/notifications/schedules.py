"""Notifications the clock sends: check-ins due and cycles ending (the weekly digest
is digest.py), run per organisation by the worker's `notification_schedules` cron.

Each is a sweep of everything due at `now`, by the organisation's time zone, and
tells each person once per period through `notify_each`'s dedup keys; a run
first leaves out the people already told for the period, so a run again (an
hour later, after a restart, in a second worker at the same time) writes
nothing and costs little:

- CHECK_IN_DUE, dedup `check-in-due:<person>:<period>`: in the morning
  (`MORNING_STARTS` to `MORNING_ENDS`, local time), one note per person listing
  their open key results (check-in driven, ACTIVE, not graded, objective ACTIVE,
  cycle ACTIVE) with no check-in (nor creation) for the organisation's
  `reminder_cadence_days`. `period` is `(local date's ordinal - 1) // cadence`:
  consecutive blocks of `cadence` days (with 7, ISO weeks from Monday), so a
  person is reminded at most once per block, on its first morning they are due.
- CYCLE_ENDING, dedup `cycle-ending:<cycle>`: in the morning, for an ACTIVE
  cycle ending within `CYCLE_ENDING_DAYS` (7) days (catching up if the morning it
  was exactly 7 was missed), once per person per cycle, to the owners of its
  ACTIVE objectives: the owner person, or the team's leads for a team objective
  owned by no person.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models.enums import NotificationKind, SubjectType
from okrgraph.domain.notifications.notify import Note, notify_each

MORNING_STARTS = time(9)
MORNING_ENDS = time(12)
CYCLE_ENDING_DAYS = 7


@dataclass(frozen=True, slots=True)
class OrgCalendar:
    """`now` as the organisation sees it, and its reminder cadence."""

    now: datetime
    local: datetime
    reminder_cadence_days: int

    @property
    def today(self) -> date:
        return self.local.date()

    @property
    def morning(self) -> bool:
        return MORNING_STARTS <= self.local.time() < MORNING_ENDS

    @property
    def reminder_period(self) -> int:
        return (self.today.toordinal() - 1) // self.reminder_cadence_days

    @property
    def iso_week(self) -> str:
        year, week, _ = self.today.isocalendar()
        return f"{year}-W{week:02}"

    @property
    def digest_due(self) -> bool:
        """From Monday morning on, all week (the first run after Monday morning)."""
        return self.local.weekday() > 0 or self.local.time() >= MORNING_STARTS


async def org_calendar(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> OrgCalendar:
    row = (
        await session.execute(
            text("SELECT timezone, reminder_cadence_days FROM organizations WHERE id = :org"),
            {"org": org_id},
        )
    ).one()
    try:
        zone = ZoneInfo(row.timezone or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return OrgCalendar(now, now.astimezone(zone), row.reminder_cadence_days)


def not_told(person: str, dedup: str) -> str:
    """SQL: `person` has no inbox item and no send with the dedup key `dedup` yet."""
    return f"""
        NOT EXISTS (SELECT 1 FROM notifications n WHERE n.org_id = CAST(:org AS uuid)
                    AND n.person_id = {person} AND n.dedup_key = {dedup})
        AND NOT EXISTS (SELECT 1 FROM notification_sends s WHERE s.org_id = CAST(:org AS uuid)
                        AND s.person_id = {person} AND s.dedup_key = {dedup})"""


# An ACTIVE objective's owners: its person, else its team's leads.
OBJECTIVE_OWNERS = """
    SELECT o.owner_person_id AS person_id, o.* FROM objectives o
    WHERE o.state = 'ACTIVE' AND o.owner_person_id IS NOT NULL
    UNION ALL
    SELECT m.person_id, o.* FROM objectives o
    JOIN memberships m ON m.org_id = o.org_id AND m.team_id = o.owner_team_id AND m.role = 'LEAD'
    WHERE o.state = 'ACTIVE' AND o.owner_person_id IS NULL"""

_DUE_KEY_RESULTS = f"""
    SELECT kr.owner_person_id AS person_id, kr.id, kr.title, o.title AS objective,
           kr.last_check_in_at
    FROM key_results kr
    JOIN objectives o ON o.org_id = kr.org_id AND o.id = kr.objective_id
    JOIN cycles c ON c.org_id = o.org_id AND c.id = o.cycle_id
    JOIN people p ON p.org_id = kr.org_id AND p.id = kr.owner_person_id
    WHERE kr.progress_driver = 'CHECK_INS' AND kr.state = 'ACTIVE' AND kr.final_score IS NULL
      AND o.state = 'ACTIVE' AND c.state = 'ACTIVE' AND p.archived_at IS NULL
      AND coalesce(kr.last_check_in_at, kr.created_at) < :cutoff
      AND {not_told("kr.owner_person_id", "'check-in-due:' || kr.owner_person_id || ':' || :p")}
    ORDER BY kr.owner_person_id, o.title, kr.title, kr.id"""


async def remind_check_ins_due(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> int:
    """CHECK_IN_DUE to every owner with key results due, in the organisation's morning;
    how many inbox items and sends were new."""
    calendar = await org_calendar(session, org_id, now)
    if not calendar.morning:
        return 0
    period = str(calendar.reminder_period)
    rows = await session.execute(
        text(_DUE_KEY_RESULTS),
        {
            "org": org_id,
            "p": period,
            "cutoff": now - timedelta(days=calendar.reminder_cadence_days),
        },
    )
    # groupby needs the rows in order: the query sorts by person.
    notes = {
        person: _due_note(person, period, list(due), now)
        for person, due in groupby(rows, key=lambda r: r.person_id)
    }
    return await notify_each(session, org_id, notes, now=now)


def _due_note(person: uuid.UUID, period: str, due: list[Any], now: datetime) -> Note:
    lines = [
        f"{r.title} (objective: {r.objective}): {_since(r.last_check_in_at, now)}" for r in due
    ]
    title = (
        f"Time for a check-in: {due[0].title}"
        if len(due) == 1
        else f"Time for a check-in: {len(due)} key results"
    )
    return Note(
        kind=NotificationKind.CHECK_IN_DUE,
        title=title,
        text="These key results of yours are waiting for a check-in:\n"
        + "\n".join(f"- {line}" for line in lines),
        html="<p>These key results of yours are waiting for a check-in:</p><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        + "</ul>",
        dedup_key=f"check-in-due:{person}:{period}",
        subject_type=SubjectType.KEY_RESULT if len(due) == 1 else None,
        subject_id=due[0].id if len(due) == 1 else None,
    )


def _since(last: datetime | None, now: datetime) -> str:
    if last is None:
        return "no check-in yet"
    days = (now - last).days
    return f"last check-in {days} day{'s' if days != 1 else ''} ago"


_ENDING_OBJECTIVES = f"""
    SELECT owner.person_id, c.id AS cycle_id, c.name AS cycle, c.ends_on, owner.title
    FROM cycles c
    JOIN ({OBJECTIVE_OWNERS}) owner ON owner.org_id = c.org_id AND owner.cycle_id = c.id
    JOIN people p ON p.org_id = owner.org_id AND p.id = owner.person_id
    WHERE c.state = 'ACTIVE' AND c.ends_on BETWEEN :today AND :horizon
      AND p.archived_at IS NULL
      AND {not_told("owner.person_id", "'cycle-ending:' || c.id")}
    ORDER BY c.ends_on, c.id, owner.person_id, owner.title"""


async def announce_cycles_ending(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> int:
    """CYCLE_ENDING to the owners of objectives in cycles ending within
    `CYCLE_ENDING_DAYS`, in the organisation's morning; how many were new."""
    calendar = await org_calendar(session, org_id, now)
    if not calendar.morning:
        return 0
    rows = await session.execute(
        text(_ENDING_OBJECTIVES),
        {
            "org": org_id,
            "today": calendar.today,
            "horizon": calendar.today + timedelta(days=CYCLE_ENDING_DAYS),
        },
    )
    new = 0  # one notify_each per cycle: a person may own objectives in two of them
    for _, of_cycle in groupby(rows, key=lambda r: r.cycle_id):
        notes = {
            person: _ending_note(list(owned), calendar.today)
            for person, owned in groupby(of_cycle, key=lambda r: r.person_id)
        }
        new += await notify_each(session, org_id, notes, now=now)
    return new


def _ending_note(owned: list[Any], today: date) -> Note:
    cycle = owned[0]
    days = (cycle.ends_on - today).days
    when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    intro = f"{cycle.cycle} ends {when} ({cycle.ends_on.isoformat()}). Your objectives in it:"
    return Note(
        kind=NotificationKind.CYCLE_ENDING,
        title=f"{cycle.cycle} ends {when}",
        text=intro + "\n" + "\n".join(f"- {r.title}" for r in owned),
        html=f"<p>{html.escape(intro)}</p><ul>"
        + "".join(f"<li>{html.escape(r.title)}</li>" for r in owned)
        + "</ul>",
        dedup_key=f"cycle-ending:{cycle.cycle_id}",
        subject_type=SubjectType.CYCLE,
        subject_id=cycle.cycle_id,
    )
