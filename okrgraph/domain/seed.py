"""The demo organisation `okr dev` starts with: a company, teams, people, a
yearly and a quarterly cycle, objectives aligned company -> team ->
individual, key results of every kind with check-ins, KPIs with measurements.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import create_token
from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import (
    Alignment,
    CheckIn,
    Cycle,
    Initiative,
    KeyResult,
    Kpi,
    KpiLink,
    KpiMeasurement,
    Membership,
    Objective,
    Organization,
    Person,
    Team,
)
from okrgraph.domain.models.enums import (
    Cadence,
    CycleState,
    Direction,
    InitiativeStatus,
    KeyResultDriver,
    KeyResultKind,
    Level,
    ObjectiveDriver,
    OrgRole,
    TeamRole,
)
from okrgraph.domain.scores.service import full_recalculation

DEMO_ORG_ID = uuid.UUID("00000000-0000-4000-8000-00000000d3e0")
DEMO_SLUG = "demo"


@dataclass(frozen=True)
class SeedResult:
    org_id: uuid.UUID
    admin_token: str | None  # None when the demo already existed (the secret is not stored)


def quarter_of(day: date) -> tuple[date, date, str]:
    q = (day.month - 1) // 3
    start = date(day.year, 3 * q + 1, 1)
    end = date(day.year + (q == 3), (3 * q + 3) % 12 + 1, 1) - timedelta(days=1)
    return start, end, f"{day.year}-Q{q + 1}"


async def seed_demo(
    sessionmaker: async_sessionmaker[AsyncSession], today: date | None = None
) -> SeedResult:
    """Create the demo organisation unless it exists; idempotent."""
    today = today or clock.now().date()
    async with tenant_session(sessionmaker, DEMO_ORG_ID) as s:
        if (await s.execute(select(Organization.id))).first() is not None:
            return SeedResult(DEMO_ORG_ID, None)
        token = await _build(s, today)
        await s.flush()
        # Current values, scores and statuses from the seeded logs, as the worker would.
        await full_recalculation(s, DEMO_ORG_ID)
    return SeedResult(DEMO_ORG_ID, token)


@dataclass(frozen=True)
class _Teams:
    company: Team
    eng: Team
    growth: Team
    platform: Team


@dataclass(frozen=True)
class _Cycles:
    year: Cycle
    quarter: Cycle


@dataclass(frozen=True)
class _Objectives:
    company: Objective
    eng: Objective
    growth: Objective
    dev: Objective


@dataclass(frozen=True)
class _KeyResults:
    """The key results the rest of the seed refers to (the milestone is not among them)."""

    nps: KeyResult
    failures: KeyResult
    uptime: KeyResult
    cost: KeyResult
    signed: KeyResult
    latency: KeyResult


@dataclass(frozen=True)
class _Kpis:
    dau: Kpi
    contracts: Kpi
    incidents: Kpi


async def _build(s: AsyncSession, today: date) -> str:
    s.add(
        Organization(
            id=DEMO_ORG_ID,
            name="Acme Rockets",
            slug=DEMO_SLUG,
            timezone="UTC",
            allow_private_webhook_urls=True,  # `okr dev` receivers listen on loopback
        )
    )
    await s.flush()
    teams = await _add_teams(s)
    people = await _add_people(s)
    _add_memberships(s, teams, people)
    cycles = await _add_cycles(s, today)
    objectives = await _add_objectives(s, teams, cycles, people)
    key_results = await _add_key_results(s, objectives, people)
    _add_alignments(s, objectives, key_results)
    now = clock.now()
    _add_check_ins(s, key_results, cycles.quarter.starts_on, now)
    _add_initiative(s, key_results, people)
    kpis = await _add_kpis(s, teams)
    _add_kpi_measurements(s, kpis, now)
    _link_kpis(s, kpis, objectives, key_results)
    await s.flush()

    _, secret = await create_token(
        s,
        DEMO_ORG_ID,
        name="demo admin",
        scopes=["read", "write", "admin"],
        person_id=people["ada"].id,
    )
    return secret


async def _add_teams(s: AsyncSession) -> _Teams:
    """The company and its team tree, each parent flushed before its children."""
    org = DEMO_ORG_ID
    company = Team(org_id=org, id=uuid.uuid4(), name="Acme Rockets")
    eng = Team(org_id=org, id=uuid.uuid4(), name="Engineering", parent_team_id=company.id)
    growth = Team(org_id=org, id=uuid.uuid4(), name="Growth", parent_team_id=company.id)
    platform = Team(org_id=org, id=uuid.uuid4(), name="Platform", parent_team_id=eng.id)
    s.add_all([company])
    await s.flush()
    s.add_all([eng, growth])
    await s.flush()
    s.add(platform)
    return _Teams(company=company, eng=eng, growth=growth, platform=platform)


async def _add_people(s: AsyncSession) -> dict[str, Person]:
    """One person per organisation role, keyed by first name."""
    people = {
        key: Person(org_id=DEMO_ORG_ID, id=uuid.uuid4(), name=name, email=email, org_role=role)
        for key, name, email, role in [
            ("ada", "Ada Admin", "ada@acme.example", OrgRole.ADMIN),
            ("ben", "Ben Builder", "ben@acme.example", OrgRole.MEMBER),
            ("cleo", "Cleo Growth", "cleo@acme.example", OrgRole.MEMBER),
            ("dev", "Dev Platform", "dev@acme.example", OrgRole.MEMBER),
            ("vic", "Vic Viewer", "vic@acme.example", OrgRole.VIEWER),
        ]
    }
    s.add_all(people.values())
    await s.flush()
    return people


def _add_memberships(s: AsyncSession, teams: _Teams, people: dict[str, Person]) -> None:
    for team, person, role in [
        (teams.company, "ada", TeamRole.LEAD),
        (teams.eng, "ben", TeamRole.LEAD),
        (teams.growth, "cleo", TeamRole.LEAD),
        (teams.platform, "dev", TeamRole.LEAD),
        (teams.platform, "ben", TeamRole.MEMBER),
        (teams.company, "vic", TeamRole.MEMBER),
    ]:
        s.add(
            Membership(org_id=DEMO_ORG_ID, team_id=team.id, person_id=people[person].id, role=role)
        )


async def _add_cycles(s: AsyncSession, today: date) -> _Cycles:
    """Today's year and, inside it, today's quarter; both active."""
    q_start, q_end, q_name = quarter_of(today)
    year = Cycle(
        org_id=DEMO_ORG_ID,
        id=uuid.uuid4(),
        name=str(today.year),
        cadence=Cadence.YEAR,
        starts_on=date(today.year, 1, 1),
        ends_on=date(today.year, 12, 31),
        state=CycleState.ACTIVE,
    )
    quarter = Cycle(
        org_id=DEMO_ORG_ID,
        id=uuid.uuid4(),
        name=q_name,
        cadence=Cadence.QUARTER,
        starts_on=q_start,
        ends_on=q_end,
        state=CycleState.ACTIVE,
        parent_cycle_id=year.id,
    )
    s.add(year)
    await s.flush()
    s.add(quarter)
    await s.flush()
    return _Cycles(year=year, quarter=quarter)


def _objective(s: AsyncSession, title: str, cycle: Cycle, level: Level, **kw: object) -> Objective:
    o = Objective(
        org_id=DEMO_ORG_ID, id=uuid.uuid4(), cycle_id=cycle.id, title=title, level=level, **kw
    )
    s.add(o)
    return o


async def _add_objectives(
    s: AsyncSession, teams: _Teams, cycles: _Cycles, people: dict[str, Person]
) -> _Objectives:
    """A yearly company objective, two quarterly team ones and one individual one."""
    company = _objective(
        s,
        "Become the launch provider small satellites choose first",
        cycles.year,
        Level.COMPANY,
        owner_team_id=teams.company.id,
        owner_person_id=people["ada"].id,
        progress_driver=ObjectiveDriver.BOTH,
    )
    eng = _objective(
        s,
        "Make every launch boringly reliable",
        cycles.quarter,
        Level.TEAM,
        owner_team_id=teams.eng.id,
        owner_person_id=people["ben"].id,
    )
    growth = _objective(
        s,
        "Fill the manifest for next year",
        cycles.quarter,
        Level.TEAM,
        owner_team_id=teams.growth.id,
        owner_person_id=people["cleo"].id,
    )
    dev = _objective(
        s,
        "Ship the new telemetry pipeline",
        cycles.quarter,
        Level.INDIVIDUAL,
        owner_person_id=people["dev"].id,
        owner_team_id=teams.platform.id,
    )
    await s.flush()
    return _Objectives(company=company, eng=eng, growth=growth, dev=dev)


def _key_result(
    s: AsyncSession, o: Objective, title: str, kind: KeyResultKind, **kw: object
) -> KeyResult:
    kr = KeyResult(
        org_id=DEMO_ORG_ID, id=uuid.uuid4(), objective_id=o.id, title=title, kind=kind, **kw
    )
    s.add(kr)
    return kr


async def _add_key_results(
    s: AsyncSession, objectives: _Objectives, people: dict[str, Person]
) -> _KeyResults:
    """One key result of every kind, a KPI-driven stretch one among them."""
    nps = _key_result(
        s,
        objectives.company,
        "Raise customer NPS from 30 to 60",
        KeyResultKind.INCREASE,
        start_value=30,
        target_value=60,
        unit="pts",
        owner_person_id=people["ada"].id,
    )
    failures = _key_result(
        s,
        objectives.eng,
        "Cut failed launches from 4 to 0",
        KeyResultKind.DECREASE,
        start_value=4,
        target_value=0,
        owner_person_id=people["ben"].id,
    )
    uptime = _key_result(
        s,
        objectives.eng,
        "Keep ground-station uptime at or above 99.9%",
        KeyResultKind.ABOVE,
        target_value=99.9,
        unit="%",
        owner_person_id=people["ben"].id,
    )
    cost = _key_result(
        s,
        objectives.growth,
        "Keep acquisition cost at or below $2,000",
        KeyResultKind.BELOW,
        target_value=2000,
        unit="$",
        owner_person_id=people["cleo"].id,
    )
    signed = _key_result(
        s,
        objectives.growth,
        "Sign 12 launch contracts",
        KeyResultKind.INCREASE,
        start_value=0,
        target_value=12,
        owner_person_id=people["cleo"].id,
        progress_driver=KeyResultDriver.KPI,
        stretch=True,
    )
    _key_result(
        s,
        objectives.dev,
        "Telemetry pipeline live in production",
        KeyResultKind.MILESTONE,
        start_value=0,
        target_value=1,
        owner_person_id=people["dev"].id,
    )
    latency = _key_result(
        s,
        objectives.dev,
        "Cut telemetry latency from 900 ms to 200 ms",
        KeyResultKind.DECREASE,
        start_value=900,
        target_value=200,
        unit="ms",
        owner_person_id=people["dev"].id,
    )
    await s.flush()
    return _KeyResults(
        nps=nps, failures=failures, uptime=uptime, cost=cost, signed=signed, latency=latency
    )


def _add_alignments(s: AsyncSession, objectives: _Objectives, key_results: _KeyResults) -> None:
    """Company -> team -> individual, and one supporting (non-contributing) link to a KR."""
    o = objectives
    for child, parent_o, parent_kr, weight in [
        (o.eng, o.company, None, 2.0),
        (o.growth, o.company, None, 1.0),
        (o.dev, o.eng, None, 1.0),
        (o.dev, None, key_results.uptime, 1.0),
    ]:
        s.add(
            Alignment(
                org_id=DEMO_ORG_ID,
                child_objective_id=child.id,
                weight=weight,
                parent_objective_id=parent_o.id if parent_o else None,
                parent_key_result_id=parent_kr.id if parent_kr else None,
                contributes=parent_kr is None,
            )
        )


def _add_check_ins(
    s: AsyncSession, key_results: _KeyResults, quarter_start: date, now: datetime
) -> None:
    # A week apart, closer early in a quarter: every check-in falls inside it.
    step = min(timedelta(days=7), (now - datetime.combine(quarter_start, time(), UTC)) / 4)
    kr = key_results
    check_in_series: list[tuple[KeyResult, list[float]]] = [
        (kr.nps, [34, 39, 44]),
        (kr.failures, [3, 2]),
        (kr.uptime, [99.95, 99.92]),
        (kr.cost, [2300, 2100]),
        (kr.latency, [800, 650, 520]),
    ]
    for key_result, series in check_in_series:
        for i, value in enumerate(series):
            s.add(
                CheckIn(
                    org_id=DEMO_ORG_ID,
                    key_result_id=key_result.id,
                    value=value,
                    confidence=7,
                    author_person_id=key_result.owner_person_id,
                    effective_at=now - step * (len(series) - i),
                )
            )


def _add_initiative(s: AsyncSession, key_results: _KeyResults, people: dict[str, Person]) -> None:
    s.add(
        Initiative(
            org_id=DEMO_ORG_ID,
            key_result_id=key_results.latency.id,
            title="Move ingest to batching",
            owner_person_id=people["dev"].id,
            status=InitiativeStatus.IN_PROGRESS,
        )
    )


async def _add_kpis(s: AsyncSession, teams: _Teams) -> _Kpis:
    dau = Kpi(
        org_id=DEMO_ORG_ID,
        id=uuid.uuid4(),
        name="Daily active users",
        owner_team_id=teams.growth.id,
        direction=Direction.HIGHER_IS_BETTER,
        target=500_000,
        warning_threshold=475_000,
        critical_threshold=450_000,
        unit="users",
    )
    contracts = Kpi(
        org_id=DEMO_ORG_ID,
        id=uuid.uuid4(),
        name="Signed launch contracts",
        owner_team_id=teams.growth.id,
        direction=Direction.HIGHER_IS_BETTER,
        target=12,
    )
    incidents = Kpi(
        org_id=DEMO_ORG_ID,
        id=uuid.uuid4(),
        name="Open P1 incidents",
        owner_team_id=teams.eng.id,
        direction=Direction.LOWER_IS_BETTER,
        target=0,
        warning_threshold=2,
        critical_threshold=5,
    )
    s.add_all([dau, contracts, incidents])
    await s.flush()
    return _Kpis(dau=dau, contracts=contracts, incidents=incidents)


def _add_kpi_measurements(s: AsyncSession, kpis: _Kpis, now: datetime) -> None:
    """Three weekly measurements per KPI, the last a week ago."""
    for kpi, values in [
        (kpis.dau, [455_000, 468_000, 480_000]),
        (kpis.contracts, [2, 4, 5]),
        (kpis.incidents, [2, 4, 3]),
    ]:
        for i, value in enumerate(values):
            s.add(
                KpiMeasurement(
                    org_id=DEMO_ORG_ID,
                    kpi_id=kpi.id,
                    value=value,
                    source="seed",
                    external_id=f"seed-{i}",
                    measured_at=now - timedelta(days=7 * (len(values) - i)),
                )
            )


def _link_kpis(
    s: AsyncSession, kpis: _Kpis, objectives: _Objectives, key_results: _KeyResults
) -> None:
    """The contracts KPI drives the signed-contracts KR; incidents watch engineering."""
    s.add(
        KpiLink(org_id=DEMO_ORG_ID, kpi_id=kpis.contracts.id, key_result_id=key_results.signed.id)
    )
    s.add(KpiLink(org_id=DEMO_ORG_ID, kpi_id=kpis.incidents.id, objective_id=objectives.eng.id))
