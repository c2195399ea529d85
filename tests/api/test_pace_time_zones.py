"""Pace in the organisation's time zone, and across a DST change: hand-worked numbers.

A cycle's dates are whole days in the organisation's time zone, so the fraction
elapsed depends on where its midnights fall (Kiritimati is UTC+14: reading
the dates in UTC would be fourteen hours off) and a day of a DST change is 23
or 25 hours long. Every expected value here is worked out from the calendar
alone, never through `scoring`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock, scoring
from okrgraph.domain.auth.tokens import Principal, system_principal
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models.enums import OrgRole
from okrgraph.domain.scores.queries import cycle_pace
from okrgraph.schema.node import to_global_id
from tests.factories import (
    make_cycle,
    make_key_result,
    make_objective,
    make_org,
    make_person,
    make_token,
)
from tests.gql import data

BERLIN = ZoneInfo("Europe/Berlin")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14 all year, no DST

QUERY = """query($o: ID!, $k: ID!) {
  o: node(id: $o) { ... on Objective { expectedProgress } }
  k: node(id: $k) { ... on KeyResult { expectedProgress } }
}"""


def _utc(y: int, m: int, d: int, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "at", "expected"),
    [
        # 2027-03-28, Berlin springs forward at 02:00: a 23-hour day from 2027-03-27T23:00Z;
        # noon local is 10:00Z, 11 hours in
        (date(2027, 3, 28), date(2027, 3, 28), _utc(2027, 3, 28, 10), 11 / 23),
        # 2027-10-31, Berlin falls back at 03:00: a 25-hour day from 2027-10-30T22:00Z;
        # noon local is 11:00Z, 13 hours in
        (date(2027, 10, 31), date(2027, 10, 31), _utc(2027, 10, 31, 11), 13 / 25),
        # March and April: 61 days less the lost hour, 1463 hours; local midnight of
        # 2027-03-31 (2027-03-30T22:00Z) is 30 days less that hour in, 719 hours
        (date(2027, 3, 1), date(2027, 4, 30), _utc(2027, 3, 30, 22), 719 / 1463),
        # the year: 8760 hours (the lost and the regained hour cancel); 2027-07-01
        # local midnight (2027-06-30T22:00Z) is 181 days less one hour in
        (date(2027, 1, 1), date(2027, 12, 31), _utc(2027, 6, 30, 22), (181 * 24 - 1) / 8760),
        # before the start and after the end: clamped
        (date(2027, 3, 28), date(2027, 3, 28), _utc(2027, 3, 27, 22), 0.0),
        (date(2027, 3, 28), date(2027, 3, 28), _utc(2027, 3, 28, 23), 1.0),
    ],
)
def test_expected_progress_across_dst(
    start: date, end: date, at: datetime, expected: float
) -> None:
    assert scoring.expected_progress(start, end, at, BERLIN) == pytest.approx(expected, abs=1e-12)


async def test_the_score_path_reads_cycles_in_the_org_time_zone(db: AsyncSession) -> None:
    """cycle_pace (what every roll-up and check-in uses) across the spring-forward day."""
    org = await make_org(db, timezone="Europe/Berlin")
    cycle = await make_cycle(db, org.id, starts_on=date(2027, 3, 28), ends_on=date(2027, 3, 29))
    # 23 + 24 = 47 hours from 2027-03-27T23:00Z; 2027-03-28T22:00Z (local midnight) is 23 in
    pace = await cycle_pace(db, org.id, _utc(2027, 3, 28, 22))
    assert pace.expected[pace.cycle_ids.index(cycle.id)] == pytest.approx(23 / 47, abs=1e-12)


async def test_the_api_answers_pace_in_the_org_time_zone(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org(db, timezone="Pacific/Kiritimati")
    _, token = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read"])
    local_today = clock.now().astimezone(KIRITIMATI).date()
    start, end = local_today - timedelta(days=1), local_today + timedelta(days=2)
    cycle = await make_cycle(db, org.id, starts_on=start, ends_on=end)
    objective = await make_objective(db, org.id, cycle_id=cycle.id)
    kr = await make_key_result(db, org.id, objective_id=objective.id)

    def by_hand(at: datetime) -> float:
        begin = datetime.combine(start, time(), KIRITIMATI)
        finish = datetime.combine(end + timedelta(days=1), time(), KIRITIMATI)
        return (at - begin) / (finish - begin)

    before = by_hand(clock.now())
    d = await data(
        client,
        token,
        QUERY,
        o=to_global_id("Objective", objective.id),
        k=to_global_id("KeyResult", kr.id),
    )
    after = by_hand(clock.now())
    # read in UTC, the dates would put it 14 h / 96 h = 0.146 further back
    for answered in (d["o"]["expectedProgress"], d["k"]["expectedProgress"]):
        assert before - 1e-9 <= answered <= after + 1e-9


async def test_a_check_in_status_follows_the_org_time_zone(db: AsyncSession) -> None:
    """A two-day cycle in Kiritimati at 11:00 UTC of its last day: 01:00 the next
    local day, so the cycle is over there (expected 1), while read in UTC it would
    be 35/48 through. A score of 0.5 is then OFF_TRACK (pace 0.5 < 0.6), not
    AT_RISK (pace 0.69)."""
    org = await make_org(db, timezone="Pacific/Kiritimati")
    cycle = await make_cycle(db, org.id, starts_on=date(2027, 5, 9), ends_on=date(2027, 5, 10))
    objective = await make_objective(db, org.id, cycle_id=cycle.id)
    kr = await make_key_result(
        db, org.id, objective_id=objective.id, start_value=0.0, target_value=10.0
    )
    now = _utc(2027, 5, 10, 11)  # 2027-05-11T01:00 in Kiritimati
    await record_check_in(
        db,
        principal=system_principal(org.id),
        key_result_id=kr.id,
        value=5.0,
        now=now,
        effective_at=now,
    )
    await db.refresh(kr)
    assert (kr.score, kr.status.value) == (0.5, "OFF_TRACK")


async def test_the_forecast_reads_the_cycle_in_the_org_time_zone(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    """A check-in at 02:00 on the cycle's first day in Kiritimati is 12:00 UTC the day
    before: read in UTC, it would fall before the cycle and leave one point, no trend."""
    org = await make_org(db, timezone="Pacific/Kiritimati")
    admin = await make_person(db, org.id, role=OrgRole.ADMIN)
    _, token = await make_token(db, org.id, person_id=admin.id, scopes=["read"])
    local_today = clock.now().astimezone(KIRITIMATI).date()
    start = local_today - timedelta(days=10)
    cycle = await make_cycle(db, org.id, starts_on=start, ends_on=start + timedelta(days=89))
    objective = await make_objective(db, org.id, cycle_id=cycle.id)
    kr = await make_key_result(db, org.id, objective_id=objective.id)  # 0 -> 100
    first = datetime.combine(start, time(2), KIRITIMATI)
    by_admin = Principal(org.id, None, frozenset({"admin"}), admin.id, OrgRole.ADMIN)
    for at, value in ((first, 10.0), (first + timedelta(days=5), 20.0)):
        await record_check_in(
            db, principal=by_admin, key_result_id=kr.id, value=value, effective_at=at
        )  # fmt: skip
    query = "query($k: ID!) { node(id: $k) { ... on KeyResult { forecast { points } } } }"
    d = await data(client, token, query, k=to_global_id("KeyResult", kr.id))
    assert d["node"]["forecast"] == {"points": 2}
