"""Sending webhook deliveries: signed, retried with backoff, every attempt logged.

A delivery (a row of `webhook_deliveries`, made by the dispatcher) is sent
when due. `deliver_due` claims an organisation's due deliveries in a short
transaction (`FOR UPDATE SKIP LOCKED`) and leases them: `attempts` counts the
attempt and `next_attempt_at` moves `LEASE` ahead, committed before any HTTP
call. Two workers therefore never send one attempt twice, and a worker killed
mid-send leaves the delivery to be sent again once the lease is over, with the
same `webhook-id` (the attempt it lost has no row in the log). Each claimed
delivery is then POSTed (all of a batch at once, each within `SEND_TIMEOUT_S`,
redirects not followed) and its outcome recorded in a new transaction: one
`webhook_attempts` row and the delivery's new state.

Signing follows the Standard Webhooks specification: `webhook-id` is the outbox
event's id (stable across retries, the receiver's dedup key),
`webhook-timestamp` the wall-clock second of this attempt, and
`webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` keyed
with the base64-decoded part of the endpoint's `whsec_` secret. The body is
`json.dumps(payload)`, sent exactly as signed.

Retry schedule (delay after a failed attempt, each +-20% jitter so a receiver
coming back is not hit by every retry at once): attempt 1 at once, then
10 s, 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h: 9 attempts over about 31.6 h.
Any response but a 2xx is a failure (a 3xx too: redirects are not followed), as
are a timeout, a refused connection, a name that does not resolve and an
address refused by `addresses.address_allowed`. A delivery whose 9th attempt
fails is GAVE_UP.

Disabling: the endpoint's `failure_count` counts failed attempts in a row (any
delivery), reset by a success. It is disabled when a delivery to it gives up
while `failure_count` >= `FAILURES_TO_DISABLE` (15): the receiver failed a whole
schedule (more than a day) and every attempt of at least two deliveries' worth
since its last success. A count alone would disable a sound receiver down for a
minute during a burst (50 events fail 50 attempts in a row); giving up alone
would disable one that fails only one kind of event. The admins are told
(`notify`, WEBHOOK_ENDPOINT_DISABLED) and the audit log gets an entry by the system.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.models import Organization, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from okrgraph.domain.models.enums import DeliveryStatus
from okrgraph.domain.retry import RetrySchedule, send_leased
from okrgraph.domain.webhooks.addresses import AddressRefused
from okrgraph.domain.webhooks.catalog import SECRET_PREFIX, signing_secret
from okrgraph.domain.webhooks.disabling import disable_endpoint
from okrgraph.domain.webhooks.secrets import SecretUnreadable
from okrgraph.domain.webhooks.transport import describe_error, post_checked

RETRY_DELAYS = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
)
JITTER = 0.2
SCHEDULE = RetrySchedule(RETRY_DELAYS, JITTER)
MAX_ATTEMPTS = SCHEDULE.max_attempts
FAILURES_TO_DISABLE = 15
# Longer than any send (SEND_TIMEOUT_S bounds resolving, connecting and reading).
LEASE = timedelta(seconds=60)
SEND_TIMEOUT_S = 10.0
BATCH = 20  # deliveries sent at once
MAX_BATCHES = 25  # per call; the sweep's next run takes the rest
USER_AGENT = "okrgraph-webhooks/1"
ERROR_CHARS = 500
DUE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)

log = logging.getLogger(__name__)


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The Standard Webhooks `webhook-signature` value (`v1,<base64>`)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }


@dataclass(frozen=True)
class Claim:
    """A leased delivery, with what sending it needs (read in the claiming transaction)."""

    org_id: uuid.UUID
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    attempt: int
    url: str
    secret: str | None  # None: no configured key opens the endpoint's secret
    body: str
    allow_private: bool


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    duration_ms: int
    response_status: int | None = None
    error: str | None = None
    excerpt: str = ""

    @property
    def succeeded(self) -> bool:
        return (
            self.error is None
            and self.response_status is not None
            and (200 <= self.response_status < 300)
        )


@dataclass
class Counts:
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    gave_up: int = 0
    disabled: list[uuid.UUID] = field(default_factory=list)  # endpoints


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    client: httpx.AsyncClient,
    now: datetime | None = None,
    *,
    timeout_s: float = SEND_TIMEOUT_S,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
    queue: Any = None,
) -> Counts:
    """Send the organisation's due deliveries, a batch at a time; what happened.
    `now` (default okrgraph's clock) decides what is due and stamps the log; `queue`
    (the worker's Redis) takes the jobs the recording asks for (notification sends)."""
    counts = Counts()

    async def record(
        session: AsyncSession, sent: list[tuple[Claim, Outcome]], _done: datetime
    ) -> None:
        # Every recording locks its endpoints' rows in one order (by id; claim order
        # within an endpoint): two at once, over shared endpoints, never deadlock.
        for claim, outcome in sorted(sent, key=lambda c: c[0].endpoint_id):
            await record_outcome(session, claim, outcome, counts)

    await send_leased(
        sessionmaker,
        org_id,
        now,
        claim=claim_due,
        send=lambda c, at: send(client, c, at, timeout_s),
        record=record,
        batch=batch,
        max_batches=max_batches,
        queue=queue,
    )
    return counts


async def orgs_with_due_deliveries(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Organisations with deliveries due by `now` to an enabled endpoint (no tenant
    needed: the SECURITY DEFINER function of migration 0010)."""
    rows = await session.execute(
        text("SELECT okr_orgs_with_due_webhooks(CAST(:now AS timestamptz))"), {"now": now}
    )
    return [r[0] for r in rows]


async def claim_due(
    session: AsyncSession, org_id: uuid.UUID, now: datetime, limit: int
) -> list[Claim]:
    """Lease up to `limit` due deliveries to enabled endpoints (skipping those another
    transaction holds): the attempt is counted and the row is not due again before
    the lease ends. The caller commits before sending."""
    allow_private = await session.scalar(
        select(Organization.allow_private_webhook_urls).where(Organization.id == org_id)
    )
    rows = await session.execute(
        select(WebhookDelivery, WebhookEndpoint)
        .join(
            WebhookEndpoint,
            and_(
                WebhookEndpoint.org_id == WebhookDelivery.org_id,
                WebhookEndpoint.id == WebhookDelivery.endpoint_id,
            ),
        )
        .where(
            WebhookDelivery.org_id == org_id,
            WebhookDelivery.status.in_(DUE),
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )
    claims = []
    for delivery, endpoint in rows:
        delivery.attempts += 1
        delivery.next_attempt_at = now + LEASE
        claims.append(_claim_of(delivery, endpoint, bool(allow_private)))
    await session.flush()
    return claims


def _claim_of(delivery: WebhookDelivery, endpoint: WebhookEndpoint, allow_private: bool) -> Claim:
    try:
        secret: str | None = signing_secret(endpoint)
    except SecretUnreadable:
        secret = None
    return Claim(
        org_id=delivery.org_id,
        delivery_id=delivery.id,
        endpoint_id=endpoint.id,
        event_id=delivery.event_id,
        attempt=delivery.attempts,
        url=endpoint.url,
        secret=secret,
        body=json.dumps(delivery.payload),
        allow_private=allow_private,
    )


async def send(
    client: httpx.AsyncClient, claim: Claim, started_at: datetime, timeout_s: float
) -> Outcome:
    """POST one signed attempt to the address the endpoint's host resolves to now
    (checked by `address_allowed`); never raises for the receiver's failures."""
    start = time.monotonic()

    def outcome(**fields: Any) -> Outcome:
        duration_ms = int((time.monotonic() - start) * 1000)
        return Outcome(started_at=started_at, duration_ms=duration_ms, **fields)

    if claim.secret is None:
        return outcome(error="signing secret unreadable: rotate it")
    try:
        async with asyncio.timeout(timeout_s):
            status, excerpt = await _post(client, claim, timeout_s)
    except AddressRefused as exc:
        return outcome(error=str(exc))
    except (TimeoutError, httpx.TimeoutException):
        return outcome(error=f"timed out after {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return outcome(error=describe_error(exc)[:ERROR_CHARS])
    except Exception as exc:  # one odd endpoint must not leave its batch unrecorded
        log.exception("webhook delivery %s: unexpected error", claim.delivery_id)
        return outcome(error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
    return outcome(response_status=status, excerpt=excerpt)


async def _post(client: httpx.AsyncClient, claim: Claim, timeout_s: float) -> tuple[int, str]:
    """The attempt's status and the start of the response body, sent to the address
    the endpoint's host resolves to now (`transport.post_checked`)."""
    assert claim.secret is not None
    headers = signed_headers(claim.secret, str(claim.event_id), int(time.time()), claim.body)
    return await post_checked(
        client,
        claim.url,
        claim.body.encode(),
        headers,
        allow_private=claim.allow_private,
        timeout_s=timeout_s,
    )


async def record_outcome(
    session: AsyncSession, claim: Claim, outcome: Outcome, counts: Counts
) -> None:
    """The attempt's log row and the delivery's and endpoint's new state."""
    done = outcome.started_at + timedelta(milliseconds=outcome.duration_ms)
    session.add(
        WebhookAttempt(
            org_id=claim.org_id,
            delivery_id=claim.delivery_id,
            attempt=claim.attempt,
            started_at=outcome.started_at,
            duration_ms=outcome.duration_ms,
            response_status=outcome.response_status,
            error=outcome.error[:ERROR_CHARS] if outcome.error else None,
            response_excerpt=outcome.excerpt,
        )
    )
    counts.sent += 1
    if outcome.succeeded:
        counts.succeeded += 1
        await _update_delivery(
            session,
            claim,
            status=DeliveryStatus.SUCCEEDED,
            delivered_at=done,
            response_status=outcome.response_status,
            last_error=None,
        )
        await _update_endpoint(session, claim, failure_count=0)
        return
    last_error = outcome.error or f"HTTP {outcome.response_status}"
    fields = SCHEDULE.after_failure(claim.attempt, done)
    gave_up = fields["status"] is DeliveryStatus.GAVE_UP
    if gave_up:
        counts.gave_up += 1
    else:
        counts.failed += 1
    await _update_delivery(
        session, claim, response_status=outcome.response_status, last_error=last_error, **fields
    )
    failures = await _update_endpoint(
        session, claim, failure_count=WebhookEndpoint.failure_count + 1
    )
    if gave_up and failures is not None and failures >= FAILURES_TO_DISABLE:
        if await disable_endpoint(session, claim.org_id, claim.endpoint_id, failures, done):
            counts.disabled.append(claim.endpoint_id)


async def _update_delivery(session: AsyncSession, claim: Claim, **values: Any) -> None:
    """Only while the attempt is the delivery's latest: a lease that ran out and was
    taken again belongs to the later attempt."""
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.org_id == claim.org_id,
            WebhookDelivery.id == claim.delivery_id,
            WebhookDelivery.attempts == claim.attempt,
        )
        .values(**values)
    )


async def _update_endpoint(session: AsyncSession, claim: Claim, **values: Any) -> int | None:
    """The endpoint's failure count after the change (None: it is gone)."""
    result = await session.scalar(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.org_id == claim.org_id, WebhookEndpoint.id == claim.endpoint_id)
        .values(**values)
        .returning(WebhookEndpoint.failure_count)
    )
    return None if result is None else int(result)
