"""Real processes: a worker killed with SIGKILL mid-recalculation converges after a
restart; `checkIn` over HTTP reaches the company objective through `okr worker`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from okrgraph.domain.db import async_url, tenant_session
from okrgraph.domain.messages import progress_channel
from okrgraph.domain.models import Objective
from okrgraph.domain.outbox.jobs import recalculation_job
from okrgraph.embedded import free_port
from okrgraph.schema.node import to_global_id
from tests.worker.conftest import Committed, build_company
from tests.worker.test_jobs import CHECK_IN, admin_token, check_in, count, pending, progress

pytestmark = pytest.mark.e2e

TIMEOUT_S = 30.0
_CONFIG = ("DATABASE_URL", "REDIS_URL", "OKR_DATABASE_URL", "OKR_REDIS_URL", "OKR_PORT")


def spawn(args: list[str], db_url: str, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG}
    env.update(DATABASE_URL=db_url, REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "okrgraph", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[list[str], str, str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], db_url: str, redis_url: str) -> subprocess.Popen[bytes]:
        proc = spawn(args, db_url, redis_url, tmp_path / f"{args[0]}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def next_change(pubsub: Any, subject: uuid.UUID, within: float = TIMEOUT_S) -> dict[str, Any]:
    """The first published change of `subject` (waits on the channel, no polling)."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is None:
            continue
        for change in json.loads(message["data"])["changes"]:
            if change["id"] == str(subject):
                return dict(change)
    raise AssertionError(f"no change of {subject} published within {within} s")


async def test_worker_killed_mid_recalculation_converges_after_restart(
    committed: Committed, worker_redis_url: str, processes: Callable[..., Any], arq_pool: Any
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    await check_in(sm, c.org_id, c.person_krs[0], 60)
    owner = create_async_engine(async_url(committed.url))
    redis = aioredis.Redis.from_url(worker_redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(progress_channel(c.org_id))
    try:
        async with owner.connect() as blocker:
            # Hold the team objective: the job updates the person objective, then waits here.
            await blocker.execute(
                text("SELECT 1 FROM objectives WHERE id = :id FOR UPDATE"), {"id": c.team}
            )
            worker = processes(["worker"], committed.url, worker_redis_url)
            name, kwargs = recalculation_job(c.org_id)
            await arq_pool.enqueue_job(name, **kwargs)
            async with owner.connect() as probe:
                await wait_for_lock_waiter(probe)
            worker.send_signal(signal.SIGKILL)
            assert worker.wait(10) == -signal.SIGKILL
            await blocker.rollback()
        # Nothing of the killed transaction is visible; the event is still pending.
        assert await progress(sm, c.org_id, c.person) == 0
        assert await count(sm, c.org_id, pending()) == 1

        processes(["worker"], committed.url, worker_redis_url)
        change = await next_change(pubsub, c.company)
        assert change["value"] == pytest.approx(0.15)  # person 0.3, team 0.15: (0.3+0.3)/4
        assert await progress(sm, c.org_id, c.person) == pytest.approx(0.3)
        assert await progress(sm, c.org_id, c.team) == pytest.approx(0.15)
        assert await count(sm, c.org_id, pending()) == 0
    finally:
        await pubsub.aclose()
        await redis.aclose()
        await owner.dispose()


async def wait_for_lock_waiter(conn: Any) -> None:
    """Until a backend of this database waits on a row lock (the blocked roll-up)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        waiting = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event <> 'advisory'"
            )
        )
        await conn.rollback()  # a fresh snapshot of pg_stat_activity next time
        if waiting:
            return
        await asyncio.sleep(0.05)  # pg_stat_activity offers nothing to wait on
    raise AssertionError("no backend waited on a row lock")


NODE_PROGRESS = "query($id: ID!) { node(id: $id) { ... on Objective { progress status } } }"


async def test_check_in_over_http_reaches_company_progress_through_the_worker(
    committed: Committed, worker_redis_url: str, processes: Callable[..., Any]
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    token = await admin_token(sm, c.org_id)
    port = free_port()
    redis = aioredis.Redis.from_url(worker_redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(progress_channel(c.org_id))
    api = processes(["serve", "--port", str(port)], committed.url, worker_redis_url)
    processes(["worker"], committed.url, worker_redis_url)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            await wait_until_up(http, api)
            response = await http.post(
                "/graphql",
                json={
                    "query": CHECK_IN,
                    "variables": {
                        "input": {
                            "keyResultId": to_global_id("KeyResult", c.person_krs[1]),
                            "value": 80,
                        }
                    },
                },
            )
            assert response.json()["data"]["checkIn"]["__typename"] == "CheckInSuccess"
            change = await next_change(pubsub, c.company)
            response = await http.post(
                "/graphql",
                json={
                    "query": NODE_PROGRESS,
                    "variables": {"id": to_global_id("Objective", c.company)},
                },
            )
        # person (0 + 0.8) / 2 = 0.4; team 0.2; company (0 + 0.4 + 0.4) / 4 = 0.2
        assert change["value"] == pytest.approx(0.2)
        assert response.json()["data"]["node"]["progress"] == pytest.approx(0.2)
        async with tenant_session(sm, c.org_id) as session:
            stored = await session.scalar(select(Objective.progress).where(Objective.id == c.team))
        assert stored == pytest.approx(0.2)
    finally:
        await pubsub.aclose()
        await redis.aclose()


async def wait_until_up(http: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "okr serve exited"
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)  # the port opens with no event to await
    raise AssertionError("okr serve did not come up")
