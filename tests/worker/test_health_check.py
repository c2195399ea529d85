"""`okr worker --check` (docker-compose's healthcheck) sees a hung worker: a real
`okr worker` refreshes its health key every few seconds; stopped with SIGSTOP
(a worker that no longer polls), its key expires and the check fails; resumed,
the key is back and the check passes; stopped, the check fails again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from okrgraph.worker.settings import HEALTH_CHECK_INTERVAL_S, health_check_key
from tests.worker.conftest import Committed
from tests.worker.test_processes import processes

__all__ = ["processes"]  # the fixture, used by name

pytestmark = pytest.mark.e2e

# The key lives one interval plus a second: waiting for an event on it takes
# at most that, plus the worker's start.
EVENT_TIMEOUT_S = 60.0


async def check(redis_url: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "OKR_REDIS_URL")}
    env["REDIS_URL"] = redis_url
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "okrgraph", "worker", "--check"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode().strip()


@pytest.fixture
async def key_events(worker_redis_url: str) -> AsyncIterator[Any]:
    """Keyspace notifications for this host's health key (set, expired, del)."""
    client = aioredis.Redis.from_url(worker_redis_url)
    await client.config_set("notify-keyspace-events", "Kg$x")
    db = make_url(worker_redis_url).database
    pubsub = client.pubsub()
    await pubsub.subscribe(f"__keyspace@{db}__:{health_check_key()}")
    await pubsub.get_message(timeout=5)  # the subscribe confirmation
    yield pubsub
    await pubsub.aclose()
    await client.aclose()


async def next_event(pubsub: Any, wanted: set[str]) -> str:
    """The next keyspace event on the key among `wanted` (awaited, not polled)."""
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and (event := message["data"].decode()) in wanted:
                return str(event)


async def test_the_check_follows_a_worker_that_stops_polling(
    committed: Committed,
    worker_redis_url: str,
    key_events: Any,
    processes: Callable[..., subprocess.Popen[bytes]],
) -> None:
    assert HEALTH_CHECK_INTERVAL_S <= 10
    assert (await check(worker_redis_url))[0] == 1  # no worker yet

    worker = processes(["worker"], committed.url, worker_redis_url)
    assert await next_event(key_events, {"set"}) == "set"
    assert await check(worker_redis_url) == (0, "worker healthy")

    worker.send_signal(signal.SIGSTOP)  # hung: alive, but no poll loop
    try:
        assert await next_event(key_events, {"expired", "del"}) == "expired"
        code, out = await check(worker_redis_url)
        assert code == 1
        assert out.startswith(f"okr: no live worker: its health key {health_check_key()}")
        assert "Traceback" not in out
    finally:
        worker.send_signal(signal.SIGCONT)

    assert await next_event(key_events, {"set"}) == "set"
    assert (await check(worker_redis_url))[0] == 0

    worker.send_signal(signal.SIGTERM)  # a clean stop removes the key at once
    assert await next_event(key_events, {"del", "expired"}) in {"del", "expired"}
    assert worker.wait(30) == 0
    assert (await check(worker_redis_url))[0] == 1
