"""Generate a large organisation for benchmarks, fast (COPY), as the schema owner.

    spec = Spec(krs=100_000)
    async with scratch_database(os.environ.get("BENCH_DATABASE_URL")) as url:
        conn = await asyncpg.connect(url)
        org = await generate(conn, spec)

The graph: company objectives (driver BOTH) <- team objectives (BOTH, aligned to
one or two company objectives) <- individual objectives (KEY_RESULTS, aligned
to one team objective, some to a second one or to a team KR driven by
CHILDREN). Every objective has `krs_per_objective` key results; individual
KRs have check-ins (current value = the latest), some follow a KPI. Scores
start at 0: run a full recalculation to roll them up.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from okrgraph.domain.migrate import migrate

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
KINDS = ["INCREASE", "INCREASE", "INCREASE", "DECREASE", "ABOVE", "BELOW", "MILESTONE"]


@dataclass(frozen=True)
class Spec:
    krs: int = 10_000  # key results in total
    krs_per_objective: int = 3
    company_objectives: int = 5
    team_objectives: int = 0  # 0: one per 50 KRs
    teams: int = 20
    people: int = 200
    check_ins_per_kr: int = 2
    kpis: int = 10
    measurements_per_kpi: int = 30
    kpi_driven_share: float = 0.01
    seed: int = 7


@dataclass
class Org:
    org_id: uuid.UUID
    cycle_id: uuid.UUID
    company: list[uuid.UUID] = field(default_factory=list)
    team: list[uuid.UUID] = field(default_factory=list)
    individual: list[uuid.UUID] = field(default_factory=list)
    leaf_krs: list[uuid.UUID] = field(default_factory=list)  # check-in driven, individual
    increase_leaf_krs: list[uuid.UUID] = field(default_factory=list)  # of those, INCREASE
    person_ids: list[uuid.UUID] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def objectives(self) -> int:
        return len(self.company) + len(self.team) + len(self.individual)


@asynccontextmanager
async def scratch_database(server_url: str | None = None) -> AsyncIterator[str]:
    """A new migrated database on the server (owner URL), dropped afterwards; its name
    starts with BENCH_DB_PREFIX (default okr_bench_), so each engineer's are told apart."""
    server_url = server_url or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_URL
    name = f"{os.environ.get('BENCH_DB_PREFIX', 'okr_bench_')}{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    url = f"{base}/{name}"
    try:
        await migrate(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _uuids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


async def _copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: list[Any]) -> None:
    if rows:
        await conn.copy_records_to_table(table, records=rows, columns=columns)


async def generate(conn: asyncpg.Connection, spec: Spec, now: datetime | None = None) -> Org:
    """Insert one organisation per `spec`; returns its ids."""
    rnd = random.Random(spec.seed)
    now = now or datetime.now(UTC)
    org = Org(uuid.uuid4(), uuid.uuid4())
    await _insert_org_and_cycle(conn, org, now.date())
    team_ids = await _copy_teams_and_people(conn, org, spec)
    objectives = await _copy_objectives(conn, org, spec, rnd, team_ids)
    krs, check_ins, children_krs = _key_results(org, spec, rnd, now)
    await _copy(conn, "key_results", KEY_RESULT_COLUMNS, krs)
    await _copy(
        conn,
        "check_ins",
        ["org_id", "id", "key_result_id", "value", "confidence", "effective_at", "recorded_at"],
        check_ins,
    )
    edges = await _copy_alignments(conn, org, rnd, children_krs)
    measurements = await _copy_kpis(conn, org, spec, rnd, now, krs)
    await conn.execute("ANALYZE")
    org.counts = {
        "objectives": len(objectives),
        "key_results": len(krs),
        "alignments": len(edges),
        "check_ins": len(check_ins),
        "kpi_measurements": len(measurements),
    }
    return org


async def _insert_org_and_cycle(conn: asyncpg.Connection, org: Org, today: date) -> None:
    """The organisation and its one active quarter, today in its middle."""
    o = org.org_id
    await conn.execute(
        "INSERT INTO organizations (id, name, slug, cycle_cadence, rollup_mode, "
        "reminder_cadence_days, timezone) VALUES ($1, 'Bench', $2, 'QUARTER', 'WEIGHTED_MEAN', 7, "
        "'UTC')",
        o,
        f"bench-{o.hex[:12]}",
    )
    await conn.execute(
        "INSERT INTO cycles (org_id, id, name, cadence, starts_on, ends_on, state) "
        "VALUES ($1, $2, 'bench', 'QUARTER', $3, $4, 'ACTIVE')",
        o,
        org.cycle_id,
        today - timedelta(days=45),
        today + timedelta(days=45),
    )


