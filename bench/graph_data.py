"""A generated organisation for the graph API benchmark, written with COPY.

    sizes = Sizes(teams=50, people=500, objectives=2000, key_results=6000,
                  check_ins=30000, kpis=100)
    org_id = await ensure_org(owner_url, sizes)   # generated once, found by its slug

Shape (deterministic, `random.Random(sizes.seed)`):
- teams: a tenth are departments (top level), the rest squads under them;
  people spread over teams (the first of each team is its LEAD); person 0 is
  an ADMIN.
- cycles: the year 2026 and its active quarter 2026-Q4; objectives live in the
  quarter. 1% of objectives are COMPANY level, 45% TEAM (round robin over the
  teams, each aligned to a company objective), the rest INDIVIDUAL (each
  aligned to a team objective).
- key results round robin over objectives, check-ins round robin over key
  results (weekly, newest 1-5 days ago); each KR's current value, score,
  confidence and last check-in follow from its check-ins.
- KPIs owned by teams, 12 weekly measurements each (health and latest value
  kept on the KPI as ingestion would); each team objective is kept on course by
  one KPI of its team, and every fifth one's first key result is measured by it.

Rows are COPYed as the connecting role, which must bypass row-level security
(a superuser, as the default `postgres` is): COPY refuses tables with RLS.
"""

from __future__ import annotations

import enum
import random
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from okrgraph.domain import scoring
from okrgraph.domain.models import Base
from okrgraph.domain.models.enums import Direction, Health, Level, Status


@dataclass(frozen=True)
class Sizes:
    teams: int = 50
    people: int = 500
    objectives: int = 2000
    key_results: int = 6000
    check_ins: int = 30000
    kpis: int = 100
    seed: int = 1

    @property
    def slug(self) -> str:
        """E.g. `bench-teams50-people500-...-seed1`: the organisation's key."""
        return "bench-" + "-".join(f"{k.replace('_', '')}{v}" for k, v in asdict(self).items())


TABLES = [
    "teams",
    "people",
    "memberships",
    "cycles",
    "objectives",
    "alignments",
    "key_results",
    "check_ins",
    "kpis",
    "kpi_measurements",
    "kpi_links",
]


class Rows:
    """Rows per table: `add(table, column=value, ...)`; columns from the first row."""

    def __init__(self, org_id: uuid.UUID) -> None:
        self.org_id = org_id
        self.tables: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}

    def add(self, table: str, **values: Any) -> uuid.UUID:
        row_id = values.setdefault("id", uuid.uuid4())
        self.tables[table].append({"org_id": self.org_id, **values})
        return row_id  # type: ignore[no-any-return]


def with_defaults(table: str, records: list[dict[str, Any]]) -> list[str]:
    """Adds the models' Python-side defaults (COPY only applies the server's) to
    `records`; returns the columns to copy."""
    given = {c for r in records for c in r}
    for column in Base.metadata.tables[table].columns:
        default = column.default
        if column.name in given or default is None or not default.is_scalar:
            continue
        arg = default.arg  # type: ignore[attr-defined]
        value = arg.name if isinstance(arg, enum.Enum) else arg
        for record in records:
            record[column.name] = value
        given.add(column.name)
    return sorted(given)


def _status(score: float) -> str:
    if score >= 0.6:
        return Status.ON_TRACK.name
    return Status.AT_RISK.name if score >= 0.3 else Status.OFF_TRACK.name


def build(org_id: uuid.UUID, sizes: Sizes, now: datetime) -> Rows:
    rnd = random.Random(sizes.seed)
    rows = Rows(org_id)
    base = now - timedelta(days=50)
    teams = _teams(rows, sizes)
    people = _people_in_teams(rows, sizes, teams)
    quarter = _cycles(rows)
    objectives, team_objectives = _objectives(rows, sizes, rnd, teams, people, quarter, base)
    key_results = _key_results(rows, sizes, rnd, objectives, people, base)
    _check_ins(rows, sizes, rnd, key_results, now)
    team_kpis = _kpis(rows, sizes, rnd, teams, now)
    _kpi_links(rows, team_objectives, team_kpis, key_results, base)
    return rows


