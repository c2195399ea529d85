"""arq WorkerSettings, tuned for many short jobs.

arq's defaults (poll_delay 0.5 s, max_jobs 10) suit slow jobs: about 20 short
jobs a second. Ours are short SQL statements, so the worker polls every
10 ms and runs up to 50 at once (each holds at most one pooled connection).
Measured by bench/scores.py (2 loaded CPUs, jobs of a few ms): 108 jobs/s with
the defaults, 136 with a 50 ms poll. The poll delay is what a check-in's roll-up
waits for once its window (outbox/jobs.py) has ended: half of it on average
(issue 11: 50 ms polls and windows were ~50 ms of a 56 ms median
check-in -> converged). Polling every 10 ms instead of 50 costs an idle worker
~4% of a core more (2.4% -> ~7%, measured with /proc's CPU times).

Health: arq refreshes its health key once per `health_check_interval` (an hour
by default), with a lifetime of that plus a second, from its poll loop. Here
every 5 s, so the key vanishes 6 s after a worker stops polling (hung, stopped,
killed) and `okr worker --check` (docker-compose's healthcheck) fails. The key
is one per host, so a hung worker's check is not passed by a healthy worker
elsewhere (one container is one host).
"""

from __future__ import annotations

import socket
from typing import Any, ClassVar

from arq import cron, func
from arq.connections import RedisSettings

from okrgraph.domain.config import settings
from okrgraph.domain.db import create_engine, create_sessionmaker
from okrgraph.domain.notifications.mail import mailer_from
from okrgraph.worker.jobs.close_jobs import close_cycle_job, relay_close_jobs
from okrgraph.worker.jobs.cycles import roll_cycles
from okrgraph.worker.jobs.events import dispatch_events
from okrgraph.worker.jobs.health import health
from okrgraph.worker.jobs.kpis import sync_kpi_key_results
from okrgraph.worker.jobs.notification_schedules import notification_schedules
from okrgraph.worker.jobs.notifications import send_notifications, sweep_notifications
from okrgraph.worker.jobs.outbox import refresh_scores, relay_events, relay_outbox
from okrgraph.worker.jobs.retention import prune_outbox
from okrgraph.worker.jobs.scores import full_recalculation, recalculate_scores
from okrgraph.worker.jobs.webhooks import deliver_webhooks, http_client, sweep_webhooks

POLL_DELAY_S = 0.01
MAX_JOBS = 50
HEALTH_CHECK_INTERVAL_S = 5


def health_check_key() -> str:
    """This host's worker health key (arq's default queue name + host name)."""
    from arq.constants import default_queue_name, health_check_key_suffix

    return f"{default_queue_name}{health_check_key_suffix}:{socket.gethostname()}"


async def startup(ctx: dict[str, Any]) -> None:
    engine = create_engine(pool_size=min(MAX_JOBS, 20), max_overflow=10)
    ctx["engine"] = engine
    ctx["sessionmaker"] = create_sessionmaker(engine)
    ctx["http"] = http_client()  # one pool of connections to webhook receivers
    ctx["mailer"] = mailer_from(settings)  # SMTP, the mbox file, or None


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["http"].aclose()
    await ctx["engine"].dispose()


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url or "redis://127.0.0.1:6379/0")


class WorkerSettings:
    functions: ClassVar[list[Any]] = [
        health,
        # Coalesced per org and window (outbox.jobs): no result to keep or wait for.
        func(recalculate_scores, keep_result=0),
        full_recalculation,
        sync_kpi_key_results,
        # Coalesced per org and window (Delivery follow-up, sweep_webhooks).
        func(deliver_webhooks, keep_result=0),
        # Coalesced per org and window too: events to webhook deliveries.
        func(dispatch_events, keep_result=0),
        # Coalesced per org and window too (Sending follow-up, sweep_notifications).
        func(send_notifications, keep_result=0),
        # One per close job (its _job_id); idempotent, so a rerun after a crash is safe.
        close_cycle_job,
    ]
    cron_jobs: ClassVar[list[Any]] = [
        # Every second: a sweep, so a run missed by a crash is made up by the next.
        cron(relay_outbox, second=set(range(60)), run_at_startup=True, keep_result=0),
        cron(relay_events, second=set(range(60)), run_at_startup=True, keep_result=0),
        # Statuses follow the clock: every 10 minutes a full pass per organisation.
        cron(refresh_scores, minute=set(range(0, 60, 10)), second=0, keep_result=0),
        # Hourly, by each organisation's calendar: grade ended cycles, close graded ones.
        cron(roll_cycles, minute=5, second=0, run_at_startup=True, keep_result=0),
        # Every 5 s: closes of large cycles whose enqueue was lost (a Redis outage).
        cron(relay_close_jobs, second=set(range(0, 60, 5)), run_at_startup=True, keep_result=0),
        # Hourly: delete outbox events every consumer is done with, past retention.
        cron(prune_outbox, minute=35, second=0, keep_result=0),
        # Hourly: check-ins due, cycles ending, the weekly digest, by each organisation's
        # morning; each person told once per period (notifications' dedup keys).
        cron(notification_schedules, minute=20, second=0, keep_result=0),
        # Every 5 s: organisations with webhook deliveries due (retries, lost jobs).
        cron(sweep_webhooks, second=set(range(0, 60, 5)), run_at_startup=True, keep_result=0),
        # Every 5 s: organisations with notification sends due (retries, lost jobs).
        cron(sweep_notifications, second=set(range(0, 60, 5)), run_at_startup=True, keep_result=0),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings()
    poll_delay = POLL_DELAY_S
    health_check_interval = HEALTH_CHECK_INTERVAL_S
    health_check_key = health_check_key()
    max_jobs = MAX_JOBS
    job_timeout = 300
    keep_result = 60
