"""Worker jobs against committed data: idempotence, concurrency, coalescing, the relay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq import func
from arq.connections import ArqRedis
from sqlalchemy import func as sqlfunc
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.auth.tokens import create_token, system_principal
from okrgraph.domain.config import Settings
from okrgraph.domain.db import tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import (
    Kpi,
    KpiLink,
    KpiMeasurement,
    Objective,
    OutboxEvent,
    Person,
    ScoreHistory,
)
from okrgraph.domain.models.enums import Direction, OrgRole
from okrgraph.domain.outbox.jobs import RECALC_WINDOW_MS, recalculation_job
from okrgraph.domain.scores.service import full_recalculation
from okrgraph.schema.node import to_global_id
from okrgraph.worker.jobs.kpis import sync_kpi_key_results
from okrgraph.worker.jobs.outbox import refresh_scores, relay_outbox
from okrgraph.worker.jobs.scores import full_recalculation as full_recalculation_job
from okrgraph.worker.jobs.scores import recalculate_scores
from tests.worker.conftest import Committed, build_company, run_burst


async def check_in(
    sm: async_sessionmaker[AsyncSession], org: uuid.UUID, kr: uuid.UUID, v: float
) -> None:
    async with tenant_session(sm, org) as session:
        await record_check_in(session, principal=system_principal(org), key_result_id=kr, value=v)


async def state(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> dict[Any, Any]:
    async with tenant_session(sm, org) as session:
        rows = await session.execute(
            text(
                "SELECT id, score AS v, status FROM key_results UNION ALL "
                "SELECT id, progress, status FROM objectives"
            )
        )
        return {r.id: (round(r.v, 12), r.status) for r in rows}


async def progress(sm: async_sessionmaker[AsyncSession], org: uuid.UUID, oid: uuid.UUID) -> float:
    async with tenant_session(sm, org) as session:
        return float(
            await session.scalar(select(Objective.progress).where(Objective.id == oid)) or 0
        )


async def count(sm: async_sessionmaker[AsyncSession], org: uuid.UUID, stmt: Any) -> int:
    async with tenant_session(sm, org) as session:
        return int(await session.scalar(stmt) or 0)


def pending() -> Any:
    return (
        select(sqlfunc.count())
        .select_from(OutboxEvent)
        .where(OutboxEvent.processed_at.is_(None), OutboxEvent.payload.has_key("recalc"))
    )


async def test_running_the_job_twice_gives_the_same_state(committed: Committed) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    await check_in(sm, c.org_id, c.person_krs[0], 50)
    await check_in(sm, c.org_id, c.person_krs[1], 100)
    ctx = {"sessionmaker": sm}
    first = await recalculate_scores(ctx, str(c.org_id))
    after_first = await state(sm, c.org_id)
    second = await recalculate_scores(ctx, str(c.org_id))
    assert first["events"] == 2
    assert second == {"rounds": 1, "events": 0, "changes": 0}
    assert await state(sm, c.org_id) == after_first
    # person 0.75; team (0 + 0.75) / 2; company (0 + 2 * 0.375 + 0.75) / 4
    assert await progress(sm, c.org_id, c.person) == pytest.approx(0.75)
    assert await progress(sm, c.org_id, c.team) == pytest.approx(0.375)
    assert await progress(sm, c.org_id, c.company) == pytest.approx(0.375)
    assert await count(sm, c.org_id, pending()) == 0


async def test_two_workers_at_once_record_each_change_once(committed: Committed) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    await check_in(sm, c.org_id, c.person_krs[0], 40)
    await check_in(sm, c.org_id, c.team_kr, 80)
    ctx = {"sessionmaker": sm}
    history = select(sqlfunc.count()).select_from(ScoreHistory)
    company_history = history.where(ScoreHistory.subject_id == c.company)
    before = await count(sm, c.org_id, company_history)
    results = await asyncio.gather(
        recalculate_scores(ctx, str(c.org_id)), recalculate_scores(ctx, str(c.org_id))
    )
    assert sum(r["events"] for r in results) == 2  # each event claimed by one of them
    assert await progress(sm, c.org_id, c.team) == pytest.approx(0.5)  # (0.8 + 0.2) / 2
    assert await count(sm, c.org_id, company_history) == before + 1
    assert await count(sm, c.org_id, pending()) == 0


async def test_check_ins_racing_with_jobs_lose_no_update(committed: Committed) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm, person_krs=4)
    ctx = {"sessionmaker": sm}

    async def writer(kr: uuid.UUID, values: list[float]) -> None:
        for v in values:
            await check_in(sm, c.org_id, kr, v)
            await recalculate_scores(ctx, str(c.org_id))

    await asyncio.gather(
        *(writer(kr, [10.0 * i + 5 * n for n in range(5)]) for i, kr in enumerate(c.person_krs))
    )
    await recalculate_scores(ctx, str(c.org_id))
    incremental = await state(sm, c.org_id)
    async with tenant_session(sm, c.org_id) as session:
        repair = await full_recalculation(session, c.org_id)
    assert repair.changes == []
    assert await state(sm, c.org_id) == incremental
    # person KRs end at 20, 30, 40, 50 -> 0.35
    assert await progress(sm, c.org_id, c.person) == pytest.approx(0.35)


async def test_a_burst_of_requests_coalesces_into_one_job_per_window(arq_pool: ArqRedis) -> None:
    org = uuid.uuid4()
    base = 1_800_000_000_000 // RECALC_WINDOW_MS * RECALC_WINDOW_MS
    ids = set()
    for i in range(100):
        name, kwargs = recalculation_job(org, now_ms=base + i * RECALC_WINDOW_MS // 100)
        ids.add(kwargs["_job_id"])
        await arq_pool.enqueue_job(name, **kwargs)
    assert len(ids) == 1
    assert len(await arq_pool.queued_jobs()) == 1
    name, later = recalculation_job(org, now_ms=base + RECALC_WINDOW_MS)
    assert later["_job_id"] not in ids  # a running job never blocks the next window's
    run_at = datetime.fromtimestamp((base + 2 * RECALC_WINDOW_MS) / 1000, UTC)
    assert later["_defer_until"] == run_at


async def run_worker_burst(pool: ArqRedis, sm: async_sessionmaker[AsyncSession]) -> None:
    await run_burst(pool, [func(recalculate_scores, keep_result=0)], sessionmaker=sm)


async def test_a_flood_of_check_ins_is_a_few_recomputations(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm, person_krs=10)

    async def one(i: int, kr: uuid.UUID) -> None:
        await check_in(sm, c.org_id, kr, float(i))
        name, kwargs = recalculation_job(c.org_id)
        await arq_pool.enqueue_job(name, **kwargs)

    # Five rounds of ten check-ins at once (one per key result): a flood, whose
    # requests share the roll-up's short windows.
    for round_ in range(5):
        await asyncio.gather(*(one(round_ * 10 + j, kr) for j, kr in enumerate(c.person_krs)))
    jobs = len(await arq_pool.queued_jobs())
    assert 1 <= jobs < 50
    await run_worker_burst(arq_pool, sm)
    assert await count(sm, c.org_id, pending()) == 0
    history = select(sqlfunc.count()).select_from(ScoreHistory)
    company_history = history.where(ScoreHistory.subject_id == c.company)
    assert await count(sm, c.org_id, company_history) <= jobs + 1  # + the initial roll-up
    # person KRs end at 40..49 -> mean 0.445
    assert await progress(sm, c.org_id, c.person) == pytest.approx(0.445)


async def admin_token(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> str:
    async with tenant_session(sm, org) as session:
        person = Person(
            org_id=org, id=uuid.uuid4(), name="Ada", email="ada@x.example", org_role=OrgRole.ADMIN
        )
        session.add(person)
        await session.flush()
        _, secret = await create_token(
            session, org, name="t", scopes=["read", "write", "admin"], person_id=person.id
        )
    return secret


CHECK_IN = """
mutation($input: CheckInInput!) {
  checkIn(input: $input) { __typename ... on CheckInSuccess { checkIn { id } } }
}"""


async def check_in_over_http(
    app: Any, token: str, key_result_id: uuid.UUID, value: float
) -> httpx.Response:
    """`checkIn` through the app's HTTP interface (its lifespan already running)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post(
            "/graphql",
            json={
                "query": CHECK_IN,
                "variables": {
                    "input": {
                        "keyResultId": to_global_id("KeyResult", key_result_id),
                        "value": value,
                    }
                },
            },
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_no_lost_update_while_redis_is_down(committed: Committed, arq_pool: ArqRedis) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    token = await admin_token(sm, c.org_id)
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"), sessionmaker=sm)
    async with app.router.lifespan_context(app):
        assert app.state.queue is None  # Redis unreachable
        response = await check_in_over_http(app, token, c.person_krs[0], 100)
    assert response.json()["data"]["checkIn"]["__typename"] == "CheckInSuccess", response.text
    assert await count(sm, c.org_id, pending()) == 1
    assert await progress(sm, c.org_id, c.person) == 0  # nobody rolled it up yet

    # Redis is back: the relay's sweep finds the stale event and enqueues the job.
    ctx = {
        "sessionmaker": sm,
        "redis": arq_pool,
        "stale_after": timedelta(0),
    }
    assert await relay_outbox(ctx) == 1
    await run_worker_burst(arq_pool, sm)
    assert await progress(sm, c.org_id, c.person) == pytest.approx(0.5)
    assert await progress(sm, c.org_id, c.company) == pytest.approx(0.25)  # (0 + 2*0.25 + 0.5)/4
    assert await count(sm, c.org_id, pending()) == 0


