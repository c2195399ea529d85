"""Check-ins racing the roll-up, with real processes (`okr serve`, `okr worker`) and
several clients at once: every read after a payload shows the payload's score or
a later true one, and the score history holds only values that were true.

(Issue 15: the worker's roll-up computed from a snapshot taken before a check-in
committed, waited for that check-in's row lock, then wrote its stale value over
the committed one, history row included.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from okrgraph.domain import clock
from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import KeyResult, ScoreHistory
from okrgraph.embedded import free_port
from okrgraph.schema.node import to_global_id
from tests.worker.conftest import Committed, build_company
from tests.worker.test_jobs import admin_token, count, pending
from tests.worker.test_processes import processes, wait_until_up  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

CREATE = """mutation($input: CreateKeyResultInput!) {
  createKeyResult(input: $input) { __typename ... on KeyResultSuccess { keyResult { id } } }
}"""
CHECK_IN = """mutation($input: CheckInInput!) {
  checkIn(input: $input) {
    __typename ... on CheckInSuccess { checkIn { keyResult { score } } }
  }
}"""
SCORE = "query($id: ID!) { node(id: $id) { ... on KeyResult { score } } }"
SCORE_AS_OF = (
    "query($id: ID!, $at: DateTime) { node(id: $id) { ... on KeyResult { score(asOf: $at) } } }"
)
CLIENTS, PER_CLIENT, ROUNDS = 4, 10, 3


async def gql(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def one_client(http: httpx.AsyncClient, objective: str) -> list[tuple[str, datetime]]:
    """Create key results and check each in at 50 of 100 at once; read it right after."""
    done = []
    for i in range(PER_CLIENT):
        created = await gql(http, CREATE, input={
            "objectiveId": objective, "title": f"race {uuid.uuid4().hex[:6]} {i}",
            "kind": "INCREASE", "start": 0, "target": 100,
        })  # fmt: skip
        kr = created["createKeyResult"]["keyResult"]["id"]
        answered = await gql(http, CHECK_IN, input={"keyResultId": kr, "value": 50})
        at = clock.now()  # okrgraph's clock, which stamps the history (moved in CI runs)
        assert answered["checkIn"]["checkIn"]["keyResult"]["score"] == pytest.approx(0.5)
        for _ in range(3):  # reads a few milliseconds later: the payload or a later truth
            read = await gql(http, SCORE, id=kr)
            assert read["node"]["score"] == pytest.approx(0.5), kr
        done.append((kr, at))
    return done


async def converged(committed: Committed, org: uuid.UUID) -> None:
    for _ in range(600):
        if await count(committed.sessionmaker, org, pending()) == 0:
            return
        await asyncio.sleep(0.05)  # the worker's progress has no event to await here
    raise AssertionError("the worker left recalculation events pending")


async def histories(committed: Committed, org: uuid.UUID) -> dict[uuid.UUID, list[Any]]:
    async with tenant_session(committed.sessionmaker, org) as session:
        rows = (
            await session.execute(
                select(ScoreHistory.subject_id, ScoreHistory.value, ScoreHistory.status)
                .where(ScoreHistory.subject_type == "KEY_RESULT")
                .order_by(ScoreHistory.recorded_at, ScoreHistory.id)
            )
        ).all()
        stored = dict((await session.execute(select(KeyResult.id, KeyResult.score))).all())
    out: dict[uuid.UUID, list[Any]] = {kr: [] for kr in stored}
    for subject, value, status in rows:
        out[subject].append((round(value, 9), str(status)))
    return {kr: [stored[kr], *rows_] for kr, rows_ in out.items()}


def true_record(kr: str, history: list[Any]) -> None:
    """0 (or nothing) until the check-in, then 0.5 and never anything else; no row
    repeating the one before it (a repair stamping back what a false row broke)."""
    stored, *rows = history
    assert stored == pytest.approx(0.5), (kr, history)
    values = [value for value, _ in rows]
    assert values, (kr, history)
    assert values[-1] == pytest.approx(0.5), (kr, history)
    first = values.index(0.5)
    assert all(v == pytest.approx(0.5) for v in values[first:]), (kr, history)
    assert all(v == 0 for v in values[:first]), (kr, history)
    assert all(a != b for a, b in zip(rows, rows[1:], strict=False)), (kr, history)


async def test_check_ins_racing_the_roll_up_keep_a_true_history(
    committed: Committed,
    worker_redis_url: str,
    processes: Callable[..., Any],  # noqa: F811
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    token = await admin_token(sm, c.org_id)
    port = free_port()
    api = processes(["serve", "--port", str(port)], committed.url, worker_redis_url)
    processes(["worker"], committed.url, worker_redis_url)
    objective = to_global_id("Objective", c.person)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
    ) as http:
        await wait_until_up(http, api)
        for _ in range(ROUNDS):
            batches = await asyncio.gather(*(one_client(http, objective) for _ in range(CLIENTS)))
            await converged(committed, c.org_id)
            for kr, at in (pair for batch in batches for pair in batch):
                as_of = await gql(http, SCORE_AS_OF, id=kr, at=at.isoformat())
                assert as_of["node"]["score"] == pytest.approx(0.5), kr
        found = await histories(committed, c.org_id)
        raced = {kr for kr in found if kr not in set(c.person_krs) | {c.team_kr, c.company_kr}}
        assert len(raced) == CLIENTS * PER_CLIENT * ROUNDS
        for raced_kr in raced:
            true_record(str(raced_kr), found[raced_kr])


async def test_a_burst_on_one_key_result_beside_full_recalculations_keeps_a_true_history(
    committed: Committed,
    worker_redis_url: str,
    processes: Callable[..., Any],  # noqa: F811
    arq_pool: Any,
) -> None:
    """Rising check-ins on one key result, back to back, while full recalculations
    run beside them: the history only ever rises (a stale write would step back),
    and every read shows the newest answered value or a later one."""
    sm = committed.sessionmaker
    c = await build_company(sm)
    token = await admin_token(sm, c.org_id)
    port = free_port()
    api = processes(["serve", "--port", str(port)], committed.url, worker_redis_url)
    processes(["worker"], committed.url, worker_redis_url)
    kr = to_global_id("KeyResult", c.person_krs[0])
    headers = {"Authorization": f"Bearer {token}"}
    burst = 30
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
    ) as http:
        await wait_until_up(http, api)
        answered = 0.0
        stop = asyncio.Event()

        async def full_passes() -> int:
            n = 0
            while not stop.is_set():
                await arq_pool.enqueue_job(
                    "full_recalculation", org_id=str(c.org_id), _job_id=f"burst-full-{n}"
                )
                n += 1
                await asyncio.sleep(0.05)  # a steady pace of passes, not a flood
            return n

        async def reader() -> None:
            while not stop.is_set():
                floor = answered
                read = await gql(http, SCORE, id=kr)
                assert read["node"]["score"] >= floor - 1e-9, (read, floor)

        passes = asyncio.create_task(full_passes())
        reading = asyncio.create_task(reader())
        try:
            for value in range(1, burst + 1):
                result = await gql(http, CHECK_IN, input={"keyResultId": kr, "value": value})
                answered = result["checkIn"]["checkIn"]["keyResult"]["score"]
                assert answered == pytest.approx(value / 100)
        finally:
            stop.set()
            ran = await passes
            await reading
        assert ran > 3
        await converged(committed, c.org_id)
    async with tenant_session(sm, c.org_id) as session:
        values = list(
            (
                await session.execute(
                    select(ScoreHistory.value)
                    .where(ScoreHistory.subject_id == c.person_krs[0])
                    .order_by(ScoreHistory.recorded_at, ScoreHistory.id)
                )
            ).scalars()
        )
        stored = await session.scalar(
            select(KeyResult.score).where(KeyResult.id == c.person_krs[0])
        )
    assert stored == pytest.approx(burst / 100)
    assert values == sorted(set(values)), values  # strictly rising: nothing stepped back
    assert values[-1] == pytest.approx(burst / 100)
