"""The webhook sender against a real HTTP receiver on 127.0.0.1: signatures a
Standard Webhooks library verifies, retries on failures of every kind with the same
`webhook-id`, the attempt log, giving up, disabling an endpoint, the address
guard, leases, and two senders at once. `now=` steps through the schedule."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from arq import func
from arq.connections import ArqRedis
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from okrgraph.domain import clock
from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import (
    AuditEntry,
    Notification,
    NotificationPreference,
    NotificationSend,
    Organization,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from okrgraph.domain.models.enums import Channel, DeliveryStatus, NotificationKind, OrgRole
from okrgraph.domain.outbox.jobs import DELIVER_WEBHOOKS
from okrgraph.domain.webhooks import delivery
from okrgraph.domain.webhooks.catalog import new_secret
from okrgraph.domain.webhooks.delivery import (
    FAILURES_TO_DISABLE,
    JITTER,
    LEASE,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    SEND_TIMEOUT_S,
    Counts,
    deliver_due,
)
from okrgraph.worker.jobs.webhooks import deliver_webhooks, http_client, sweep_webhooks
from okrgraph.worker.settings import WorkerSettings
from tests.factories import make_org, make_person, make_webhook_delivery, make_webhook_endpoint
from tests.webhook_receiver import HANG, Receiver, Request
from tests.worker.conftest import Committed, run_burst


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client() as c:
        yield c


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Setup:
    org_id: uuid.UUID
    endpoint_id: uuid.UUID
    secret: str
    deliveries: list[uuid.UUID]
    events: list[uuid.UUID]
    now: datetime


async def setup(
    committed: Committed, url: str, *, n: int = 1, allow_private: bool = True, **endpoint: object
) -> Setup:
    now = clock.now()
    secret = new_secret()
    async with tenant_session(committed.sessionmaker, None) as s:
        org = await make_org(s, allow_private_webhook_urls=allow_private)
        ep = await make_webhook_endpoint(s, org.id, url=url, secret=secret, **endpoint)
        rows = [
            await make_webhook_delivery(
                s, org.id, endpoint_id=ep.id, payload={"n": i, "text": "é"}, next_attempt_at=now
            )
            for i in range(n)
        ]
    return Setup(org.id, ep.id, secret, [d.id for d in rows], [d.event_id for d in rows], now)


async def deliveries(committed: Committed, st: Setup) -> list[WebhookDelivery]:
    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        rows = await s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at))
        by_id = {d.id: d for d in rows}
    return [by_id[i] for i in st.deliveries]


async def attempts(committed: Committed, st: Setup) -> list[WebhookAttempt]:
    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        rows = await s.scalars(select(WebhookAttempt).order_by(WebhookAttempt.attempt))
        return list(rows)


async def endpoint(committed: Committed, st: Setup) -> WebhookEndpoint:
    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        return (await s.scalars(select(WebhookEndpoint))).one()


def verify(st: Setup, request: Request) -> object:
    """What a receiver using the Standard Webhooks library does (it raises when wrong)."""
    return Webhook(st.secret).verify(request.body, request.headers)


async def test_a_delivery_is_signed_per_standard_webhooks_and_logged(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, receiver.url, failure_count=3)
    counts = await deliver_due(committed.sessionmaker, st.org_id, client, st.now)

    assert (counts.sent, counts.succeeded) == (1, 1)
    [request] = receiver.requests
    assert verify(st, request) == {"n": 0, "text": "é"}
    assert request.headers["webhook-id"] == str(st.events[0])
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "okrgraph-webhooks/1"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    [d] = await deliveries(committed, st)
    assert (d.status, d.attempts, d.response_status, d.last_error) == (
        DeliveryStatus.SUCCEEDED,
        1,
        200,
        None,
    )
    assert d.delivered_at is not None
    assert d.delivered_at >= st.now
    [a] = await attempts(committed, st)
    assert (a.attempt, a.response_status, a.error, a.started_at) == (1, 200, None, st.now)
    assert a.duration_ms >= 0
    assert a.response_excerpt.startswith("answer 200 xxx")
    assert len(a.response_excerpt) == 2000
    assert (await endpoint(committed, st)).failure_count == 0


async def step(
    committed: Committed, st: Setup, client: httpx.AsyncClient, timeout_s: float = SEND_TIMEOUT_S
) -> Counts:
    """Run the sender at the moment the (first) delivery is next due."""
    [d, *_] = await deliveries(committed, st)
    return await deliver_due(
        committed.sessionmaker, st.org_id, client, d.next_attempt_at, timeout_s=timeout_s
    )


async def test_a_500_then_a_timeout_then_a_refused_connection_are_retried_with_one_id(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, receiver.url)
    receiver.plan.extend([500, HANG])
    first = await deliver_due(committed.sessionmaker, st.org_id, client, st.now)
    assert (first.sent, first.failed) == (1, 1)
    [d] = await deliveries(committed, st)
    assert (d.status, d.attempts, d.response_status, d.last_error) == (
        DeliveryStatus.FAILED,
        1,
        500,
        "HTTP 500",
    )
    [a1] = await attempts(committed, st)
    assert a1.response_status == 500
    assert a1.response_excerpt.startswith("answer 500")
    done = a1.started_at + timedelta(milliseconds=a1.duration_ms)
    low, high = RETRY_DELAYS[0] * (1 - JITTER), RETRY_DELAYS[0] * (1 + JITTER)
    assert done + low <= d.next_attempt_at <= done + high

    await step(committed, st, client, timeout_s=0.3)  # the receiver hangs
    [d] = await deliveries(committed, st)
    a2 = (await attempts(committed, st))[1]
    assert (d.status, d.attempts, a2.attempt) == (DeliveryStatus.FAILED, 2, 2)
    assert a2.error == "timed out after 0.3 s"
    assert a2.response_status is None
    assert 300 <= a2.duration_ms < 2000

    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        await s.execute(
            update(WebhookEndpoint).values(url=f"http://127.0.0.1:{closed_port()}/hook")
        )
    await step(committed, st, client)
    a3 = (await attempts(committed, st))[2]
    assert a3.error is not None
    assert a3.error.startswith("ConnectError"), a3.error
    assert a3.response_status is None

    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        await s.execute(update(WebhookEndpoint).values(url=receiver.url))
    last = await step(committed, st, client)
    assert last.succeeded == 1
    [d] = await deliveries(committed, st)
    assert (d.status, d.attempts, d.response_status) == (DeliveryStatus.SUCCEEDED, 4, 200)
    assert receiver.ids() == [str(st.events[0])] * 3  # the refused attempt never arrived
    for request in receiver.requests:
        verify(st, request)
    assert (await endpoint(committed, st)).failure_count == 0  # reset by the success


async def test_a_delivery_gives_up_after_the_schedule(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, receiver.url)
    receiver.plan.extend([503] * MAX_ATTEMPTS)
    await deliver_due(committed.sessionmaker, st.org_id, client, st.now)
    for _ in range(MAX_ATTEMPTS - 1):
        await step(committed, st, client)
    [d] = await deliveries(committed, st)
    assert (d.status, d.attempts, d.response_status) == (DeliveryStatus.GAVE_UP, 9, 503)
    log = await attempts(committed, st)
    assert [a.attempt for a in log] == list(range(1, MAX_ATTEMPTS + 1))
    gaps = [b.started_at - a.started_at for a, b in zip(log, log[1:], strict=False)]
    for gap, delay in zip(gaps, RETRY_DELAYS, strict=True):
        assert delay * (1 - JITTER) <= gap <= delay * (1 + JITTER) + timedelta(seconds=1)
    assert timedelta(hours=25) < log[-1].started_at - log[0].started_at < timedelta(hours=38)
    assert len(set(receiver.ids())) == 1
    assert len(receiver.requests) == MAX_ATTEMPTS
    # Nothing is due any more, and one delivery's failures do not disable the endpoint.
    later = await deliver_due(committed.sessionmaker, st.org_id, client, st.now + timedelta(days=3))
    assert later.sent == 0
    ep = await endpoint(committed, st)
    assert (ep.enabled, ep.failure_count) == (True, MAX_ATTEMPTS)


async def test_an_endpoint_failing_past_the_threshold_is_disabled_and_admins_told(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, receiver.url, n=2)
    receiver.plan.extend([500] * 2 * MAX_ATTEMPTS)
    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        admins = [(await make_person(s, st.org_id, role=OrgRole.ADMIN)).id for _ in range(2)]
        muted = await make_person(s, st.org_id, role=OrgRole.ADMIN)
        s.add(
            NotificationPreference(
                org_id=st.org_id,
                person_id=muted.id,
                kind=NotificationKind.WEBHOOK_ENDPOINT_DISABLED,
                channel=Channel.IN_APP,
                enabled=False,
            )
        )
        await make_person(s, st.org_id, role=OrgRole.ADMIN, archived_at=st.now)
        await make_person(s, st.org_id, role=OrgRole.MEMBER)
    total = Counts()
    at = st.now
    for _ in range(MAX_ATTEMPTS):
        counts = await deliver_due(committed.sessionmaker, st.org_id, client, at)
        assert counts.sent == 2
        total.disabled += counts.disabled
        at = max(d.next_attempt_at for d in await deliveries(committed, st))
    assert total.disabled == [st.endpoint_id]  # once, though both deliveries gave up
    assert 2 * MAX_ATTEMPTS >= FAILURES_TO_DISABLE
    ep = await endpoint(committed, st)
    assert (ep.enabled, ep.failure_count) == (False, 2 * MAX_ATTEMPTS)
    assert ep.disabled_at is not None
    assert ep.disabled_at > st.now + timedelta(hours=25)
    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        notes = list(await s.scalars(select(Notification)))
        sends = list(await s.scalars(select(NotificationSend)))
        audit = list(await s.scalars(select(AuditEntry)))
        # a delivery made after the disabling waits: the endpoint is not sent to
        await make_webhook_delivery(s, st.org_id, endpoint_id=st.endpoint_id, next_attempt_at=at)
    assert sorted(n.person_id for n in notes) == sorted(admins)  # inbox: not the muted one
    assert sorted(x.person_id for x in sends) == sorted([*admins, muted.id])  # e-mail
    assert {x.channel for x in sends} == {Channel.EMAIL}
    assert {n.kind for n in notes} == {NotificationKind.WEBHOOK_ENDPOINT_DISABLED}
    assert {n.subject_id for n in notes} == {st.endpoint_id}
    [entry] = [e for e in audit if e.action == "webhook_endpoint.disabled"]
    assert (entry.subject_id, entry.actor_person_id, entry.actor_token_id) == (
        st.endpoint_id,
        None,
        None,
    )
    assert entry.changes["failure_count"] >= FAILURES_TO_DISABLE
    after = await deliver_due(committed.sessionmaker, st.org_id, client, at + timedelta(hours=1))
    assert after.sent == 0


@pytest.mark.parametrize("allowed", [False, True])
async def test_a_loopback_url_is_sent_to_only_where_the_organisation_allows_it(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient, allowed: bool
) -> None:
    st = await setup(committed, receiver.url, allow_private=allowed)
    counts = await deliver_due(committed.sessionmaker, st.org_id, client, st.now)
    [a] = await attempts(committed, st)
    [d] = await deliveries(committed, st)
    if allowed:
        assert (counts.succeeded, len(receiver.requests), a.response_status) == (1, 1, 200)
    else:
        assert (counts.failed, receiver.requests, a.response_status) == (1, [], None)
        assert (a.error, d.last_error, d.status) == (
            "address not allowed",
            "address not allowed",
            DeliveryStatus.FAILED,
        )


async def test_a_name_resolving_to_loopback_is_refused_at_send_time(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """`localhost` passes any check of the URL's text; its address does not."""
    st = await setup(committed, f"http://localhost:{receiver.port}/hook", allow_private=False)
    await deliver_due(committed.sessionmaker, st.org_id, client, st.now)
    [a] = await attempts(committed, st)
    assert (a.error, receiver.requests) == ("address not allowed", [])
    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        await s.execute(update(Organization).values(allow_private_webhook_urls=True))
    await step(committed, st, client)
    assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"


