"""closeCycle of a large cycle through a real worker: queued at once, progress over the
API, closed as a synchronous close would (the dry run's plan), idempotent, all or nothing.

The threshold is lowered to 1 graded objective here (`ASYNC_CLOSE_OBJECTIVES`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.config import Settings
from okrgraph.domain.cycles import close_jobs, closing
from okrgraph.domain.cycles.closing import Closing, Progress
from okrgraph.domain.db import tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import CloseJob, Cycle, KeyResult, Objective, Reflection
from okrgraph.domain.models.enums import CloseJobState, CycleState, Outcome
from okrgraph.domain.scores.service import full_recalculation, lock_scores
from okrgraph.domain.validation import NUMBER_RULE
from okrgraph.schema.node import to_global_id
from okrgraph.worker.jobs.close_jobs import close_cycle_job, relay_close_jobs
from tests.api.security.world import changed, snapshot
from tests.gql import data
from tests.worker.conftest import Committed, run_burst
from tests.worker.graphs import GraphBuilder
from tests.worker.test_jobs import admin_token

HANG_S = 30  # bounds a wait that would otherwise hang

CLOSE = """mutation($input: CloseCycleInput!) { closeCycle(input: $input) {
  __typename ... on UserError { message }
  ... on CloseCycleSuccess { cycle { state } nextCycleName
      summary { keyResultsFrozen objectivesCarriedOver keyResultsCarriedOver
                objectives { title finalScore outcome } }
      job { state phase objectives attempts } }
} }"""
JOB = """query($id: ID!) { node(id: $id) { ... on Cycle { state closeJob {
  state phase objectives objectivesGraded keyResultsFrozen objectivesCarriedOver
  keyResultsCarriedOver error attempts startedAt finishedAt nextCycleName
  summary { keyResultsFrozen objectivesCarriedOver keyResultsCarriedOver
            objectives { title finalScore outcome } }
} } } }"""


@dataclass
class World:
    org_id: uuid.UUID
    cycle_id: uuid.UUID
    token: str
    krs: list[uuid.UUID]


async def build(sm: async_sessionmaker[AsyncSession]) -> World:
    """An ACTIVE cycle: `Good` at 0.8, `Poor` at 0.3 and `Low` at 0.1 (aligned to Poor),
    check-ins pending (the close's full recalculation rolls them up)."""
    org_id = uuid.uuid4()
    krs = []
    async with tenant_session(sm, org_id) as s:
        g = await GraphBuilder.create(s, org_id=org_id)
        cycle = await g.cycle()
        ids = {}
        for title, value in (("Good", 80.0), ("Poor", 30.0), ("Low", 10.0)):
            ids[title] = await g.objective(cycle_id=cycle)
            await s.execute(update(Objective).where(Objective.id == ids[title]).values(title=title))
            krs.append(await g.kr(ids[title]))
            await record_check_in(
                s, principal=system_principal(org_id), key_result_id=krs[-1], value=value
            )
        await g.align(ids["Low"], parent_objective=ids["Poor"])
    return World(org_id, cycle, await admin_token(sm, org_id), krs)


@pytest.fixture
def large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(close_jobs, "ASYNC_CLOSE_OBJECTIVES", 1)


@asynccontextmanager
async def api(sm: async_sessionmaker[AsyncSession], queue: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The API over HTTP; `queue` None: a Redis nobody listens on (nothing enqueued)."""
    if queue is None:
        app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"), sessionmaker=sm)
    else:
        app = create_app(sessionmaker=sm, queue=queue)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def close(client: httpx.AsyncClient, w: World, **fields: Any) -> dict[str, Any]:
    body = await data(
        client, w.token, CLOSE, input={"id": to_global_id("Cycle", w.cycle_id), **fields}
    )
    result: dict[str, Any] = body["closeCycle"]
    return result


async def job_of(client: httpx.AsyncClient, w: World) -> dict[str, Any]:
    body = await data(client, w.token, JOB, id=to_global_id("Cycle", w.cycle_id))
    node: dict[str, Any] = body["node"]
    return node


async def run_worker(pool: ArqRedis, sm: async_sessionmaker[AsyncSession]) -> None:
    await run_burst(pool, [close_cycle_job], sessionmaker=sm)


async def count(sm: async_sessionmaker[AsyncSession], w: World, model: Any) -> int:
    async with tenant_session(sm, w.org_id) as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


def reported(monkeypatch: pytest.MonkeyPatch, phase: str) -> asyncio.Event:
    """Set once the close job has committed its progress entering `phase`."""
    event = asyncio.Event()
    real = close_jobs._reporter

    def reporter(*args: Any) -> Progress:
        report = real(*args)

        async def reporting(entered: str, counts: dict[str, int]) -> None:
            await report(entered, counts)
            if entered == phase:
                event.set()

        return reporting

    monkeypatch.setattr(close_jobs, "_reporter", reporter)
    return event


async def test_a_large_close_is_queued_and_the_worker_closes_it_with_progress(
    committed: Committed, arq_pool: ArqRedis, large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = committed.sessionmaker
    recalculating = reported(monkeypatch, "RECALCULATING")
    w = await build(sm)
    async with api(sm, arq_pool) as client:
        dry = await close(client, w, dryRun=True)  # always synchronous: the plan
        assert (dry["__typename"], dry["job"]) == ("CloseCycleSuccess", None), dry
        queued = await close(client, w)
        assert queued == {
            "__typename": "CloseCycleSuccess",
            "cycle": {"state": "ACTIVE"},
            "nextCycleName": None,
            "summary": None,
            "job": {"state": "QUEUED", "phase": None, "objectives": 3, "attempts": 0},
        }
        jobs = [j.function for j in await arq_pool.queued_jobs()]
        assert jobs == ["close_cycle_job"]  # enqueued by the request, after its commit
        again = await close(client, w)
        assert again["__typename"] == "Conflict", again  # one close at a time

        # the worker's close waits behind a roll-up holding the organisation's scores
        async with tenant_session(sm, w.org_id) as holder:
            await lock_scores(holder, w.org_id)
            worker = asyncio.create_task(run_worker(arq_pool, sm))

            await asyncio.wait_for(recalculating.wait(), HANG_S)
            seen = await job_of(client, w)
            assert seen["state"] == "ACTIVE"
            assert seen["closeJob"]["state"] == "RUNNING"
            assert seen["closeJob"]["phase"] == "RECALCULATING"
            assert seen["closeJob"]["attempts"] == 1
            assert seen["closeJob"]["startedAt"] is not None
            assert seen["closeJob"]["summary"] is None
        await asyncio.wait_for(worker, HANG_S)

        done = await job_of(client, w)
    assert done["state"] == "CLOSED"
    job = done["closeJob"]
    assert (job["state"], job["phase"], job["error"], job["attempts"]) == ("DONE", None, None, 1)
    assert job["finishedAt"] is not None
    counts = ("keyResultsFrozen", "objectivesCarriedOver", "keyResultsCarriedOver")
    assert {k: job[k] for k in counts} == {k: dry["summary"][k] for k in counts}
    assert {k: job[k] for k in counts} == {
        "keyResultsFrozen": 3,
        "objectivesCarriedOver": 2,
        "keyResultsCarriedOver": 2,
    }
    assert job["objectivesGraded"] == 3
    assert job["summary"] == dry["summary"]  # the dry run planned exactly this
    assert job["nextCycleName"] == dry["nextCycleName"]
    grades = {g["title"]: (g["finalScore"], g["outcome"]) for g in job["summary"]["objectives"]}
    assert grades == {
        "Good": (pytest.approx(0.8), "ACHIEVED"),
        "Poor": (pytest.approx(0.3), "CARRIED_OVER"),
        "Low": (pytest.approx(0.1), "CARRIED_OVER"),
    }
    assert await count(sm, w, Reflection) == 3
    async with tenant_session(sm, w.org_id) as s:
        frozen = await s.execute(select(KeyResult.final_score).where(KeyResult.id.in_(w.krs)))
        assert sorted(f or 0.0 for f in frozen.scalars()) == pytest.approx([0.1, 0.3, 0.8])


async def test_a_rerun_completes_or_does_nothing_and_never_copies_twice(
    committed: Committed, arq_pool: ArqRedis, large: None
) -> None:
    sm = committed.sessionmaker
    w = await build(sm)
    async with api(sm, arq_pool) as client:
        queued = await close(client, w)
    assert queued["job"]["state"] == "QUEUED", queued
    async with tenant_session(sm, w.org_id) as s:
        job_id = (await s.execute(select(CloseJob.id))).scalar_one()
        # a worker crashed mid-close: the job RUNNING, nothing of the close committed
        await s.execute(
            update(CloseJob).values(state=CloseJobState.RUNNING, attempts=1, phase="GRADING")
        )
    ctx = {"sessionmaker": sm, "redis": arq_pool}
    objectives = await count(sm, w, Objective)
    # the rerun (arq's, or a duplicate at the same time) closes once
    runs = [close_cycle_job(ctx, str(w.org_id), str(job_id)) for _ in range(2)]
    assert await asyncio.gather(*runs) == ["DONE", "DONE"]
    assert await count(sm, w, Objective) == objectives + 2
    assert await close_cycle_job(ctx, str(w.org_id), str(job_id)) == "DONE"  # a late rerun
    assert await count(sm, w, Objective) == objectives + 2
    async with tenant_session(sm, w.org_id) as s:
        job = (await s.execute(select(CloseJob))).scalar_one()
        # the crashed run and the two at once each started; one of them closed
        assert (job.state, job.attempts, job.objectives_carried_over) == (CloseJobState.DONE, 3, 2)
        assert (await s.get(Cycle, (w.org_id, w.cycle_id))).state is CycleState.CLOSED  # type: ignore[union-attr]


async def test_a_failing_close_leaves_nothing_half_written(
    committed: Committed, arq_pool: ArqRedis, large: None
) -> None:
    sm = committed.sessionmaker
    w = await build(sm)
    async with tenant_session(sm, w.org_id) as s:  # a target stored before today's bounds
        await s.execute(update(KeyResult).where(KeyResult.id == w.krs[1]).values(target_value=1e16))
    # The job first brings the scores current in a transaction of its own (what the
    # score job does); from current scores, the failed close must leave no trace.
    async with tenant_session(sm, w.org_id) as s:
        await full_recalculation(s, w.org_id)
    async with api(sm, arq_pool) as client:
        queued = await close(client, w, carryOver="REBASELINE")
        assert queued["job"]["state"] == "QUEUED", queued
        async with tenant_session(sm, w.org_id) as s:
            before = await snapshot(s, w.org_id)
        await run_worker(arq_pool, sm)  # grades, then refuses the carried target
        failed = await job_of(client, w)
    assert failed["state"] == "ACTIVE"
    job = failed["closeJob"]
    assert job["state"] == "FAILED"
    assert job["error"] == NUMBER_RULE  # check_target's refusal of the carried target
    assert job["summary"] is None
    async with tenant_session(sm, w.org_id) as s:
        after = await snapshot(s, w.org_id)
    assert set(changed(before, after)) == {(str(w.org_id), "close_jobs")}


async def test_the_relay_enqueues_a_close_whose_enqueue_was_lost(
    committed: Committed, arq_pool: ArqRedis, large: None
) -> None:
    sm = committed.sessionmaker
    w = await build(sm)
    async with api(sm, None) as client:  # no Redis: nothing enqueued after commit
        queued = await close(client, w)
    assert queued["job"]["state"] == "QUEUED", queued
    assert await arq_pool.queued_jobs() == []
    ctx = {"sessionmaker": sm, "redis": arq_pool, "stale_after_s": 0}
    assert await relay_close_jobs(ctx) == 1
    assert await relay_close_jobs(ctx) == 1  # arq keeps one job per close
    assert [j.function for j in await arq_pool.queued_jobs()] == ["close_cycle_job"]
    await run_worker(arq_pool, sm)
    async with tenant_session(sm, w.org_id) as s:
        state = (await s.execute(select(CloseJob.state))).scalar_one()
        closed = await s.execute(text("SELECT state FROM cycles WHERE id = :c"), {"c": w.cycle_id})
    assert (state, closed.scalar_one()) == (CloseJobState.DONE, "CLOSED")
    assert await relay_close_jobs(ctx) == 0


def passes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each full recalculation: "job" (the job's own, committed before the close)
    or "close" (inside the close's transaction)."""
    seen: list[str] = []
    for module, name in ((close_jobs, "job"), (closing, "close")):
        real = module.full_recalculation

        async def counted(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            seen.append(_name)
            return await _real(*args, **kw)

        monkeypatch.setattr(module, "full_recalculation", counted)
    return seen


async def frozen_of(sm: async_sessionmaker[AsyncSession], w: World) -> dict[str, Any]:
    """What the close froze and graded, by objective title (the worlds' ids differ)."""
    async with tenant_session(sm, w.org_id) as s:
        rows = await s.execute(
            select(Objective.title, Objective.final_score, Objective.state, KeyResult.final_score)
            .join(KeyResult, KeyResult.objective_id == Objective.id)
            .where(Objective.cycle_id == w.cycle_id)
        )
        reflections = await s.execute(
            select(Objective.title, Reflection.outcome, Reflection.final_score).join(
                Reflection, Reflection.objective_id == Objective.id
            )
        )
        return {
            "objectives": sorted(tuple(r) for r in rows),
            "reflections": sorted(tuple(r) for r in reflections),
        }


async def test_the_job_does_not_recalculate_twice_and_freezes_what_a_close_with_its_pass_does(
    committed: Committed, arq_pool: ArqRedis, large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = committed.sessionmaker
    seen = passes(monkeypatch)
    job_world, call_world = await build(sm), await build(sm)  # the same graph twice
    async with api(sm, arq_pool) as client:
        assert (await close(client, job_world))["job"]["state"] == "QUEUED"
    await run_worker(arq_pool, sm)
    assert seen == ["job"]  # nothing changed since the job's pass: the close ran none
    async with tenant_session(sm, call_world.org_id) as s:  # the close with its own pass
        await closing.close_cycle(s, system_principal(call_world.org_id), call_world.cycle_id)
    assert seen == ["job", "close"]
    expected = await frozen_of(sm, call_world)
    assert expected["reflections"] == [
        ("Good", Outcome.ACHIEVED, pytest.approx(0.8)),
        ("Low", Outcome.CARRIED_OVER, pytest.approx(0.1)),
        ("Poor", Outcome.CARRIED_OVER, pytest.approx(0.3)),
    ]
    assert await frozen_of(sm, job_world) == expected


async def test_a_change_committed_after_the_jobs_pass_is_recalculated_by_the_close(
    committed: Committed, arq_pool: ArqRedis, large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = committed.sessionmaker
    seen = passes(monkeypatch)
    w = await build(sm)
    real = close_jobs._bring_scores_current
    held: list[bool] = []

    async def then_a_check_in(*args: Any) -> None:
        await real(*args)
        async with tenant_session(sm, w.org_id) as s:  # no roll-up gets in meanwhile
            held.append(not await lock_scores(s, w.org_id, wait=False))
        async with tenant_session(sm, w.org_id) as s:  # Good: 0.8 -> 0.2, committed
            await record_check_in(s, system_principal(w.org_id), w.krs[0], 20.0)

    monkeypatch.setattr(close_jobs, "_bring_scores_current", then_a_check_in)
    async with api(sm, arq_pool) as client:
        assert (await close(client, w))["job"]["state"] == "QUEUED"
        await run_worker(arq_pool, sm)
        done = await job_of(client, w)
    assert held == [True]
    assert done["closeJob"]["state"] == "DONE"
    grades = {
        g["title"]: (g["finalScore"], g["outcome"])
        for g in done["closeJob"]["summary"]["objectives"]
    }
    assert grades["Good"] == (pytest.approx(0.2), "CARRIED_OVER")  # not 0.8: recalculated
    assert seen == ["job", "close"]  # the pending check-in: the close's own pass


async def test_a_job_whose_cycle_another_close_holds_lets_the_roll_up_lock_go(
    committed: Committed, arq_pool: ArqRedis, large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run (or the cron's close) holding the cycle waits for the roll-up lock that
    the job holds; the job must not wait for the cycle while holding it (a deadlock)."""
    sm = committed.sessionmaker
    seen = passes(monkeypatch)
    w = await build(sm)
    real = close_jobs._bring_scores_current
    holding = asyncio.Event()
    tasks: list[asyncio.Task[Closing]] = []

    async def dry_run() -> Closing:
        async with tenant_session(sm, w.org_id) as s:
            await closing.locked_cycle(s, w.cycle_id)
            holding.set()
            return await closing.close_cycle(
                s, system_principal(w.org_id), w.cycle_id, dry_run=True
            )

    async def then_a_dry_run(*args: Any) -> None:
        await real(*args)
        tasks.append(asyncio.create_task(dry_run()))
        await asyncio.wait_for(holding.wait(), HANG_S)

    monkeypatch.setattr(close_jobs, "_bring_scores_current", then_a_dry_run)
    async with api(sm, arq_pool) as client:
        assert (await close(client, w))["job"]["state"] == "QUEUED"
        await asyncio.wait_for(run_worker(arq_pool, sm), HANG_S)
        done = await job_of(client, w)
    plan = await asyncio.wait_for(tasks[0], HANG_S)
    assert (done["state"], done["closeJob"]["state"]) == ("CLOSED", "DONE")
    assert seen == ["job", "close", "close"]  # the dry run's, then the job's close's own
    assert done["closeJob"]["keyResultsCarriedOver"] == plan.key_results_carried_over == 2


async def graph_of(sm: async_sessionmaker[AsyncSession], w: World) -> dict[str, Any]:
    """The world's objectives, key results, cycles, reflections, audit entries and event
    types, by title and value (the worlds' ids differ)."""
    async with tenant_session(sm, w.org_id) as s:
        objectives = await s.execute(
            select(
                Objective.title,
                Objective.state,
                Objective.progress,
                Objective.status,
                Objective.final_score,
                Objective.carried_over_from_id,
            )
        )
        key_results = await s.execute(
            select(
                Objective.title,
                KeyResult.state,
                KeyResult.score,
                KeyResult.status,
                KeyResult.current_value,
                KeyResult.start_value,
                KeyResult.final_score,
                KeyResult.carried_over_from_id,
            ).join(Objective, Objective.id == KeyResult.objective_id)
        )
        cycles = await s.execute(select(Cycle.starts_on, Cycle.state, Cycle.closed_at))
        tables = {t: await count(sm, w, m) for t, m in (("reflections", Reflection),)}
        audit = await s.execute(text("SELECT action FROM audit_entries"))
        events = await s.execute(text("SELECT type, processed_at IS NULL FROM outbox_events"))
        return {
            "objectives": sorted(tuple(r) for r in objectives),
            "key_results": sorted(tuple(r) for r in key_results),
            "cycles": sorted(tuple(r) for r in cycles),
            "audit": sorted(audit.scalars()),
            "events": sorted(tuple(r) for r in events),
            **tables,
        }


async def test_a_failing_close_from_stale_scores_keeps_only_the_jobs_recalculation(
    committed: Committed, arq_pool: ArqRedis, large: None
) -> None:
    """The job's full recalculation is committed before the close (derived numbers);
    the failed close must leave nothing else: the world is what that recalculation
    alone makes of its twin."""
    sm = committed.sessionmaker
    w, twin = await build(sm), await build(sm)  # scores stale: check-ins pending
    for world in (w, twin):  # a target stored before today's bounds
        async with tenant_session(sm, world.org_id) as s:
            await s.execute(
                update(KeyResult).where(KeyResult.id == world.krs[1]).values(target_value=1e16)
            )
    async with tenant_session(sm, twin.org_id) as s:
        await full_recalculation(s, twin.org_id)
    async with api(sm, arq_pool) as client:
        queued = await close(client, w, carryOver="REBASELINE")
        assert queued["job"]["state"] == "QUEUED", queued
        stale = await graph_of(sm, w)
        async with tenant_session(sm, w.org_id) as s:
            before = await snapshot(s, w.org_id)
        await run_worker(arq_pool, sm)  # recalculates (committed), grades, then refuses
        failed = await job_of(client, w)
    assert (failed["closeJob"]["state"], failed["closeJob"]["error"]) == ("FAILED", NUMBER_RULE)
    async with tenant_session(sm, w.org_id) as s:
        after = await snapshot(s, w.org_id)
    derived = {"objectives", "key_results", "score_history", "outbox_events"}
    assert {t for _, t in changed(before, after)} == derived | {"close_jobs"}
    left = await graph_of(sm, w)
    assert left != stale  # the recalculation stayed (Poor: 30 of 1e16)
    assert sorted((t, p) for t, _, p, *_ in left["objectives"]) == [
        ("Good", pytest.approx(0.8)),
        ("Low", pytest.approx(0.1)),
        ("Poor", pytest.approx(0.0, abs=1e-9)),
    ]
    expected = await graph_of(sm, twin)
    expected["audit"] = sorted([*expected["audit"], "cycle.close_requested"])  # the request's
    assert left == expected  # and nothing of the close