async def _copy_teams_and_people(conn: asyncpg.Connection, org: Org, spec: Spec) -> list[uuid.UUID]:
    """Flat teams and MEMBER people (kept in `org.person_ids`); returns the team ids."""
    o = org.org_id
    team_ids = _uuids(spec.teams)
    await _copy(
        conn,
        "teams",
        ["org_id", "id", "name"],
        [(o, t, f"team {i}") for i, t in enumerate(team_ids)],
    )
    org.person_ids = _uuids(spec.people)
    await _copy(
        conn,
        "people",
        ["org_id", "id", "name", "email", "org_role"],
        [(o, p, f"p{i}", f"p{i}@bench.example", "MEMBER") for i, p in enumerate(org.person_ids)],
    )
    return team_ids


async def _copy_objectives(
    conn: asyncpg.Connection,
    org: Org,
    spec: Spec,
    rnd: random.Random,
    team_ids: list[uuid.UUID],
) -> list[tuple[object, ...]]:
    """Company, team and individual objectives (their ids kept in `org`), each owned by
    a random team and person; enough individual ones for `spec.krs` key results."""
    kpo = spec.krs_per_objective
    n_team = spec.team_objectives or max(1, spec.krs // 50)
    n_individual = max(1, spec.krs // kpo - spec.company_objectives - n_team)
    org.company, org.team, org.individual = (
        _uuids(spec.company_objectives),
        _uuids(n_team),
        _uuids(n_individual),
    )
    objectives: list[tuple[object, ...]] = []
    for level, ids, driver in (
        ("COMPANY", org.company, "BOTH"),
        ("TEAM", org.team, "BOTH"),
        ("INDIVIDUAL", org.individual, "KEY_RESULTS"),
    ):
        for oid in ids:
            objectives.append(
                (
                    org.org_id,
                    oid,
                    org.cycle_id,
                    "objective",
                    level,
                    rnd.choice(team_ids),
                    rnd.choice(org.person_ids),
                    "ACTIVE",
                    driver,
                    "NOT_STARTED",
                )
            )
    await _copy(
        conn,
        "objectives",
        [
            "org_id",
            "id",
            "cycle_id",
            "title",
            "level",
            "owner_team_id",
            "owner_person_id",
            "state",
            "progress_driver",
            "status",
        ],
        objectives,
    )
    return objectives


KEY_RESULT_COLUMNS = [
    "org_id",
    "id",
    "objective_id",
    "title",
    "kind",
    "start_value",
    "target_value",
    "current_value",
    "weight",
    "progress_driver",
    "stretch",
    "state",
    "status",
]
DRIVER = KEY_RESULT_COLUMNS.index("progress_driver")


def _key_results(
    org: Org, spec: Spec, rnd: random.Random, now: datetime
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[uuid.UUID]]:
    """`krs_per_objective` key results per objective up to `spec.krs` (COPY records in
    KEY_RESULT_COLUMNS order), their check-ins, and the CHILDREN-driven ones' ids.
    Check-in driven individual KRs are kept in `org.leaf_krs` (INCREASE ones also in
    `org.increase_leaf_krs`)."""
    # COPY records: one tuple of column values per row (mixed types; NULLs as None).
    krs: list[tuple[object, ...]] = []
    check_ins: list[tuple[object, ...]] = []
    children_krs: list[uuid.UUID] = []
    company, team, individual = set(org.company), set(org.team), set(org.individual)
    for oid in org.company + org.team + org.individual:
        for _ in range(spec.krs_per_objective):
            if len(krs) >= spec.krs:
                break
            kid, kind = uuid.uuid4(), rnd.choice(KINDS)
            start, target = (100.0, 0.0) if kind == "DECREASE" else (0.0, 100.0)
            if kind == "MILESTONE":
                target = 1.0
            driver = _driver(rnd, oid in team, spec.kpi_driven_share)
            if driver == "CHILDREN":
                children_krs.append(kid)
            current = None
            if driver == "CHECK_INS" and oid not in company:
                current = _add_check_ins(check_ins, org.org_id, kid, kind, spec, rnd, now)
                if oid in individual:
                    org.leaf_krs.append(kid)
                    if kind == "INCREASE":
                        org.increase_leaf_krs.append(kid)
            krs.append(
                (
                    org.org_id,
                    kid,
                    oid,
                    "kr",
                    kind,
                    start,
                    target,
                    current,
                    float(rnd.choice([1, 1, 2, 3])),
                    driver,
                    rnd.random() < 0.1,
                    "ACTIVE",
                    "NOT_STARTED",
                )
            )
    return krs, check_ins, children_krs


def _driver(rnd: random.Random, of_team_objective: bool, kpi_driven_share: float) -> str:
    """A few team KRs roll up child objectives, a share follow a KPI, the rest check-ins."""
    if of_team_objective and rnd.random() < 0.05:
        return "CHILDREN"
    if rnd.random() < kpi_driven_share:
        return "KPI"
    return "CHECK_INS"


def _add_check_ins(
    check_ins: list[tuple[object, ...]],
    o: uuid.UUID,
    kid: uuid.UUID,
    kind: str,
    spec: Spec,
    rnd: random.Random,
    now: datetime,
) -> float | None:
    """Daily check-ins of the key result up to yesterday; returns the latest value."""
    effective = now - timedelta(days=spec.check_ins_per_kr + 1)
    current: float | None = None
    for _ in range(spec.check_ins_per_kr):
        effective += timedelta(days=1)
        current = float(rnd.randint(0, 1)) if kind == "MILESTONE" else rnd.uniform(-10, 110)
        check_ins.append((o, uuid.uuid4(), kid, current, rnd.randint(0, 10), effective, effective))
    return current


async def _copy_alignments(
    conn: asyncpg.Connection, org: Org, rnd: random.Random, children_krs: list[uuid.UUID]
) -> list[tuple[object, ...]]:
    """Team objectives under one or two company objectives; individual ones under one or
    two team objectives (a few not contributing), a few also under a CHILDREN-driven KR."""
    o = org.org_id
    edges: list[tuple[object, ...]] = []
    for tid in org.team:
        for parent in rnd.sample(
            org.company, k=min(len(org.company), 2 if rnd.random() < 0.3 else 1)
        ):
            edges.append((o, uuid.uuid4(), tid, parent, None, float(rnd.choice([1, 2])), True))
    for iid in org.individual:
        parents = rnd.sample(org.team, k=min(len(org.team), 2 if rnd.random() < 0.1 else 1))
        for parent in parents:
            edges.append((o, uuid.uuid4(), iid, parent, None, 1.0, rnd.random() < 0.95))
        if children_krs and rnd.random() < 0.02:
            edges.append((o, uuid.uuid4(), iid, None, rnd.choice(children_krs), 1.0, True))
    await _copy(
        conn,
        "alignments",
        [
            "org_id",
            "id",
            "child_objective_id",
            "parent_objective_id",
            "parent_key_result_id",
            "weight",
            "contributes",
        ],
        edges,
    )
    return edges


async def _copy_kpis(
    conn: asyncpg.Connection,
    org: Org,
    spec: Spec,
    rnd: random.Random,
    now: datetime,
    krs: list[tuple[object, ...]],
) -> list[tuple[object, ...]]:
    """The KPIs with daily measurements, each KPI-driven key result linked to a random
    one; returns the measurements."""
    o = org.org_id
    kpi_ids = _uuids(spec.kpis)
    await _copy(
        conn,
        "kpis",
        ["org_id", "id", "name", "direction", "target", "cadence", "health"],
        [
            (o, k, f"kpi {i}", "HIGHER_IS_BETTER", 100.0, "WEEKLY", "UNKNOWN")
            for i, k in enumerate(kpi_ids)
        ],
    )
    measurements: list[tuple[object, ...]] = [
        (o, uuid.uuid4(), k, rnd.uniform(0, 120), now - timedelta(days=d), "bench", f"{k.hex}-{d}")
        for k in kpi_ids
        for d in range(spec.measurements_per_kpi)
    ]
    await _copy(
        conn,
        "kpi_measurements",
        ["org_id", "id", "kpi_id", "value", "measured_at", "source", "external_id"],
        measurements,
    )
    kpi_krs = [r[1] for r in krs if r[DRIVER] == "KPI"]
    await _copy(
        conn,
        "kpi_links",
        ["org_id", "id", "kpi_id", "key_result_id"],
        [(o, uuid.uuid4(), rnd.choice(kpi_ids), k) for k in kpi_krs] if kpi_ids else [],
    )
    return measurements