async def test_refresh_enqueues_one_full_pass_per_org_and_period(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    sm = committed.sessionmaker
    orgs = [(await build_company(sm)).org_id for _ in range(2)]
    ctx = {"sessionmaker": sm, "redis": arq_pool}
    assert await refresh_scores(ctx) == 2
    assert await refresh_scores(ctx) == 2
    queued = await arq_pool.queued_jobs()
    assert sorted(j.kwargs["org_id"] for j in queued) == sorted(str(o) for o in orgs)
    assert {j.function for j in queued} == {"full_recalculation"}


async def test_kpi_sync_and_full_recalculation_jobs_repair_an_org(committed: Committed) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    kpi_id = uuid.uuid4()
    async with tenant_session(sm, c.org_id) as session:
        session.add(
            Kpi(org_id=c.org_id, id=kpi_id, name="signups", direction=Direction.HIGHER_IS_BETTER)
        )
        await session.flush()
        await session.execute(
            text("UPDATE key_results SET progress_driver = 'KPI' WHERE id = :id"),
            {"id": c.person_krs[0]},
        )
        session.add(KpiLink(org_id=c.org_id, kpi_id=kpi_id, key_result_id=c.person_krs[0]))
        # A measurement that arrived without its event (e.g. an import): nothing pending.
        session.add(
            KpiMeasurement(org_id=c.org_id, kpi_id=kpi_id, value=40, measured_at=datetime.now(UTC))
        )
    ctx = {"sessionmaker": sm}
    assert (await sync_kpi_key_results(ctx, str(c.org_id)))["changes"] > 0
    assert await progress(sm, c.org_id, c.person) == pytest.approx(0.2)
    async with tenant_session(sm, c.org_id) as session:
        latest = await session.scalar(select(Kpi.latest_value).where(Kpi.id == kpi_id))
        assert latest == 40
        await session.execute(
            text("UPDATE objectives SET progress = 0.99 WHERE id = :id"), {"id": c.company}
        )
    assert (await full_recalculation_job(ctx, str(c.org_id)))["changes"] == 1
    assert await progress(sm, c.org_id, c.company) == pytest.approx(0.1)  # (0+2*0.1+0.2)/4
    assert (await sync_kpi_key_results(ctx, str(c.org_id)))["changes"] == 0


async def test_a_full_pass_consumes_the_events_it_covers(committed: Committed) -> None:
    """A full pass that publishes a check-in's numbers leaves nothing pending for it."""
    sm = committed.sessionmaker
    c = await build_company(sm)
    await check_in(sm, c.org_id, c.person_krs[0], 60)
    assert await count(sm, c.org_id, pending()) == 1
    ctx = {"sessionmaker": sm}
    assert (await full_recalculation_job(ctx, str(c.org_id)))["events"] == 1
    assert await progress(sm, c.org_id, c.person) == pytest.approx(0.3)
    assert await count(sm, c.org_id, pending()) == 0
    assert (await recalculate_scores(ctx, str(c.org_id)))["events"] == 0
