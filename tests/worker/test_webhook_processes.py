"""Webhooks through real `okr worker` processes and a real receiver on 127.0.0.1:
a worker killed with SIGKILL mid-delivery loses nothing and its resend carries the
same `webhook-id`; events committed while Redis was unreachable go out once it is
back (the relay and sweep crons); two workers at once deliver each event to each
endpoint exactly once. Every request verifies with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from arq.connections import ArqRedis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from okrgraph.api.app import create_app
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.config import Settings, settings
from okrgraph.domain.db import tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import Organization, OutboxEvent, WebhookAttempt, WebhookDelivery
from okrgraph.domain.models.enums import DeliveryStatus
from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.domain.webhooks.catalog import new_secret
from okrgraph.domain.webhooks.delivery import LEASE
from okrgraph.worker.jobs.events import dispatch_events
from tests.factories import make_webhook_endpoint
from tests.webhook_receiver import HANG, Receiver, Request
from tests.worker.conftest import Committed, build_company
from tests.worker.test_jobs import admin_token, check_in_over_http
from tests.worker.test_processes import TIMEOUT_S, processes

__all__ = ["processes"]  # the fixture, used by name

pytestmark = pytest.mark.e2e

CHECK_IN_CREATED = "checkin.created"


async def endpoints(
    sm: async_sessionmaker[AsyncSession], org: uuid.UUID, urls: list[str]
) -> dict[str, str]:
    """One endpoint per URL for check-ins (the organisation allows loopback); the
    signing secret by URL path."""
    secrets = {}
    async with tenant_session(sm, org) as s:
        await s.execute(update(Organization).values(allow_private_webhook_urls=True))
        for url in urls:
            secrets[url] = new_secret()
            await make_webhook_endpoint(
                s, org, url=url, secret=secrets[url], event_types=[CHECK_IN_CREATED]
            )
    return {urlsplit(url).path: secret for url, secret in secrets.items()}


def verified(secrets: dict[str, str], request: Request) -> Any:
    """The body, as a receiver using the Standard Webhooks library reads it (raises when
    the signature is wrong)."""
    return Webhook(secrets[request.path]).verify(request.body, request.headers)


async def commit_check_in(
    sm: async_sessionmaker[AsyncSession], org: uuid.UUID, kr: uuid.UUID, value: float, queue: Any
) -> None:
    """A check-in as the API commits it: the transaction, then its follow-ups to Redis."""
    async with unit_of_work(sm, org, queue) as s:
        await record_check_in(s, system_principal(org), kr, value)


async def check_in_events(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> set[str]:
    async with tenant_session(sm, org) as s:
        rows = await s.scalars(select(OutboxEvent.id).where(OutboxEvent.type == CHECK_IN_CREATED))
        return {str(i) for i in rows}


async def all_succeeded(
    sm: async_sessionmaker[AsyncSession], org: uuid.UUID, n: int, logs: Path
) -> list[WebhookDelivery]:
    """The organisation's deliveries once there are `n` and every one has succeeded
    (polled: a worker's commit offers nothing to wait on); else what they are, with
    the workers' log."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        async with tenant_session(sm, org) as s:
            rows = list(await s.scalars(select(WebhookDelivery)))
        if len(rows) == n and all(d.status == DeliveryStatus.SUCCEEDED for d in rows):
            return rows
        if time.monotonic() > deadline:
            states = [(d.status, d.attempts, d.next_attempt_at, d.last_error) for d in rows]
            log = (logs / "worker.log").read_text(errors="replace")[-5000:]
            raise AssertionError(f"deliveries: {states}\nworker.log (end):\n{log}")
        await asyncio.sleep(0.05)


def arrived_per_endpoint(requests: list[Request]) -> Counter[tuple[str, str]]:
    return Counter((r.path, r.headers["webhook-id"]) for r in requests)


async def test_a_worker_killed_mid_delivery_loses_nothing_and_resends_with_the_same_id(
    committed: Committed,
    worker_redis_url: str,
    processes: Callable[..., Any],
    arq_pool: ArqRedis,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    secrets = await endpoints(sm, c.org_id, [receiver.url])
    receiver.plan.append(HANG)  # the first request is held: the worker is mid-delivery
    for kr in [*c.person_krs, c.team_kr]:
        await commit_check_in(sm, c.org_id, kr, 50, arq_pool)
    events = await check_in_events(sm, c.org_id)
    assert len(events) == 3

    worker = processes(["worker"], committed.url, worker_redis_url)
    await receiver.until(lambda requests: len(requests) >= 1, TIMEOUT_S)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(10) == -signal.SIGKILL
    held = receiver.requests[0].headers["webhook-id"]
    async with tenant_session(sm, c.org_id) as s:
        lost = (
            await s.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == held))
        ).one()
    assert (lost.status, lost.attempts) == (DeliveryStatus.PENDING, 1)  # leased before the POST

    # The next worker starts once the lease is over (its clock moved past it).
    monkeypatch.setenv(
        "OKR_CLOCK_OFFSET_SECONDS", repr(settings.clock_offset_seconds + LEASE.total_seconds() + 1)
    )
    processes(["worker"], committed.url, worker_redis_url)
    rows = await all_succeeded(sm, c.org_id, 3, tmp_path)

    ids = Counter(receiver.ids())
    assert set(ids) == events  # nothing lost
    assert ids[held] >= 2  # sent again, under the same id
    bodies: dict[str, set[bytes]] = {}
    for request in receiver.requests:
        assert verified(secrets, request)["type"] == CHECK_IN_CREATED
        bodies.setdefault(request.headers["webhook-id"], set()).add(request.body)
    assert all(len(b) == 1 for b in bodies.values())  # a resend is the same body
    async with tenant_session(sm, c.org_id) as s:
        log = list(
            await s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == lost.id))
        )
    assert [a.attempt for a in log] == [2]  # the killed attempt's outcome is unknown: no row
    assert {d.id: d.attempts for d in rows}[lost.id] == 2