async def test_a_lease_lost_with_its_worker_is_sent_again_after_it_with_the_same_id(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, receiver.url)
    async with tenant_session(committed.sessionmaker, st.org_id) as s:  # claims, then "dies"
        [claim] = await delivery.claim_due(s, st.org_id, st.now, 10)
    assert claim.attempt == 1
    during = await deliver_due(committed.sessionmaker, st.org_id, client, st.now + LEASE / 2)
    assert during.sent == 0
    after = await deliver_due(committed.sessionmaker, st.org_id, client, st.now + LEASE)
    assert after.succeeded == 1
    assert receiver.ids() == [str(claim.event_id)]
    [a] = await attempts(committed, st)
    assert a.attempt == 2  # the lost attempt's outcome is unknown: it has no row


async def test_two_senders_at_once_send_each_delivery_once(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, receiver.url, n=12)
    a, b = await asyncio.gather(
        *(deliver_due(committed.sessionmaker, st.org_id, client, st.now, batch=3) for _ in "ab")
    )
    assert a.sent + b.sent == 12
    assert Counter(receiver.ids()) == Counter(str(e) for e in st.events)
    assert {d.status for d in await deliveries(committed, st)} == {DeliveryStatus.SUCCEEDED}
    assert [x.attempt for x in await attempts(committed, st)] == [1] * 12


def test_the_job_and_its_sweep_are_registered() -> None:
    names = [getattr(f, "name", getattr(f, "__name__", None)) for f in WorkerSettings.functions]
    assert DELIVER_WEBHOOKS in names
    assert any("sweep_webhooks" in c.name for c in WorkerSettings.cron_jobs)


async def test_the_sweep_enqueues_the_job_that_delivers(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient, arq_pool: ArqRedis
) -> None:
    st = await setup(committed, receiver.url, n=2)
    idle = await setup(committed, receiver.url)
    async with tenant_session(committed.sessionmaker, idle.org_id) as s:  # nothing due there
        await s.execute(update(WebhookDelivery).values(next_attempt_at=st.now + timedelta(hours=1)))
    job = await arq_pool.enqueue_job("sweep_webhooks")
    assert job is not None
    await run_burst(
        arq_pool,
        [func(sweep_webhooks, name="sweep_webhooks"), func(deliver_webhooks)],
        sessionmaker=committed.sessionmaker,
        http=client,
    )
    assert await job.result(timeout=5) == 1
    assert {d.status for d in await deliveries(committed, st)} == {DeliveryStatus.SUCCEEDED}
    assert sorted(receiver.ids()) == sorted(str(e) for e in st.events)
