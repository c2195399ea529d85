"""Events to notifications: the outbox's `notifier` consumer (DESIGN.md section 5).

The notifier claims the organisation's new events (outbox/consumers.py) and, in
the same transaction, tells people through `notify` (each notification unique
per person and dedup key, so a second run or a second worker tells no one twice):

- `score.changed` of a key result or objective whose status got worse
  (ON_TRACK -> AT_RISK -> OFF_TRACK; from NOT_STARTED nothing is "worse"):
  KEY_RESULT_WORSENED to the key result's owner (its objective's owners when it
  has none), OBJECTIVE_WORSENED to the objective's owners (its owner person and,
  for a team's objective, the team's leads); at most once per subject and day in
  the organisation's time zone (`worsened:<id>:<local date>`);
- `kpi.measured`: the KPI's alert with hysteresis (kpi_alerts.py), KPI_WARNING
  or KPI_CRITICAL to the leads of its team;
- `alignment.changed` that created an alignment: ALIGNED_TO_YOURS to the owners
  of the parent (objective, or key result), except whoever made the alignment;
- `cycle.closed`: CYCLE_CLOSED to the owners of the cycle's graded objectives,
  each told of their own objectives' grades.

Other events tell nobody. The notifier never depends on the webhooks consumer's
progress, nor it on the notifier's: each has its own transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.cycles.closing import CYCLE_CLOSED
from okrgraph.domain.models.enums import NotificationKind, Status, SubjectType
from okrgraph.domain.notifications import queries
from okrgraph.domain.notifications.kpi_alerts import evaluate_kpi_alerts
from okrgraph.domain.notifications.notify import Note, notify
from okrgraph.domain.objectives.service import ALIGNMENT_CHANGED
from okrgraph.domain.outbox.consumers import NOTIFIER, Event, claim_events
from okrgraph.domain.outbox.service import KPI_MEASURED, SCORE_CHANGED

ALIGNMENT_CREATED = "alignment.created"  # its audit action: who aligned

# How bad a status is; NOT_STARTED is not on the scale (a first score is no worsening).
# News older than this is no longer news: taken and dropped. (The first run after
# the notifier is deployed finds every event retention kept, up to a week.)
MAX_AGE = timedelta(days=1)
_SEVERITY = {Status.ON_TRACK: 0, Status.AT_RISK: 1, Status.OFF_TRACK: 2}
_WORDS = {
    Status.NOT_STARTED: "not started",
    Status.ON_TRACK: "on track",
    Status.AT_RISK: "at risk",
    Status.OFF_TRACK: "off track",
}
_OUTCOMES = {"ACHIEVED": "achieved", "MISSED": "missed", "CARRIED_OVER": "carried over to"}


@dataclass(frozen=True, slots=True)
class Told:
    events: int = 0  # events taken
    notifications: int = 0  # new inbox items and sends


async def notify_events(
    session: AsyncSession, org_id: uuid.UUID, *, now: datetime | None = None
) -> Told:
    """Claim the organisation's events the notifier has not taken and tell people
    (about those at most MAX_AGE old as of `now`)."""
    taken = await claim_events(session, org_id, NOTIFIER)
    if not taken:
        return Told()
    since = (now or clock.now()) - MAX_AGE
    events = [e for e in taken if e.created_at >= since]
    new = await _worsened(session, org_id, [e for e in events if e.type == SCORE_CHANGED])
    kpis = {e.subject_id for e in events if e.type == KPI_MEASURED and e.subject_id is not None}
    new += await evaluate_kpi_alerts(session, org_id, kpis)
    created = [
        e for e in events if e.type == ALIGNMENT_CHANGED and e.payload.get("change") == "created"
    ]
    new += await _aligned(session, org_id, created)
    for event in events:
        if event.type == CYCLE_CLOSED and not event.payload.get("dry_run"):
            new += await _cycle_closed(session, org_id, event)
    return Told(len(taken), new)


def worsening(event: Event) -> tuple[Status, Status] | None:
    """(before, after) when the event's status got worse on the scale, else None."""
    try:
        after = Status(event.payload.get("status"))
        before = Status(event.payload.get("previous_status"))
    except ValueError:
        return None
    if before in _SEVERITY and after in _SEVERITY and _SEVERITY[after] > _SEVERITY[before]:
        return before, after
    return None


async def _worsened(session: AsyncSession, org_id: uuid.UUID, events: list[Event]) -> int:
    worse = [
        (e, e.subject_id, *w) for e in events if e.subject_id is not None and (w := worsening(e))
    ]
    if not worse:
        return 0
    krs = {i for e, i, _, _ in worse if e.subject_type is SubjectType.KEY_RESULT}
    objectives = {i for e, i, _, _ in worse if e.subject_type is SubjectType.OBJECTIVE}
    owned = await queries.key_result_owners(session, org_id, krs)
    owned |= await queries.objective_owners(session, org_id, objectives)
    zone = await queries.org_timezone(session, org_id)
    new = 0
    for event, subject_id, before, after in worse:
        subject = owned.get(subject_id)
        if subject is None or not subject.owners:
            continue
        day = event.created_at.astimezone(zone).date().isoformat()
        note = _worsened_note(event, subject, before, after, day)
        new += await notify(session, org_id, subject.owners, note)
    return new


