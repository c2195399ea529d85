"""The `notification_schedules` cron against committed data: check-ins due, cycles
ending and the weekly digest, each once per person per period, by the organisation's
morning; the digest's statements do not grow with people."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import Notification, NotificationSend, Person
from okrgraph.domain.models.enums import (
    Channel,
    Health,
    KeyResultDriver,
    Level,
    NotificationKind,
    Status,
    TeamRole,
)
from okrgraph.domain.notifications.digest import send_weekly_digest
from okrgraph.domain.notifications.sending import send_due
from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.worker.jobs.notification_schedules import notification_schedules
from tests import factories as f
from tests.api.statements import statements_on
from tests.worker.conftest import Committed
from tests.worker.test_notification_sending import (  # noqa: F401 (fixtures)
    MailSink,
    client,
    parts,
    smtp,
    smtp_senders,
)

PARIS = ZoneInfo("Europe/Paris")
MONDAY = datetime(2026, 12, 7, 9, 30, tzinfo=PARIS)  # ISO week 2026-W50, 08:30 UTC
K = NotificationKind


@dataclass
class Org:
    """alice owns a stale and a never-checked-in key result (at risk) and an objective
    that moved 40% -> 55%; bob checked in two days ago; carol leads the team (its
    objective, its CRITICAL KPI); dave is a plain member. The cycle ends on Saturday."""

    id: uuid.UUID
    alice: uuid.UUID
    bob: uuid.UUID
    carol: uuid.UUID
    dave: uuid.UUID
    cycle: uuid.UUID


async def build_org(sm: async_sessionmaker[AsyncSession]) -> Org:
    org_id = uuid.uuid4()
    async with tenant_session(sm, org_id) as s:
        await f.make_org(s, id=org_id, timezone="Europe/Paris", reminder_cadence_days=7)
        alice, bob, carol, dave = [
            (await f.make_person(s, org_id, name=name)).id
            for name in ("Alice", "Bob", "Carol", "Dave")
        ]
        team = (await f.make_team(s, org_id, name="Growth")).id
        await f.make_membership(s, org_id, team_id=team, person_id=carol, role=TeamRole.LEAD)
        await f.make_membership(s, org_id, team_id=team, person_id=dave)
        await f.make_membership(s, org_id, team_id=team, person_id=alice)
        cycle = await f.make_cycle(
            s,
            org_id,
            name="2026-Q4",
            starts_on=MONDAY.date() - timedelta(days=60),
            ends_on=MONDAY.date() + timedelta(days=5),
        )
        long_ago = MONDAY - timedelta(days=30)
        mine = await f.make_objective(
            s,
            org_id,
            level=Level.INDIVIDUAL,
            cycle_id=cycle.id,
            owner_person_id=alice,
            title="Grow revenue",
            progress=0.55,
            status=Status.ON_TRACK,
        )
        await f.make_score_history(
            s, org_id, subject_id=mine.id, value=0.4, recorded_at=MONDAY - timedelta(days=10)
        )
        await f.make_objective(
            s, org_id, level=Level.TEAM, cycle_id=cycle.id, owner_team_id=team, title="Ship it"
        )
        for title, owner, last, status in (
            ("Stale KR", alice, MONDAY - timedelta(days=10), Status.AT_RISK),
            ("Never checked", alice, None, Status.NOT_STARTED),
            ("Fresh KR", bob, MONDAY - timedelta(days=2), Status.ON_TRACK),
        ):
            await f.make_key_result(
                s,
                org_id,
                objective_id=mine.id,
                title=title,
                owner_person_id=owner,
                last_check_in_at=last,
                status=status,
                created_at=long_ago,
            )
        await f.make_key_result(  # not check-in driven: never due
            s,
            org_id,
            objective_id=mine.id,
            owner_person_id=bob,
            progress_driver=KeyResultDriver.KPI,
            created_at=long_ago,
        )
        await f.make_kpi(
            s, org_id, name="Churn", owner_team_id=team, latest_value=50.0, unit="%"
        )  # 50 < critical 60
    return Org(org_id, alice, bob, carol, dave, cycle.id)


async def run(committed: Committed, now: datetime) -> dict[str, int]:
    return await notification_schedules({"sessionmaker": committed.sessionmaker, "now": now})


async def inbox(committed: Committed, org: Org, kind: NotificationKind) -> list[Notification]:
    async with tenant_session(committed.sessionmaker, org.id) as s:
        rows = await s.scalars(
            select(Notification).where(Notification.kind == kind).order_by(Notification.created_at)
        )
        return list(rows)


async def sends(committed: Committed, org: Org, kind: NotificationKind) -> list[NotificationSend]:
    async with tenant_session(committed.sessionmaker, org.id) as s:
        return list(await s.scalars(select(NotificationSend).where(NotificationSend.kind == kind)))


async def test_a_check_in_reminder_goes_once_per_period_in_the_morning(
    committed: Committed,
) -> None:
    org = await build_org(committed.sessionmaker)
    assert (await run(committed, MONDAY.replace(hour=8)))["check_in_due"] == 0  # not yet
    first, second = await asyncio.gather(run(committed, MONDAY), run(committed, MONDAY))
    assert first["check_in_due"] + second["check_in_due"] == 2  # inbox + e-mail, once
    [note] = await inbox(committed, org, K.CHECK_IN_DUE)
    assert note.person_id == org.alice  # bob checked in two days ago
    assert note.title == "Time for a check-in: 2 key results"
    assert "Stale KR (objective: Grow revenue): last check-in 10 days ago" in note.body
    assert "Never checked (objective: Grow revenue): no check-in yet" in note.body
    [mail] = await sends(committed, org, K.CHECK_IN_DUE)
    assert (mail.channel, mail.person_id) == (Channel.EMAIL, org.alice)
    assert "<li>Stale KR" in mail.html_body
    # Due from the sweep's `now` (okrgraph's clock), not PostgreSQL's: a send the
    # sweep at MONDAY wrote is due at MONDAY, whatever the day the test runs.
    assert mail.next_attempt_at == MONDAY
    for later in (timedelta(hours=1), timedelta(days=1), timedelta(days=5)):
        assert (await run(committed, MONDAY + later))["check_in_due"] == 0
    # Sunday: bob's check-in is 8 days old; alice was told this period already.
    assert (await run(committed, MONDAY + timedelta(days=6)))["check_in_due"] == 2
    # Monday: a new period (blocks of 7 days), both are still due.
    assert (await run(committed, MONDAY + timedelta(days=7)))["check_in_due"] == 4
    assert len(await inbox(committed, org, K.CHECK_IN_DUE)) == 4
    assert (await run(committed, MONDAY + timedelta(days=7, hours=3)))["check_in_due"] == 0


async def test_a_cycle_ending_goes_once_to_its_objectives_owners(committed: Committed) -> None:
    org = await build_org(committed.sessionmaker)
    await asyncio.gather(run(committed, MONDAY), run(committed, MONDAY))
    notes = await inbox(committed, org, K.CYCLE_ENDING)
    assert {n.person_id for n in notes} == {org.alice, org.carol}  # dave is no lead
    assert len(notes) == 2
    alice = next(n for n in notes if n.person_id == org.alice)
    assert alice.title == "2026-Q4 ends in 5 days"
    assert alice.body.endswith("Your objectives in it:\n- Grow revenue")
    assert alice.subject_id == org.cycle
    assert (await run(committed, MONDAY + timedelta(days=1)))["cycle_ending"] == 0
    assert len(await inbox(committed, org, K.CYCLE_ENDING)) == 2


async def test_the_weekly_digest_goes_once_a_week_with_what_moved_and_what_is_at_risk(
    committed: Committed,
) -> None:
    org = await build_org(committed.sessionmaker)
    assert (await run(committed, MONDAY.replace(hour=8)))["weekly_digest"] == 0  # not yet
    await asyncio.gather(run(committed, MONDAY), run(committed, MONDAY))
    digests = {n.person_id: n for n in await inbox(committed, org, K.WEEKLY_DIGEST)}
    assert set(digests) == {org.alice, org.carol, org.dave}  # bob has nothing to hear of
    alice = digests[org.alice]
    assert alice.title == "Your week in OKRs (2026-W50): 1 at risk"
    assert alice.body == (
        "Your objectives over the last 7 days:\n"
        "- Grow revenue: 40% -> 55% (+15 pts, ON_TRACK)\n\n"
        "At risk:\n"
        "- Key result Stale KR (objective: Grow revenue): AT_RISK\n\n"
        "KPIs in alarm:\n"
        "- Churn: CRITICAL (latest 50%)"
    )
    assert digests[org.dave].body == "KPIs in alarm:\n- Churn: CRITICAL (latest 50%)"
    assert "Ship it: 0% (NOT_STARTED; no earlier score)" in digests[org.carol].body
    mails = await sends(committed, org, K.WEEKLY_DIGEST)
    assert len(mails) == 3
    assert all(m.html_body.startswith("<h3>") for m in mails)
    assert {m.next_attempt_at for m in mails} == {MONDAY}
    assert (await run(committed, MONDAY + timedelta(days=3, hours=12)))["weekly_digest"] == 0
    assert (await run(committed, MONDAY + timedelta(days=7)))["weekly_digest"] == 6
    assert len(await inbox(committed, org, K.WEEKLY_DIGEST)) == 6


async def add_people(sm: async_sessionmaker[AsyncSession], org: Org, n: int) -> None:
    """`n` more people, each with an objective at risk, a key result and a team's KPI."""
    async with tenant_session(sm, org.id) as s:
        for _ in range(n):
            person = (await f.make_person(s, org.id)).id
            team = (await f.make_team(s, org.id)).id
            await f.make_membership(s, org.id, team_id=team, person_id=person)
            objective = await f.make_objective(
                s,
                org.id,
                level=Level.INDIVIDUAL,
                cycle_id=org.cycle,
                owner_person_id=person,
                status=Status.OFF_TRACK,
            )
            await f.make_key_result(s, org.id, objective_id=objective.id, owner_person_id=person)
            await f.make_kpi(s, org.id, owner_team_id=team, health=Health.WARNING)


