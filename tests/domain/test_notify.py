"""notify(): the one way to tell people something, once per person and dedup key, on
the channels their preferences (or the defaults) turn on."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import Notification, NotificationPreference, NotificationSend
from okrgraph.domain.models.enums import Channel, NotificationKind
from okrgraph.domain.notifications.notify import DEFAULTS, Note, notify
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.outbox.jobs import Sending
from tests.factories import make_org, make_person


async def test_defaults_preferences_dedup_and_archived_people(db: AsyncSession) -> None:
    org = await make_org(db)
    ann, bob, gone = [await make_person(db, org.id) for _ in range(3)]
    gone.archived_at = datetime.now(UTC)
    db.add(
        NotificationPreference(
            org_id=org.id, person_id=bob.id, kind=NotificationKind.CHECK_IN_DUE,
            channel=Channel.EMAIL, enabled=False,
        )
    )  # fmt: skip
    await db.flush()
    note = Note(NotificationKind.CHECK_IN_DUE, "A check-in is due", "Revenue: 12 days", "due:w1")
    assert NotificationKind.CHECK_IN_DUE in DEFAULTS[Channel.EMAIL]

    made = await notify(db, org.id, [ann.id, bob.id, gone.id], note)
    again = await notify(db, org.id, [ann.id, bob.id, gone.id], note)

    inbox = (await db.execute(select(Notification.person_id, Notification.title))).all()
    assert sorted(inbox) == sorted([(ann.id, note.title), (bob.id, note.title)])
    sends = (await db.execute(select(NotificationSend.person_id, NotificationSend.channel))).all()
    assert sends == [(ann.id, Channel.EMAIL)]  # bob turned e-mail off; no Slack by default
    assert (made, again) == (3, 0)
    assert AfterCommit.of(db).follow_ups == [Sending(org.id)]


async def test_nothing_to_send_asks_for_no_send_job(db: AsyncSession) -> None:
    org = await make_org(db)
    ann = await make_person(db, org.id)
    note = Note(NotificationKind.ALIGNED_TO_YOURS, "Aligned", "", "aligned:1")
    assert NotificationKind.ALIGNED_TO_YOURS not in DEFAULTS[Channel.EMAIL]
    assert await notify(db, org.id, [ann.id], note) == 1  # the inbox only
    assert AfterCommit.of(db).follow_ups == []
