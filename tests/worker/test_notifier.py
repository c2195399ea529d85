"""The outbox's notifier consumer (issue 8): events become notifications for the people
they concern, once, through the channels they chose: a KR or objective getting worse
(once per subject and local day), a KPI alert with hysteresis, an alignment to
yours, a cycle closed; two notifiers at once tell each person once."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import Principal, system_principal
from okrgraph.domain.cycles.closing import close_cycle
from okrgraph.domain.db import create_engine, tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.kpis.service import MeasurementInput, record_kpi_measurements
from okrgraph.domain.models import Kpi, Notification, NotificationSend, OutboxEvent
from okrgraph.domain.models.enums import (
    Channel,
    Direction,
    Level,
    NotificationKind,
    OrgRole,
    SubjectType,
    TeamRole,
)
from okrgraph.domain.notifications.kpi_alerts import evaluate_kpi_alerts, next_level
from okrgraph.domain.notifications.triggers import MAX_AGE
from okrgraph.domain.objectives.service import align_objective
from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.domain.outbox.consumers import WEBHOOKS
from okrgraph.domain.outbox.retention import prune_batch
from okrgraph.domain.outbox.service import SCORE_CHANGED, emit
from okrgraph.worker.jobs.events import dispatch_events
from okrgraph.worker.jobs.outbox import relay_events
from okrgraph.worker.jobs.scores import recalculate_scores
from tests.factories import (
    make_cycle,
    make_key_result,
    make_kpi,
    make_membership,
    make_notification_preference,
    make_objective,
    make_org,
    make_outbox_consumed,
    make_person,
    make_team,
)
from tests.worker.conftest import Committed

K = NotificationKind


@dataclass
class World:
    """A team (lead, member) owning an objective whose key result `owner` owns; an admin."""

    org: uuid.UUID
    cycle: uuid.UUID
    team: uuid.UUID
    lead: uuid.UUID
    member: uuid.UUID
    owner: uuid.UUID
    admin: uuid.UUID
    objective: uuid.UUID
    key_result: uuid.UUID


async def _world(sm: async_sessionmaker[AsyncSession], timezone: str = "UTC") -> World:
    async with tenant_session(sm, None) as s:
        org = (await make_org(s, timezone=timezone)).id
        cycle = await make_cycle(s, org, name="2026 Q4")
        team = await make_team(s, org, name="Growth")
        lead = await make_person(s, org, name="Lea Lead")
        member = await make_person(s, org, name="Mo Member")
        owner = await make_person(s, org, name="Olga Owner")
        admin = await make_person(s, org, name="Ada Admin", role=OrgRole.ADMIN)
        await make_membership(s, org, team_id=team.id, person_id=lead.id, role=TeamRole.LEAD)
        await make_membership(s, org, team_id=team.id, person_id=member.id)
        objective = await make_objective(
            s, org, level=Level.TEAM, owner_team_id=team.id, cycle_id=cycle.id, title="Grow"
        )
        kr = await make_key_result(
            s, org, objective_id=objective.id, owner_person_id=owner.id, title="Revenue growth"
        )
    world = World(
        org, cycle.id, team.id, lead.id, member.id, owner.id, admin.id, objective.id, kr.id
    )
    await _notify(sm, world.org)  # the setup tells nobody
    return world


async def _notify(
    sm: async_sessionmaker[AsyncSession], org: uuid.UUID, now: datetime | None = None
) -> dict[str, int]:
    return await dispatch_events({"sessionmaker": sm, "now": now}, str(org))


async def _inbox(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> list[Any]:
    async with tenant_session(sm, org) as s:
        rows = await s.execute(
            select(
                Notification.person_id,
                Notification.kind,
                Notification.title,
                Notification.body,
                Notification.dedup_key,
            ).order_by(Notification.created_at, Notification.title, Notification.person_id)
        )
        return list(rows)


def _by_person(inbox: list[Any]) -> dict[uuid.UUID, list[str]]:
    out: dict[uuid.UUID, list[str]] = {}
    for row in inbox:
        out.setdefault(row.person_id, []).append(row.title)
    return out


async def _check_in(
    sm: async_sessionmaker[AsyncSession], org: uuid.UUID, kr: uuid.UUID, value: float
) -> None:
    async with unit_of_work(sm, org) as s:
        await record_check_in(s, system_principal(org), kr, value)
    await recalculate_scores({"sessionmaker": sm}, str(org))


async def _worsening(
    sm: async_sessionmaker[AsyncSession],
    org: uuid.UUID,
    subject: uuid.UUID,
    at: datetime,
    before: str = "ON_TRACK",
    after: str = "AT_RISK",
    subject_type: SubjectType = SubjectType.KEY_RESULT,
) -> None:
    """A `score.changed` event as the roll-up writes it (rollup._RECORD)."""
    async with tenant_session(sm, org) as s:
        await emit(
            s,
            org_id=org,
            type=SCORE_CHANGED,
            subject_type=subject_type,
            subject_id=subject,
            payload={
                "value": 0.3,
                "status": after,
                "previous_value": 0.6,
                "previous_status": before,
            },
            now=at,
        )


# --- worse ---------------------------------------------------------------------


async def test_a_key_result_and_its_objective_getting_worse_tell_their_owners(
    committed: Committed,
) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    await _check_in(sm, w.org, w.key_result, 60)  # NOT_STARTED -> ON_TRACK: not worse
    await _notify(sm, w.org)
    assert await _inbox(sm, w.org) == []

    await _check_in(sm, w.org, w.key_result, 10)  # ON_TRACK -> OFF_TRACK, the objective too
    done = await _notify(sm, w.org)
    assert done["notifications"] > 0
    inbox = await _inbox(sm, w.org)
    assert _by_person(inbox) == {
        w.owner: ["Revenue growth is now off track (was on track)"],
        w.lead: ["Grow is now off track (was on track)"],  # the team's lead, not its member
    }
    kr_note = next(r for r in inbox if r.person_id == w.owner)
    assert kr_note.kind is K.KEY_RESULT_WORSENED
    assert kr_note.body == (
        "The key result “Revenue growth” you own is off track at 10%; it was on track."
    )
    today = clock.now().date().isoformat()
    assert kr_note.dedup_key == f"worsened:{w.key_result}:{today}"
    assert next(r for r in inbox if r.person_id == w.lead).kind is K.OBJECTIVE_WORSENED


async def test_worse_is_told_once_per_subject_and_local_day(committed: Committed) -> None:
    sm = committed.sessionmaker
    w = await _world(sm, timezone="Asia/Tokyo")  # UTC+9, no summer time
    day = datetime(2026, 12, 7, tzinfo=UTC)
    # 01:00 and 14:00 UTC are the 7th in Tokyo (10:00, 23:00): one notification.
    await _worsening(sm, w.org, w.key_result, day + timedelta(hours=1))
    await _worsening(sm, w.org, w.key_result, day + timedelta(hours=14), "AT_RISK", "OFF_TRACK")
    await _notify(sm, w.org, now=day + timedelta(hours=15))
    # 16:00 UTC is 01:00 on the 8th in Tokyo: a new day, told again.
    await _worsening(sm, w.org, w.key_result, day + timedelta(hours=16))
    # Better, or from NOT_STARTED, is no worsening.
    await _worsening(sm, w.org, w.key_result, day + timedelta(hours=17), "OFF_TRACK", "AT_RISK")
    await _worsening(sm, w.org, w.key_result, day + timedelta(days=2), "NOT_STARTED", "OFF_TRACK")
    await _notify(sm, w.org, now=day + timedelta(hours=18))
    inbox = await _inbox(sm, w.org)
    assert [(r.person_id, r.dedup_key) for r in inbox] == [
        (w.owner, f"worsened:{w.key_result}:2026-12-07"),
        (w.owner, f"worsened:{w.key_result}:2026-12-08"),
    ]
    assert inbox[0].title == "Revenue growth is now at risk (was on track)"


async def test_a_person_who_turned_the_inbox_off_for_a_kind_gets_no_item(
    committed: Committed,
) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    async with tenant_session(sm, w.org) as s:
        second_lead = await make_person(s, w.org)
        await make_membership(
            s, w.org, team_id=w.team, person_id=second_lead.id, role=TeamRole.LEAD
        )
        await make_notification_preference(
            s, w.org, person_id=w.lead, kind=K.OBJECTIVE_WORSENED, channel=Channel.IN_APP,
            enabled=False,
        )  # fmt: skip
        await make_notification_preference(
            s, w.org, person_id=second_lead.id, kind=K.OBJECTIVE_WORSENED, channel=Channel.EMAIL
        )
    await _worsening(sm, w.org, w.objective, clock.now(), subject_type=SubjectType.OBJECTIVE)
    await _notify(sm, w.org)
    assert [r.person_id for r in await _inbox(sm, w.org)] == [second_lead.id]
    async with tenant_session(sm, w.org) as s:
        sends = (
            await s.execute(select(NotificationSend.person_id, NotificationSend.channel))
        ).all()
    assert sends == [(second_lead.id, Channel.EMAIL)]  # chosen; e-mail is off by default


# --- KPI alerts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "values", "levels"),
    [
        (  # warning 80, critical 60: falls at 84 (80 + 5%), 63 (60 + 5%)
            Direction.HIGHER_IS_BETTER,
            [90, 79, 81, 79, 83.9, 84, 79, 55, 62, 63, 59, 100],
            [None, "W", "W", "W", "W", None, "W", "C", "C", "W", "C", None],
        ),
        (  # warning 20, critical 30: falls at 19 (20 - 5%), 28.5 (30 - 5%)
            Direction.LOWER_IS_BETTER,
            [10, 21, 19.5, 21, 19, 31, 29, 28.5, 10],
            [None, "W", "W", "W", None, "C", "C", "W", None],
        ),
    ],
)
def test_the_alert_level_rises_at_a_threshold_and_falls_past_the_margin(
    direction: Direction, values: list[float], levels: list[str | None]
) -> None:
    warning, critical = (80.0, 60.0) if direction is Direction.HIGHER_IS_BETTER else (20.0, 30.0)
    names = {"W": "WARNING", "C": "CRITICAL", None: None}
    level: str | None = None
    seen = []
    for value in values:
        level = next_level(direction, value, warning, critical, level)
        seen.append(level)
    assert seen == [names[x] for x in levels]


async def _kpi(sm: async_sessionmaker[AsyncSession], w: World, team: bool = True) -> uuid.UUID:
    async with tenant_session(sm, w.org) as s:
        kpi = await make_kpi(
            s, w.org, name="Weekly active users", unit="k", owner_team_id=w.team if team else None
        )  # warning 80, critical 60, higher is better
    return kpi.id


async def _measure(
    sm: async_sessionmaker[AsyncSession], w: World, kpi: uuid.UUID, value: float, at: datetime
) -> None:
    async with unit_of_work(sm, w.org) as s:
        await record_kpi_measurements(
            s, system_principal(w.org), kpi, [MeasurementInput(value, at)]
        )


async def test_a_kpi_wobbling_around_its_threshold_raises_one_alert_until_it_clears(
    committed: Committed,
) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    kpi = await _kpi(sm, w)
    start = clock.now() - timedelta(hours=1)
    series = [90, 79, 81, 79, 83, 79.5, 84, 90, 78, 55, 70, 59]
    for i, value in enumerate(series):
        await _measure(sm, w, kpi, value, start + timedelta(minutes=i))
        await _notify(sm, w.org)  # the notifier sees every value
    inbox = await _inbox(sm, w.org)
    assert {r.person_id for r in inbox} == {w.lead}  # the KPI's team's lead
    assert [(r.kind, r.title) for r in inbox] == [
        (K.KPI_WARNING, "Weekly active users entered WARNING: 79 k"),  # wobbled through 83: once
        (K.KPI_WARNING, "Weekly active users entered WARNING: 78 k"),  # after clearing at 84
        (K.KPI_CRITICAL, "Weekly active users entered CRITICAL: 55 k"),
        (K.KPI_CRITICAL, "Weekly active users entered CRITICAL: 59 k"),  # fell to WARNING at 70
    ]
    assert inbox[0].body == (
        "Weekly active users measured 79 k, below its warning threshold of 80 k. "
        "The alert clears once it is back at or above 84 k."
    )
    async with tenant_session(sm, w.org) as s:
        assert await s.scalar(select(Kpi.alert_level).where(Kpi.id == kpi)) == "CRITICAL"


async def test_a_kpi_no_team_owns_alerts_the_admins(committed: Committed) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    kpi = await _kpi(sm, w, team=False)
    await _measure(sm, w, kpi, 50, clock.now())
    await _notify(sm, w.org)
    assert [(r.person_id, r.kind) for r in await _inbox(sm, w.org)] == [(w.admin, K.KPI_CRITICAL)]


async def test_two_notifiers_evaluating_one_kpi_raise_its_alert_once(
    committed: Committed,
) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    kpi = await _kpi(sm, w)
    await _measure(sm, w, kpi, 70, clock.now())
    async with unit_of_work(sm, w.org) as first:
        assert await evaluate_kpi_alerts(first, w.org, [kpi]) == 2  # inbox and Slack
        # The second reads the level before the first commits, then waits on the row.
        second = asyncio.create_task(_evaluate(sm, w.org, kpi))
        await _until_waiting_on_a_lock(committed)
    assert await second == 0
    assert len(await _inbox(sm, w.org)) == 1


async def _evaluate(sm: async_sessionmaker[AsyncSession], org: uuid.UUID, kpi: uuid.UUID) -> int:
    async with unit_of_work(sm, org) as s:
        return await evaluate_kpi_alerts(s, org, [kpi])


async def _until_waiting_on_a_lock(committed: Committed) -> None:
    """Until a session of the test database waits for a lock (seen as its owner: the
    app role cannot read other sessions' wait events)."""
    owner = create_engine(committed.url, app_role="", pool_size=1)
    try:
        async with owner.connect() as conn:
            for _ in range(500):
                waiting = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
                if waiting:
                    return
                await asyncio.sleep(0.01)
    finally:
        await owner.dispose()
    raise AssertionError("the second notifier never waited for the first")


# --- alignments, cycles --------------------------------------------------------


async def test_an_alignment_to_yours_tells_the_parents_owners_but_not_who_made_it(
    committed: Committed,
) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    async with tenant_session(sm, w.org) as s:
        maker = await make_person(s, w.org, name="Max Maker")
        await make_membership(s, w.org, team_id=w.team, person_id=maker.id, role=TeamRole.LEAD)
        child = await make_objective(
            s, w.org, level=Level.INDIVIDUAL, owner_person_id=maker.id, cycle_id=w.cycle,
            title="Ship the referral program",
        )  # fmt: skip
        parent = await make_objective(
            s, w.org, level=Level.TEAM, owner_team_id=w.team, owner_person_id=w.owner,
            cycle_id=w.cycle, title="Double sign-ups",
        )  # fmt: skip
    by_maker = Principal(w.org, None, frozenset({"read", "write"}), maker.id, OrgRole.MEMBER)
    async with unit_of_work(sm, w.org) as s:
        await align_objective(s, by_maker, child_id=child.id, parent_objective_id=parent.id)
        await align_objective(s, by_maker, child_id=child.id, parent_key_result_id=w.key_result)
    await _notify(sm, w.org)
    inbox = await _inbox(sm, w.org)
    assert _by_person(inbox) == {
        w.owner: sorted(
            [
                "“Ship the referral program” was aligned to your objective “Double sign-ups”",
                "“Ship the referral program” was aligned to your key result “Revenue growth”",
            ]
        ),
        w.lead: ["“Ship the referral program” was aligned to your objective “Double sign-ups”"],
    }  # the maker leads the team too, and is not told of what they did
    assert {r.kind for r in inbox} == {K.ALIGNED_TO_YOURS}
    assert (
        "Max Maker aligned the objective “Ship the referral program” to your objective "
        "“Double sign-ups”."
    ) in {r.body for r in inbox}


async def test_a_closed_cycle_tells_each_owner_of_their_objectives(committed: Committed) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    async with tenant_session(sm, w.org) as s:
        mine = await make_objective(
            s, w.org, level=Level.INDIVIDUAL, owner_person_id=w.member, cycle_id=w.cycle,
            title="Learn SQL",
        )  # fmt: skip
        await make_key_result(s, w.org, objective_id=mine.id, owner_person_id=w.member)
    await _check_in(sm, w.org, w.key_result, 80)
    admin = Principal(w.org, None, frozenset({"admin"}), w.admin, OrgRole.ADMIN)
    async with unit_of_work(sm, w.org) as s:
        await close_cycle(s, admin, w.cycle)
    await _notify(sm, w.org)
    closed = [r for r in await _inbox(sm, w.org) if r.kind is K.CYCLE_CLOSED]
    assert {r.person_id: r.body.splitlines()[1:] for r in closed} == {
        w.lead: ["- Grow: 80%, achieved"],
        w.member: ["- Learn SQL: 0%, missed, carried over to " + _next_cycle(closed)],
    }
    assert {r.title for r in closed} == {"2026 Q4 is closed: your objectives were graded"}
    assert {r.dedup_key for r in closed} == {f"cycle-closed:{w.cycle}"}


def _next_cycle(closed: list[Any]) -> str:
    first: str = closed[0].body.splitlines()[0]  # "<cycle> was closed and graded; <next> follows."
    return first.split("; ")[1].removesuffix(" follows.")


# --- once, however many notifiers; the relay; retention ------------------------


async def test_two_notifiers_at_once_tell_each_person_once(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    kpi = await _kpi(sm, w)
    now = clock.now()
    for i in range(30):  # worse, each its own subject, and KPI values wobbling
        async with tenant_session(sm, w.org) as s:
            kr = await make_key_result(s, w.org, objective_id=w.objective, owner_person_id=w.owner)
        await _worsening(sm, w.org, kr.id, now)
        await _measure(sm, w, kpi, 79 if i % 2 else 82, now - timedelta(minutes=30 - i))
    ctx = {"sessionmaker": sm, "redis": arq_pool}
    runs = await asyncio.gather(*(dispatch_events(ctx, str(w.org)) for _ in range(3)))
    assert sum(r["notified_events"] for r in runs) == 60  # each event taken once
    inbox = await _inbox(sm, w.org)
    assert len([r for r in inbox if r.kind is K.KEY_RESULT_WORSENED]) == 30
    assert len([r for r in inbox if r.kind is K.KPI_WARNING]) == 1
    assert len({(r.person_id, r.dedup_key) for r in inbox}) == len(inbox)
    assert (await dispatch_events(ctx, str(w.org)))["notified_events"] == 0


async def test_the_relay_and_retention_wait_for_the_notifier(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    sm = committed.sessionmaker
    w = await _world(sm)
    later = clock.now() + timedelta(days=30)
    async with tenant_session(sm, w.org) as s:
        await prune_batch(s, w.org, later)  # the setup's events
        event = await emit(s, org_id=w.org, type="objective.changed", payload={})
        await s.flush()
        await make_outbox_consumed(s, w.org, event_id=event.id, consumer=WEBHOOKS)
    ctx = {"sessionmaker": sm, "redis": arq_pool, "stale_after": timedelta(0)}
    assert await relay_events(ctx) == 1  # the webhooks took it; the notifier has not
    async with tenant_session(sm, w.org) as s:
        assert await prune_batch(s, w.org, later) == 0
    await _notify(sm, w.org)
    assert await relay_events(ctx) == 0
    async with tenant_session(sm, w.org) as s:
        assert await prune_batch(s, w.org, later) == 1
        assert await s.scalar(select(OutboxEvent.id).where(OutboxEvent.id == event.id)) is None


async def test_news_older_than_a_day_is_taken_and_not_told(committed: Committed) -> None:
    """The notifier's first run after a deploy finds up to a week of kept events: it
    takes them all and tells about none older than MAX_AGE."""
    sm = committed.sessionmaker
    w = await _world(sm)
    now = clock.now()
    await _worsening(sm, w.org, w.key_result, now - MAX_AGE - timedelta(minutes=1))
    done = await _notify(sm, w.org, now=now)
    assert done["notified_events"] >= 1
    assert await _inbox(sm, w.org) == []
    await _worsening(sm, w.org, w.key_result, now - MAX_AGE + timedelta(minutes=1))
    await _notify(sm, w.org, now=now)
    assert [r.kind for r in await _inbox(sm, w.org)] == [K.KEY_RESULT_WORSENED]