async def test_events_committed_while_redis_was_down_are_delivered_once_it_is_back(
    committed: Committed,
    worker_redis_url: str,
    processes: Callable[..., Any],
    arq_pool: ArqRedis,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    secrets = await endpoints(sm, c.org_id, [receiver.url])
    token = await admin_token(sm, c.org_id)
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"), sessionmaker=sm)
    async with app.router.lifespan_context(app):
        assert app.state.queue is None  # Redis unreachable
        first = await check_in_over_http(app, token, c.person_krs[0], 40)
        # A dispatch whose Delivery follow-up was lost (its worker's Redis went away
        # between commit and enqueue): only the sweep_webhooks cron finds these.
        assert (await dispatch_events({"sessionmaker": sm}, str(c.org_id)))["deliveries"] == 1
        # Undispatched events: only the relay_events cron finds these.
        later = [await check_in_over_http(app, token, kr, 60) for kr in c.person_krs]
    for response in (first, *later):
        assert response.json()["data"]["checkIn"]["__typename"] == "CheckInSuccess"
    assert await arq_pool.queued_jobs() == []  # nothing reached Redis
    events = await check_in_events(sm, c.org_id)
    assert len(events) == 3
    assert receiver.requests == []

    processes(["worker"], committed.url, worker_redis_url)  # Redis is back
    await receiver.until(lambda requests: set(receiver.ids()) == events, TIMEOUT_S)
    await all_succeeded(sm, c.org_id, 3, tmp_path)
    assert sorted(receiver.ids()) == sorted(events)  # once each
    for request in receiver.requests:
        assert verified(secrets, request)["type"] == CHECK_IN_CREATED


async def test_two_workers_deliver_each_event_to_each_endpoint_exactly_once(
    committed: Committed,
    worker_redis_url: str,
    processes: Callable[..., Any],
    arq_pool: ArqRedis,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm, person_krs=4)
    paths = [f"/hook/{i}" for i in range(3)]
    secrets = await endpoints(sm, c.org_id, [receiver.url_for(p) for p in paths])
    for _ in range(2):
        processes(["worker"], committed.url, worker_redis_url)

    async def writer(kr: uuid.UUID) -> None:
        for step in range(5):
            await commit_check_in(sm, c.org_id, kr, 10.0 * step + 1, arq_pool)

    await asyncio.gather(*(writer(kr) for kr in c.person_krs))
    events = await check_in_events(sm, c.org_id)
    assert len(events) == 20
    expected = {(p, e) for p in paths for e in events}
    await receiver.until(lambda r: set(arrived_per_endpoint(r)) == expected, TIMEOUT_S)
    rows = await all_succeeded(sm, c.org_id, len(expected), tmp_path)

    # Every delivery was claimed once (attempts counts claims), hence sent at most once.
    assert {d.attempts for d in rows} == {1}
    assert arrived_per_endpoint(receiver.requests) == Counter(expected)
    for request in receiver.requests:
        assert str(request.headers["webhook-id"]) in events
        assert verified(secrets, request)["type"] == CHECK_IN_CREATED