def _teams(rows: Rows, sizes: Sizes) -> list[uuid.UUID]:
    """A tenth of the teams are departments; the rest are squads under them, in turn."""
    departments = max(1, sizes.teams // 10)
    teams: list[uuid.UUID] = []
    for n in range(sizes.teams):
        parent = teams[n % departments] if n >= departments else None
        teams.append(rows.add("teams", name=f"Team {n:03}", parent_team_id=parent))
    return teams


def _people_in_teams(rows: Rows, sizes: Sizes, teams: list[uuid.UUID]) -> list[uuid.UUID]:
    """People round robin over the teams, the first of each its LEAD; person 0 an ADMIN."""
    members: dict[int, list[uuid.UUID]] = {t: [] for t in range(sizes.teams)}
    people: list[uuid.UUID] = []
    for n in range(sizes.people):
        role = "ADMIN" if n == 0 else "MEMBER"
        person = rows.add(
            "people", name=f"Person {n:04}", email=f"person{n:04}@bench.test", org_role=role
        )
        people.append(person)
        team = n % sizes.teams
        lead = "LEAD" if not members[team] else "MEMBER"
        rows.add("memberships", team_id=teams[team], person_id=person, role=lead)
        members[team].append(person)
    return people


def _cycles(rows: Rows) -> uuid.UUID:
    """The year 2026 and its quarter 2026-Q4, both active; returns the quarter."""
    year = rows.add(
        "cycles",
        name="2026",
        cadence="YEAR",
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
        state="ACTIVE",
    )
    return rows.add(
        "cycles",
        name="2026-Q4",
        cadence="QUARTER",
        parent_cycle_id=year,
        starts_on=date(2026, 10, 1),
        ends_on=date(2026, 12, 31),
        state="ACTIVE",
    )


def _objectives(
    rows: Rows,
    sizes: Sizes,
    rnd: random.Random,
    teams: list[uuid.UUID],
    people: list[uuid.UUID],
    quarter: uuid.UUID,
    base: datetime,
) -> tuple[list[uuid.UUID], dict[int, list[uuid.UUID]]]:
    """1% COMPANY, 45% TEAM (round robin over the teams, aligned to a company one), the
    rest INDIVIDUAL (aligned to a team objective of the owner's team, else a company
    one); returns all objectives and the team objectives by team."""
    company_n = max(1, sizes.objectives // 100)
    team_n = min(sizes.objectives - company_n, round(sizes.objectives * 0.45))
    objectives: list[uuid.UUID] = []
    company: list[uuid.UUID] = []
    team_objectives: dict[int, list[uuid.UUID]] = {t: [] for t in range(sizes.teams)}
    for n in range(sizes.objectives):
        fields: dict[str, Any] = {"level": Level.COMPANY.name}
        if company_n <= n < company_n + team_n:
            team = (n - company_n) % sizes.teams
            fields = {"level": Level.TEAM.name, "owner_team_id": teams[team]}
        elif n >= company_n + team_n:
            owner_n = (n - company_n - team_n) % sizes.people
            fields = {"level": Level.INDIVIDUAL.name, "owner_person_id": people[owner_n]}
        progress = round(rnd.random(), 4)
        objective = rows.add(
            "objectives",
            cycle_id=quarter,
            title=f"Objective {n:05}",
            description="Generated for the benchmark.",
            progress=progress,
            status=_status(progress),
            created_at=base + timedelta(seconds=n),
            **fields,
        )
        objectives.append(objective)
        if fields["level"] == Level.COMPANY.name:
            company.append(objective)
        elif fields["level"] == Level.TEAM.name:
            team_objectives[team].append(objective)
            parent = company[n % len(company)]
            rows.add(
                "alignments",
                child_objective_id=objective,
                parent_objective_id=parent,
                weight=float(1 + n % 3),
                created_at=base,
            )
        else:
            owned = team_objectives[owner_n % sizes.teams] or company
            rows.add(
                "alignments",
                child_objective_id=objective,
                parent_objective_id=owned[n % len(owned)],
                weight=1.0,
                created_at=base,
            )
    return objectives, team_objectives


def _key_results(
    rows: Rows,
    sizes: Sizes,
    rnd: random.Random,
    objectives: list[uuid.UUID],
    people: list[uuid.UUID],
    base: datetime,
) -> list[dict[str, Any]]:
    """INCREASE key results round robin over the objectives, not yet checked in;
    returns their rows (`_check_ins` fills in what follows from the check-ins)."""
    key_results: list[dict[str, Any]] = []
    for n in range(sizes.key_results):
        objective_n = n % sizes.objectives
        owner = people[rnd.randrange(sizes.people)]
        target = float(rnd.choice([10, 50, 100, 250, 1000]))
        rows.add(
            "key_results",
            objective_id=objectives[objective_n],
            title=f"Key result {n:05}",
            owner_person_id=owner,
            kind="INCREASE",
            unit="",
            start_value=0.0,
            target_value=target,
            current_value=None,
            confidence=None,
            last_check_in_at=None,
            score=0.0,
            status=Status.NOT_STARTED.name,
            created_at=base + timedelta(seconds=n),
        )
        key_results.append(rows.tables["key_results"][-1])
    return key_results


def _check_ins(
    rows: Rows,
    sizes: Sizes,
    rnd: random.Random,
    key_results: list[dict[str, Any]],
    now: datetime,
) -> None:
    """Check-ins round robin over the key results, weekly, the newest 1-5 days ago; the
    newest sets its key result's current value, confidence, score and status."""
    for n in range(sizes.check_ins):
        kr = key_results[n % sizes.key_results]
        week = n // sizes.key_results
        at = now - timedelta(days=1 + (n % 5) + 7 * week, minutes=n % 60)
        value = round(kr["target_value"] * rnd.random(), 2)
        confidence = rnd.randint(3, 9)
        rows.add(
            "check_ins",
            key_result_id=kr["id"],
            value=value,
            confidence=confidence,
            comment="",
            author_person_id=kr["owner_person_id"],
            effective_at=at,
            recorded_at=at,
        )
        if week == 0:  # the newest check-in of the key result
            score = round(min(1.0, value / kr["target_value"]), 4)
            kr.update(
                current_value=value,
                confidence=confidence,
                last_check_in_at=at,
                score=score,
                status=_status(score),
            )


def _kpis(
    rows: Rows, sizes: Sizes, rnd: random.Random, teams: list[uuid.UUID], now: datetime
) -> dict[int, list[uuid.UUID]]:
    """KPIs round robin over the teams with 12 weekly measurements, the latest value and
    health kept on the KPI as ingestion would; returns the KPIs by team."""
    team_kpis: dict[int, list[uuid.UUID]] = {t: [] for t in range(sizes.teams)}
    for n in range(sizes.kpis):
        team = n % sizes.teams
        latest = float(rnd.randint(40, 120))
        health = scoring.kpi_health(Direction.HIGHER_IS_BETTER, latest, 80.0, 60.0)
        kpi = rows.add(
            "kpis",
            name=f"KPI {n:03}",
            owner_team_id=teams[team],
            unit="",
            direction="HIGHER_IS_BETTER",
            target=100.0,
            warning_threshold=80.0,
            critical_threshold=60.0,
            cadence="WEEKLY",
            health=Health(health).name,
            latest_value=latest,
            latest_at=now - timedelta(days=1),
        )
        team_kpis[team].append(kpi)
        for week in range(12):
            value = latest if week == 0 else float(rnd.randint(40, 120))
            rows.add(
                "kpi_measurements",
                kpi_id=kpi,
                value=value,
                source="bench",
                measured_at=now - timedelta(days=1 + 7 * week),
                external_id=f"{n}-{week}",
            )
    return team_kpis


def _kpi_links(
    rows: Rows,
    team_objectives: dict[int, list[uuid.UUID]],
    team_kpis: dict[int, list[uuid.UUID]],
    key_results: list[dict[str, Any]],
    base: datetime,
) -> None:
    """Each team objective kept on course by one KPI of its team; every fifth one's
    first key result measured by it."""
    by_objective = {kr["objective_id"]: kr["id"] for kr in reversed(key_results)}
    for team, owned in team_objectives.items():
        for i, objective in enumerate(owned):
            if not team_kpis[team]:
                continue
            kpi = team_kpis[team][i % len(team_kpis[team])]
            rows.add("kpi_links", kpi_id=kpi, objective_id=objective, created_at=base)
            if i % 5 == 0 and objective in by_objective:
                rows.add(
                    "kpi_links", kpi_id=kpi, key_result_id=by_objective[objective], created_at=base
                )


async def find_org(conn: asyncpg.Connection, sizes: Sizes) -> uuid.UUID | None:
    found = await conn.fetchval("SELECT id FROM organizations WHERE slug = $1", sizes.slug)
    return found if isinstance(found, uuid.UUID) else None


async def ensure_org(owner_url: str, sizes: Sizes, *, regenerate: bool = False) -> uuid.UUID:
    """The organisation generated for `sizes` in the database at `owner_url`,
    generated now unless present (`regenerate`: drop and generate it again)."""
    conn = await asyncpg.connect(owner_url)
    try:
        org_id = await find_org(conn, sizes)
        if org_id is not None and not regenerate:
            return org_id
        async with conn.transaction():
            if org_id is not None:
                await conn.execute("DELETE FROM organizations WHERE id = $1", org_id)
            org_id = uuid.uuid4()
            org = {"id": org_id, "name": "Bench Corp", "slug": sizes.slug}
            rows = build(org_id, sizes, datetime.now(UTC))
            for table in ["organizations", *TABLES]:
                records = [org] if table == "organizations" else rows.tables[table]
                if not records:
                    continue
                columns = with_defaults(table, records)
                await conn.copy_records_to_table(
                    table,
                    records=[tuple(r.get(c) for c in columns) for r in records],
                    columns=columns,
                )
        await conn.execute("ANALYZE")
        return org_id
    finally:
        await conn.close()