def _worsened_note(
    event: Event, subject: queries.Owned, before: Status, after: Status, day: str
) -> Note:
    is_kr = event.subject_type is SubjectType.KEY_RESULT
    what = "key result" if is_kr else "objective"
    score = _percent(event.payload.get("value"))
    return Note(
        kind=NotificationKind.KEY_RESULT_WORSENED if is_kr else NotificationKind.OBJECTIVE_WORSENED,
        title=f"{subject.title} is now {_WORDS[after]} (was {_WORDS[before]})",
        text=(
            f"The {what} “{subject.title}” you own is {_WORDS[after]}"
            f"{f' at {score}' if score else ''}; it was {_WORDS[before]}."
        ),
        dedup_key=f"worsened:{subject.id}:{day}",
        subject_type=event.subject_type,
        subject_id=subject.id,
    )


@dataclass(frozen=True, slots=True)
class _NewAlignment:
    id: uuid.UUID
    child: uuid.UUID
    parent: uuid.UUID
    parent_is_key_result: bool


def _new_alignment(event: Event) -> _NewAlignment | None:
    child = _uuid(event.payload.get("child_objective_id"))
    objective = _uuid(event.payload.get("parent_objective_id"))
    key_result = _uuid(event.payload.get("parent_key_result_id"))
    parent = objective or key_result
    if event.subject_id is None or child is None or parent is None:
        return None
    return _NewAlignment(event.subject_id, child, parent, objective is None)


async def _aligned(session: AsyncSession, org_id: uuid.UUID, events: list[Event]) -> int:
    made = [a for e in events if (a := _new_alignment(e))]
    if not made:
        return 0
    objectives = {a.child for a in made} | {a.parent for a in made if not a.parent_is_key_result}
    owned = await queries.objective_owners(session, org_id, objectives)
    owned |= await queries.key_result_owners(
        session, org_id, {a.parent for a in made if a.parent_is_key_result}
    )
    made_by = await queries.actors(session, org_id, ALIGNMENT_CREATED, [a.id for a in made])
    names = await queries.person_names(session, org_id, set(made_by.values()))
    new = 0
    for alignment in made:
        parent, child = owned.get(alignment.parent), owned.get(alignment.child)
        if parent is None or child is None:
            continue  # removed since
        actor = made_by.get(alignment.id)
        what = "key result" if alignment.parent_is_key_result else "objective"
        who = names.get(actor, "Someone") if actor else "Someone"
        note = Note(
            kind=NotificationKind.ALIGNED_TO_YOURS,
            title=f"“{child.title}” was aligned to your {what} “{parent.title}”",
            text=f"{who} aligned the objective “{child.title}” to your {what} “{parent.title}”.",
            dedup_key=f"aligned:{alignment.id}",
            subject_type=SubjectType.OBJECTIVE,
            subject_id=child.id,
        )
        new += await notify(
            session, org_id, parent.owners - {actor} if actor else parent.owners, note
        )
    return new


async def _cycle_closed(session: AsyncSession, org_id: uuid.UUID, event: Event) -> int:
    graded = [g for g in event.payload.get("objectives") or [] if isinstance(g, dict)]
    owned = await queries.objective_owners(
        session, org_id, {i for g in graded if (i := _uuid(g.get("objective_id")))}
    )
    if not owned or event.subject_id is None:
        return 0
    name = await queries.cycle_name(session, org_id, event.subject_id) or "A cycle"
    next_name = str(event.payload.get("next_cycle_name") or "the next cycle")
    lines_of: dict[uuid.UUID, list[str]] = defaultdict(list)
    for grade in graded:
        objective_id = _uuid(grade.get("objective_id"))
        objective = owned.get(objective_id) if objective_id else None
        for person in objective.owners if objective else ():
            lines_of[person].append(_grade_line(grade, next_name))
    # People told of the same objectives share one call (a team's leads, say).
    by_text: dict[str, set[uuid.UUID]] = defaultdict(set)
    for person, lines in lines_of.items():
        by_text["\n".join(lines)].add(person)
    new = 0
    for summary, people in by_text.items():
        note = Note(
            kind=NotificationKind.CYCLE_CLOSED,
            title=f"{name} is closed: your objectives were graded",
            text=f"{name} was closed and graded; {next_name} follows.\n{summary}",
            dedup_key=f"cycle-closed:{event.subject_id}",
            subject_type=SubjectType.CYCLE,
            subject_id=event.subject_id,
        )
        new += await notify(session, org_id, people, note)
    return new


def _grade_line(grade: dict[str, Any], next_name: str) -> str:
    outcome = _OUTCOMES.get(str(grade.get("outcome")), "graded")
    if grade.get("outcome") == "CARRIED_OVER":
        outcome = f"missed, {outcome} {next_name}"
    score = _percent(grade.get("final_score"))
    return f"- {grade.get('title')}: {score + ', ' if score else ''}{outcome}"


def _percent(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else ""


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
