"""A real `okr worker` outlives its Redis: killed, then started again (empty) on the
same port, the worker logs the loss, reconnects, and a check-in committed while
Redis was away reaches the company objective (the relay cron re-enqueues it)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from okrgraph.domain.messages import progress_channel
from okrgraph.embedded import EmbeddedRedis
from okrgraph.worker.reconnect import backoff
from tests.worker.conftest import Committed, build_company
from tests.worker.test_jobs import check_in, count, pending, progress
from tests.worker.test_processes import TIMEOUT_S, next_change, processes

__all__ = ["processes"]  # the fixture, used by name

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own, to kill and restart."""
    path = Path(tempfile.mkdtemp(prefix="okr-redis-loss-"))
    server = EmbeddedRedis(path)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(path, ignore_errors=True)


def read(log: Path) -> str:
    return log.read_text(errors="replace")


async def wait_for_line(log: Path, text: str, proc: Any) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if text in read(log):
            return
        assert proc.poll() is None, f"okr worker exited:\n{read(log)}"
        await asyncio.sleep(0.05)  # a log file offers nothing to wait on
    raise AssertionError(f"no {text!r} in the worker's log:\n{read(log)}")


def test_backoff_doubles_to_a_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4, 5, 6, 50)] == [0.5, 1, 2, 4, 8, 10, 10]


async def test_worker_reconnects_after_redis_dies_and_pending_events_converge(
    committed: Committed,
    own_redis: EmbeddedRedis,
    processes: Callable[..., Any],
    tmp_path: Path,
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    url = own_redis.url
    worker = processes(["worker"], committed.url, url)
    log = tmp_path / "worker.log"
    await wait_for_line(log, "Starting worker", worker)

    # Redis dies; the worker says so and keeps running.
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGKILL)
    own_redis.process.wait()
    await wait_for_line(log, "lost Redis", worker)

    # A check-in committed meanwhile: its event waits in the outbox.
    await check_in(sm, c.org_id, c.person_krs[0], 60)
    assert await count(sm, c.org_id, pending()) == 1

    # Redis comes back on the same port, empty (no queued job survived).
    for leftover in own_redis.data_dir.glob("appendonly*"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
    assert own_redis.start() == url
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(progress_channel(c.org_id))
        if await progress(sm, c.org_id, c.company) == 0:  # not converged before we listened
            change = await next_change(pubsub, c.company)
            assert change["value"] == pytest.approx(0.15)
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert await progress(sm, c.org_id, c.company) == pytest.approx(0.15)
    assert await count(sm, c.org_id, pending()) == 0
    await wait_for_line(log, "Redis is back", worker)
    assert worker.poll() is None