async def digest_statements(committed: Committed, org: Org, now: datetime) -> tuple[int, int]:
    with statements_on(committed.engine) as seen:
        async with unit_of_work(committed.sessionmaker, org.id) as session:
            new = await send_weekly_digest(session, org.id, now)
    return len(seen), new


async def test_the_digest_costs_the_same_statements_for_more_people(committed: Committed) -> None:
    org = await build_org(committed.sessionmaker)
    await add_people(committed.sessionmaker, org, 2)
    small, told = await digest_statements(committed, org, MONDAY)
    assert told == 2 * 5  # alice, carol, dave and 2 more: inbox + e-mail each
    await add_people(committed.sessionmaker, org, 20)
    large, told = await digest_statements(committed, org, MONDAY + timedelta(days=7))
    assert told == 2 * 25
    assert small == large
    rerun, told = await digest_statements(committed, org, MONDAY + timedelta(days=7, hours=1))
    assert told == 0
    assert rerun < large  # nobody left to tell: no reads of the digests' content


async def test_a_reminder_and_a_digest_reach_a_real_smtp_server_once_each(
    committed: Committed,
    smtp: tuple[MailSink, int],  # noqa: F811
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    """The whole way: the hourly sweep, notify(), the sender, a real SMTP server
    (aiosmtpd). Each of alice's mails arrives once, as plain text and HTML."""
    sink, port = smtp
    org = await build_org(committed.sessionmaker)
    senders = smtp_senders(client, port)
    for _ in range(2):  # a second sweep and send, as after a restart: nothing new
        await run(committed, MONDAY)
        await send_due(committed.sessionmaker, org.id, senders, MONDAY.astimezone(UTC))
    async with tenant_session(committed.sessionmaker, org.id) as s:
        alice = (await s.execute(select(Person.email).where(Person.id == org.alice))).scalar_one()
    to_alice = [m for m in sink.messages() if alice in m["To"]]
    subjects = sorted(m["Subject"] for m in to_alice)
    assert subjects == sorted(
        [
            "Time for a check-in: 2 key results",
            next(s for s in subjects if s.startswith("Your week in OKRs")),
            next(s for s in subjects if s.startswith("2026-Q4 ends")),
        ]
    )
    for message in to_alice:
        assert set(parts(message)) == {"text/plain", "text/html"}, message["Subject"]
