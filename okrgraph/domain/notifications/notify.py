"""The one way to tell people something (DESIGN.md section 5).

`notify` writes, for each person and each channel their preferences turn on for
the notification's kind: the inbox item (IN_APP, `notifications`) and the sends
(EMAIL, SLACK, `notification_sends`) that the worker's `send_notifications` job
delivers and retries. Both are unique per person and dedup key, so a trigger
that fires twice (two workers, a retried job, a sweep run again) tells each
person once; the dedup key says what "once" means (`worsened:<id>:<day>`,
`digest:<person>:<ISO week>`, ...). It runs in the caller's transaction and asks
for the send job after commit. A send is due from `now`, the time the caller
decided to tell (a sweep's `now`, else okrgraph's clock), not PostgreSQL's: the
worker judges what is due by that clock.

Preferences: a person's explicit choice (`notification_preferences`) wins;
otherwise `DEFAULTS`: every kind in the inbox; by e-mail what needs acting on or
comes once a week; on Slack the organisation-wide alarms (sent only when the
organisation has an incoming webhook).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.models import NotificationPreference
from okrgraph.domain.models.enums import Channel, NotificationKind, SubjectType
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.outbox.jobs import Sending

K = NotificationKind
DEFAULTS: dict[Channel, frozenset[NotificationKind]] = {
    Channel.IN_APP: frozenset(NotificationKind),
    Channel.EMAIL: frozenset(
        {
            K.CHECK_IN_DUE,
            K.KPI_CRITICAL,
            K.CYCLE_ENDING,
            K.WEEKLY_DIGEST,
            K.WEBHOOK_ENDPOINT_DISABLED,
        }
    ),
    Channel.SLACK: frozenset({K.KPI_WARNING, K.KPI_CRITICAL, K.CYCLE_CLOSED}),
}


def on_by_default(kind: NotificationKind, channel: Channel) -> bool:
    return kind in DEFAULTS[channel]


@dataclass(frozen=True, slots=True)
class Note:
    """What to tell: the inbox shows `title` and `text`; e-mail sends `title` as its
    subject with `text` and `html` (HTML defaults to the text, escaped)."""

    kind: NotificationKind
    title: str
    text: str
    dedup_key: str
    subject_type: SubjectType | None = None
    subject_id: uuid.UUID | None = None
    html: str = ""


async def channels_for(
    session: AsyncSession, person_ids: Collection[uuid.UUID], kind: NotificationKind
) -> dict[uuid.UUID, set[Channel]]:
    """The channels each person receives `kind` on (explicit choices over defaults)."""
    chosen: dict[uuid.UUID, dict[Channel, bool]] = {p: {} for p in person_ids}
    rows = await session.execute(
        select(
            NotificationPreference.person_id,
            NotificationPreference.channel,
            NotificationPreference.enabled,
        ).where(
            NotificationPreference.person_id.in_(list(person_ids)),
            NotificationPreference.kind == kind,
        )
    )
    for person_id, channel, enabled in rows:
        chosen[person_id][channel] = enabled
    return {
        person: {c for c in Channel if choice.get(c, on_by_default(kind, c))}
        for person, choice in chosen.items()
    }


async def notify(
    session: AsyncSession,
    org_id: uuid.UUID,
    person_ids: Collection[uuid.UUID],
    note: Note,
    *,
    now: datetime | None = None,
) -> int:
    """Tell these people (archived ones excepted) `note`, each once per dedup key, on
    their channels; how many inbox items and sends were new."""
    return await notify_each(session, org_id, dict.fromkeys(person_ids, note), now=now)


async def notify_each(
    session: AsyncSession,
    org_id: uuid.UUID,
    notes: Mapping[uuid.UUID, Note],
    *,
    now: datetime | None = None,
) -> int:
    """Tell each person their own note (a reminder listing their key results, a
    digest), as `notify` does, in the same few statements whatever the number of
    people (one more per distinct kind); how many inbox items and sends were new."""
    people = await _active(session, org_id, set(notes))
    if not people:
        return 0
    channels: dict[uuid.UUID, set[Channel]] = {}
    for kind in sorted({notes[p].kind for p in people}, key=lambda k: k.value):
        of_kind = [p for p in people if notes[p].kind is kind]
        channels |= await channels_for(session, of_kind, kind)
    inbox = [p for p in people if Channel.IN_APP in channels[p]]
    sends = [
        (p, c)
        for p in people
        for c in sorted(channels[p], key=lambda c: c.value)
        if c is not Channel.IN_APP
    ]
    new = 0
    if inbox:
        new += len(
            (
                await session.execute(
                    text(
                        """
                        INSERT INTO notifications (org_id, id, person_id, kind, title, body,
                                                   subject_type, subject_id, dedup_key)
                        SELECT CAST(:org AS uuid), gen_random_uuid(), n.p, n.kind, n.title,
                               n.body, n.subject_type, n.subject_id, n.dedup
                        FROM unnest(CAST(:people AS uuid[]), CAST(:kinds AS text[]),
                                    CAST(:titles AS text[]), CAST(:bodies AS text[]),
                                    CAST(:subject_types AS text[]),
                                    CAST(:subject_ids AS uuid[]), CAST(:dedups AS text[]))
                             AS n(p, kind, title, body, subject_type, subject_id, dedup)
                        ON CONFLICT (org_id, person_id, dedup_key) DO NOTHING
                        RETURNING id
                        """
                    ),
                    {"org": org_id, "people": inbox} | _columns([notes[p] for p in inbox]),
                )
            ).all()
        )
    if sends:
        sent = (
            await session.execute(
                text(
                    """
                    INSERT INTO notification_sends (org_id, id, person_id, channel, kind,
                        dedup_key, subject, text_body, html_body, status, next_attempt_at)
                    SELECT CAST(:org AS uuid), gen_random_uuid(), s.p, s.c, s.kind, s.dedup,
                           s.title, s.body, s.html, 'PENDING', CAST(:due AS timestamptz)
                    FROM unnest(CAST(:people AS uuid[]), CAST(:channels AS text[]),
                                CAST(:kinds AS text[]), CAST(:dedups AS text[]),
                                CAST(:titles AS text[]), CAST(:bodies AS text[]),
                                CAST(:htmls AS text[]))
                         AS s(p, c, kind, dedup, title, body, html)
                    ON CONFLICT (org_id, person_id, channel, dedup_key) DO NOTHING
                    RETURNING id
                    """
                ),
                {
                    "org": org_id,
                    "due": now or clock.now(),
                    "people": [p for p, _ in sends],
                    "channels": [c.value for _, c in sends],
                }
                | _columns([notes[p] for p, _ in sends]),
            )
        ).all()
        if sent:
            AfterCommit.of(session).request(Sending(org_id))
        new += len(sent)
    return new


def _columns(notes: list[Note]) -> dict[str, list[object]]:
    """The notes' fields as parallel arrays (one element per row to insert)."""
    return {
        "kinds": [n.kind.value for n in notes],
        "titles": [n.title[:300] for n in notes],
        "bodies": [n.text for n in notes],
        "htmls": [n.html for n in notes],
        "subject_types": [n.subject_type.value if n.subject_type else None for n in notes],
        "subject_ids": [n.subject_id for n in notes],
        "dedups": [n.dedup_key[:200] for n in notes],
    }


async def _active(session: AsyncSession, org_id: uuid.UUID, ids: set[uuid.UUID]) -> list[uuid.UUID]:
    if not ids:
        return []
    rows = await session.execute(
        text(
            "SELECT id FROM people WHERE org_id = CAST(:org AS uuid) "
            "AND id = ANY(CAST(:ids AS uuid[])) AND archived_at IS NULL ORDER BY id"
        ),
        {"org": org_id, "ids": list(ids)},
    )
    return [r[0] for r in rows]
