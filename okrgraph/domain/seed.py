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


async def _build(s: AsyncSession, today: date) -> str:
    org = DEMO_ORG_ID
    s.add(Organization(id=org, name="Acme Rockets", slug=DEMO_SLUG, timezone="UTC"))
    await s.flush()

    def add(obj: object) -> object:
        s.add(obj)
        return obj

    company = Team(org_id=org, id=uuid.uuid4(), name="Acme Rockets")
    eng = Team(org_id=org, id=uuid.uuid4(), name="Engineering", parent_team_id=company.id)
    growth = Team(org_id=org, id=uuid.uuid4(), name="Growth", parent_team_id=company.id)
    platform = Team(org_id=org, id=uuid.uuid4(), name="Platform", parent_team_id=eng.id)
    s.add_all([company])
    await s.flush()
    s.add_all([eng, growth])
    await s.flush()
    s.add(platform)

    people = {
        key: Person(org_id=org, id=uuid.uuid4(), name=name, email=email, org_role=role)
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
    for team, person, role in [
        (company, "ada", TeamRole.LEAD),
        (eng, "ben", TeamRole.LEAD),
        (growth, "cleo", TeamRole.LEAD),
        (platform, "dev", TeamRole.LEAD),
        (platform, "ben", TeamRole.MEMBER),
        (company, "vic", TeamRole.MEMBER),
    ]:
        s.add(Membership(org_id=org, team_id=team.id, person_id=people[person].id, role=role))

    q_start, q_end, q_name = quarter_of(today)
    year = Cycle(
        org_id=org,
        id=uuid.uuid4(),
        name=str(today.year),
        cadence=Cadence.YEAR,
        starts_on=date(today.year, 1, 1),
        ends_on=date(today.year, 12, 31),
        state=CycleState.ACTIVE,
    )
    quarter = Cycle(
        org_id=org,
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

    def objective(title: str, cycle: Cycle, level: Level, **kw: object) -> Objective:
        o = Objective(
            org_id=org, id=uuid.uuid4(), cycle_id=cycle.id, title=title, level=level, **kw
        )
        s.add(o)
        return o

    o_company = objective(
        "Become the launch provider small satellites choose first",
        year,
        Level.COMPANY,
        owner_team_id=company.id,
        owner_person_id=people["ada"].id,
        progress_driver=ObjectiveDriver.BOTH,
    )
    o_eng = objective(
        "Make every launch boringly reliable",
        quarter,
        Level.TEAM,
        owner_team_id=eng.id,
        owner_person_id=people["ben"].id,
    )
    o_growth = objective(
        "Fill the manifest for next year",
        quarter,
        Level.TEAM,
        owner_team_id=growth.id,
        owner_person_id=people["cleo"].id,
    )
    o_dev = objective(
        "Ship the new telemetry pipeline",
        quarter,
        Level.INDIVIDUAL,
        owner_person_id=people["dev"].id,
        owner_team_id=platform.id,
    )
    await s.flush()

    def key_result(o: Objective, title: str, kind: KeyResultKind, **kw: object) -> KeyResult:
        kr = KeyResult(org_id=org, id=uuid.uuid4(), objective_id=o.id, title=title, kind=kind, **kw)
        s.add(kr)
        return kr

    kr_nps = key_result(
        o_company,
        "Raise customer NPS from 30 to 60",
        KeyResultKind.INCREASE,
        start_value=30,
        target_value=60,
        unit="pts",
        owner_person_id=people["ada"].id,
    )
    kr_failures = key_result(
        o_eng,
        "Cut failed launches from 4 to 0",
        KeyResultKind.DECREASE,
        start_value=4,
        target_value=0,
        owner_person_id=people["ben"].id,
    )
    kr_uptime = key_result(
        o_eng,
        "Keep ground-station uptime at or above 99.9%",
        KeyResultKind.ABOVE,
        target_value=99.9,
        unit="%",
        owner_person_id=people["ben"].id,
    )
    kr_cost = key_result(
        o_growth,
        "Keep acquisition cost at or below $2,000",
        KeyResultKind.BELOW,
        target_value=2000,
        unit="$",
        owner_person_id=people["cleo"].id,
    )
    kr_signed = key_result(
        o_growth,
        "Sign 12 launch contracts",
        KeyResultKind.INCREASE,
        start_value=0,
        target_value=12,
        owner_person_id=people["cleo"].id,
        progress_driver=KeyResultDriver.KPI,
        stretch=True,
    )
    key_result(
        o_dev,
        "Telemetry pipeline live in production",
        KeyResultKind.MILESTONE,
        start_value=0,
        target_value=1,
        owner_person_id=people["dev"].id,
    )
    kr_latency = key_result(
        o_dev,
        "Cut telemetry latency from 900 ms to 200 ms",
        KeyResultKind.DECREASE,
        start_value=900,
        target_value=200,
        unit="ms",
        owner_person_id=people["dev"].id,
    )
    await s.flush()

    for child, parent_o, parent_kr, weight in [
        (o_eng, o_company, None, 2.0),
        (o_growth, o_company, None, 1.0),
        (o_dev, o_eng, None, 1.0),
        (o_dev, None, kr_uptime, 1.0),
    ]:
        s.add(
            Alignment(
                org_id=org,
                child_objective_id=child.id,
                weight=weight,
                parent_objective_id=parent_o.id if parent_o else None,
                parent_key_result_id=parent_kr.id if parent_kr else None,
                contributes=parent_kr is None,
            )
        )

    now = clock.now()
    # A week apart, closer early in a quarter: every check-in falls inside it.
    step = min(timedelta(days=7), (now - datetime.combine(q_start, time(), UTC)) / 4)
    check_in_series: list[tuple[KeyResult, list[float]]] = [
        (kr_nps, [34, 39, 44]),
        (kr_failures, [3, 2]),
        (kr_uptime, [99.95, 99.92]),
        (kr_cost, [2300, 2100]),
        (kr_latency, [800, 650, 520]),
    ]
    for kr, series in check_in_series:
        for i, value in enumerate(series):
            s.add(
                CheckIn(
                    org_id=org,
                    key_result_id=kr.id,
                    value=value,
                    confidence=7,
                    author_person_id=kr.owner_person_id,
                    effective_at=now - step * (len(series) - i),
                )
            )

    s.add(
        Initiative(
            org_id=org,
            key_result_id=kr_latency.id,
            title="Move ingest to batching",
            owner_person_id=people["dev"].id,
            status=InitiativeStatus.IN_PROGRESS,
        )
    )

    dau = Kpi(
        org_id=org,
        id=uuid.uuid4(),
        name="Daily active users",
        owner_team_id=growth.id,
        direction=Direction.HIGHER_IS_BETTER,
        target=500_000,
        warning_threshold=475_000,
        critical_threshold=450_000,
        unit="users",
    )
    contracts = Kpi(
        org_id=org,
        id=uuid.uuid4(),
        name="Signed launch contracts",
        owner_team_id=growth.id,
        direction=Direction.HIGHER_IS_BETTER,
        target=12,
    )
    incidents = Kpi(
        org_id=org,
        id=uuid.uuid4(),
        name="Open P1 incidents",
        owner_team_id=eng.id,
        direction=Direction.LOWER_IS_BETTER,
        target=0,
        warning_threshold=2,
        critical_threshold=5,
    )
    s.add_all([dau, contracts, incidents])
    await s.flush()
    for kpi, values in [
        (dau, [455_000, 468_000, 480_000]),
        (contracts, [2, 4, 5]),
        (incidents, [2, 4, 3]),
    ]:
        for i, value in enumerate(values):
            s.add(
                KpiMeasurement(
                    org_id=org,
                    kpi_id=kpi.id,
                    value=value,
                    source="seed",
                    external_id=f"seed-{i}",
                    measured_at=now - timedelta(days=7 * (len(values) - i)),
                )
            )
    s.add(KpiLink(org_id=org, kpi_id=contracts.id, key_result_id=kr_signed.id))
    s.add(KpiLink(org_id=org, kpi_id=incidents.id, objective_id=o_eng.id))
    await s.flush()

    _, secret = await create_token(
        s, org, name="demo admin", scopes=["read", "write", "admin"], person_id=people["ada"].id
    )
    return secret
