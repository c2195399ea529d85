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
from datetime import UTC, datetime, timedelta
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
    """A new migrated database on the server (owner URL), dropped afterwards."""
    server_url = server_url or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_URL
    name = f"okr_bench_{uuid.uuid4().hex[:10]}"
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
    o = org.org_id
    await conn.execute(
        "INSERT INTO organizations (id, name, slug, cycle_cadence, rollup_mode, "
        "reminder_cadence_days, timezone) VALUES ($1, 'Bench', $2, 'QUARTER', 'WEIGHTED_MEAN', 7, "
        "'UTC')",
        o,
        f"bench-{o.hex[:12]}",
    )
    today = now.date()
    await conn.execute(
        "INSERT INTO cycles (org_id, id, name, cadence, starts_on, ends_on, state) "
        "VALUES ($1, $2, 'bench', 'QUARTER', $3, $4, 'ACTIVE')",
        o,
        org.cycle_id,
        today - timedelta(days=45),
        today + timedelta(days=45),
    )
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

    kpo = spec.krs_per_objective
    n_team = spec.team_objectives or max(1, spec.krs // 50)
    n_individual = max(1, spec.krs // kpo - spec.company_objectives - n_team)
    org.company, org.team, org.individual = (
        _uuids(spec.company_objectives),
        _uuids(n_team),
        _uuids(n_individual),
    )
    objectives = []
    for level, ids, driver in (
        ("COMPANY", org.company, "BOTH"),
        ("TEAM", org.team, "BOTH"),
        ("INDIVIDUAL", org.individual, "KEY_RESULTS"),
    ):
        for oid in ids:
            objectives.append(
                (
                    o,
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

    # COPY records: one tuple of column values per row (mixed types; NULLs as None).
    krs: list[tuple[object, ...]] = []
    check_ins: list[tuple[object, ...]] = []
    children_krs: list[uuid.UUID] = []
    all_objectives = org.company + org.team + org.individual
    company, team, individual = set(org.company), set(org.team), set(org.individual)
    for oid in all_objectives:
        for _ in range(kpo):
            if len(krs) >= spec.krs:
                break
            kid, kind = uuid.uuid4(), rnd.choice(KINDS)
            start, target = (100.0, 0.0) if kind == "DECREASE" else (0.0, 100.0)
            if kind == "MILESTONE":
                target = 1.0
            driver = "CHECK_INS"
            if oid in team and rnd.random() < 0.05:
                driver = "CHILDREN"
                children_krs.append(kid)
            elif rnd.random() < spec.kpi_driven_share:
                driver = "KPI"
            current = None
            if driver == "CHECK_INS" and oid not in company:
                effective = now - timedelta(days=spec.check_ins_per_kr + 1)
                for _ in range(spec.check_ins_per_kr):
                    effective += timedelta(days=1)
                    current = (
                        float(rnd.randint(0, 1)) if kind == "MILESTONE" else rnd.uniform(-10, 110)
                    )
                    check_ins.append(
                        (o, uuid.uuid4(), kid, current, rnd.randint(0, 10), effective, effective)
                    )
                if oid in individual:
                    org.leaf_krs.append(kid)
                    if kind == "INCREASE":
                        org.increase_leaf_krs.append(kid)
            krs.append(
                (
                    o,
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
    await _copy(
        conn,
        "key_results",
        [
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
        ],
        krs,
    )
    await _copy(
        conn,
        "check_ins",
        ["org_id", "id", "key_result_id", "value", "confidence", "effective_at", "recorded_at"],
        check_ins,
    )

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
    measurements = [
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
    kpi_krs = [r[1] for r in krs if r[9] == "KPI"]
    await _copy(
        conn,
        "kpi_links",
        ["org_id", "id", "kpi_id", "key_result_id"],
        [(o, uuid.uuid4(), rnd.choice(kpi_ids), k) for k in kpi_krs] if kpi_ids else [],
    )
    await conn.execute("ANALYZE")
    org.counts = {
        "objectives": len(objectives),
        "key_results": len(krs),
        "alignments": len(edges),
        "check_ins": len(check_ins),
        "kpi_measurements": len(measurements),
    }
    return org
