"""A worker that outlives Redis: a lost connection is logged and retried with
backoff instead of ending the process.

arq's `Worker.main` polls in a loop, and any Redis error in a poll (reading the
queue, starting jobs, the heartbeat, enqueueing crons, or recording a finished
job's result) escapes it and stops the worker, leaving outbox events pending
until someone restarts it. Here each poll that fails on the connection waits
(0.5 s, doubling to 10 s) and the loop carries on; the pool reconnects on the
next command. Nothing is lost meanwhile: a job whose result could not be
recorded stays queued and runs again (jobs are idempotent), and the events
committed while Redis was away sit in the outbox, which the `relay_outbox`
cron (every second, a sweep) enqueues once Redis answers again, even when
Redis came back empty.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq.worker import Worker, get_kwargs
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("okrgraph.worker")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
LOST = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def backoff(failures: int) -> float:
    """Seconds to wait after `failures` consecutive failed polls (1, 2, ...)."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures - 1, 10)))


class ReconnectingWorker(Worker):
    """arq's Worker, but a poll that loses Redis waits and retries."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redis_failures = 0

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except LOST as exc:
            self.redis_failures += 1
            delay = backoff(self.redis_failures)
            log.warning(
                "lost Redis (%s: %s); reconnecting in %.1f s (attempt %d)",
                type(exc).__name__,
                exc,
                delay,
                self.redis_failures,
            )
            await asyncio.sleep(delay)
            return
        if self.redis_failures:
            log.info("Redis is back after %d failed attempt(s); carrying on", self.redis_failures)
            self.redis_failures = 0

    async def close(self) -> None:
        """arq's close deletes the health key in Redis; a stop while Redis is
        away must still stop (and dispose the database engine)."""
        try:
            await super().close()
        except LOST as exc:
            log.warning("stopped without Redis (%s: %s)", type(exc).__name__, exc)
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)


def run(settings_cls: Any, **kwargs: Any) -> None:
    """`arq.worker.run_worker`, with the reconnecting worker."""
    ReconnectingWorker(**{**get_kwargs(settings_cls), **kwargs}).run()
