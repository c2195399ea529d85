"""Sending notifications by e-mail and Slack: leased, retried with backoff.

A send (a row of `notification_sends`, written by `notify`) goes out when due, as
webhook deliveries do (webhooks/delivery.py): `send_due` claims an
organisation's due sends (PENDING or FAILED, `next_attempt_at` reached) in a
short transaction, `FOR UPDATE SKIP LOCKED`, and leases them (`attempts` counts
the attempt, `next_attempt_at` moves `LEASE` ahead), committed before anything
is sent: two workers never send one attempt, and a worker killed mid-send
leaves the send to go again once the lease is over. The claimed sends then go
out together and each outcome is recorded in a new transaction, only while the
attempt is still the send's latest: SUCCEEDED with `sent_at`, FAILED with the
next attempt due after `SCHEDULE`, or GAVE_UP once the schedule is used up.
`last_error` says what went wrong (bounded).

EMAIL goes to the person's address (`people.email`) through the mailer
(mail.py: SMTP, or the mbox file of `okr dev`). SLACK is posted to the
organisation's incoming webhook (slack.py) through the address guard webhooks
use, honouring `allow_private_webhook_urls`. Some sends cannot succeed by being
retried, and give up at once with the reason: e-mail with no mailer configured,
Slack with no webhook set ("no Slack webhook configured") or one no configured
key opens, and anything for a person archived since.

Retry schedule (after a failed attempt, +-20% jitter): 30 s, 2 min, 10 min,
30 min, 1 h, 2 h, 4 h: 8 attempts over about 7.7 h. Shorter than webhooks'
day: a reminder or an alert that is a day late has lost its point.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.models import NotificationSend, Organization, Person
from okrgraph.domain.models.enums import Channel, DeliveryStatus, NotificationKind
from okrgraph.domain.notifications import slack
from okrgraph.domain.notifications.mail import (
    Mail,
    Mailer,
    MailNotSent,
    address_of,
    build_message,
)
from okrgraph.domain.retry import RetrySchedule, send_leased
from okrgraph.domain.webhooks.addresses import AddressRefused
from okrgraph.domain.webhooks.secrets import SecretKeyMissing, SecretUnreadable
from okrgraph.domain.webhooks.transport import describe_error, post_checked

SCHEDULE = RetrySchedule(
    (
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=4),
    )
)
LEASE = timedelta(seconds=90)  # longer than any send (SMTP's timeout is 30 s)
SLACK_TIMEOUT_S = 10.0
BATCH = 20
MAX_BATCHES = 25  # per call; the sweep's next run takes the rest
ERROR_CHARS = 500
USER_AGENT = "okrgraph-notifications/1"
DUE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
NO_SLACK_WEBHOOK = "no Slack webhook configured"
NO_MAILER = "e-mail is not configured (OKR_SMTP_HOST or OKR_MAIL_FILE)"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Senders:
    """What sending needs from the process: the worker's HTTP client, its mailer
    (None: e-mail not configured) and the From address."""

    http: httpx.AsyncClient
    mailer: Mailer | None
    mail_from: str
    slack_timeout_s: float = SLACK_TIMEOUT_S


@dataclass(frozen=True)
class Claim:
    """A leased send, with what sending it needs (read in the claiming transaction)."""

    org_id: uuid.UUID
    send_id: uuid.UUID
    attempt: int
    channel: Channel
    kind: NotificationKind
    subject: str
    text: str
    html: str
    person_name: str
    email: str
    archived: bool
    slack_url: str | None
    slack_problem: str | None  # why there is no Slack URL to post to
    allow_private: bool


@dataclass(frozen=True)
class Outcome:
    error: str | None = None
    final: bool = False  # retrying cannot help: give up now


@dataclass
class Counts:
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    gave_up: int = 0


async def send_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    senders: Senders,
    now: datetime | None = None,
    *,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> Counts:
    """Send the organisation's due sends, a batch at a time; what happened. `now`
    (default okrgraph's clock) decides what is due and stamps the outcome."""
    counts = Counts()

    async def record(
        session: AsyncSession, sent: list[tuple[Claim, Outcome]], done: datetime
    ) -> None:
        for claim, outcome in sent:
            await record_outcome(session, claim, outcome, done, counts)

    await send_leased(
        sessionmaker,
        org_id,
        now,
        claim=claim_due,
        send=lambda c, at: deliver(c, senders, at),
        record=record,
        batch=batch,
        max_batches=max_batches,
    )
    return counts


async def orgs_with_due_sends(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Organisations with sends due by `now` (no tenant needed: the SECURITY DEFINER
    function of migration 0011)."""
    rows = await session.execute(
        text("SELECT okr_orgs_with_due_sends(CAST(:now AS timestamptz))"), {"now": now}
    )
    return [r[0] for r in rows]


async def claim_due(
    session: AsyncSession, org_id: uuid.UUID, now: datetime, limit: int
) -> list[Claim]:
    """Lease up to `limit` due sends (skipping those another transaction holds): the
    attempt is counted and the row is not due again before the lease ends. The
    caller commits before sending."""
    organization = await session.get(Organization, org_id)
    assert organization is not None
    slack_url, slack_problem = _slack_target(organization)
    rows = await session.execute(
        select(NotificationSend, Person)
        .join(
            Person,
            and_(Person.org_id == NotificationSend.org_id, Person.id == NotificationSend.person_id),
        )
        .where(
            NotificationSend.org_id == org_id,
            NotificationSend.status.in_(DUE),
            NotificationSend.next_attempt_at <= now,
        )
        .order_by(NotificationSend.next_attempt_at)
        .limit(limit)
        .with_for_update(of=NotificationSend, skip_locked=True)
    )
    claims = []
    for row, person in rows:
        row.attempts += 1
        row.next_attempt_at = now + LEASE
        claims.append(
            Claim(
                org_id=org_id,
                send_id=row.id,
                attempt=row.attempts,
                channel=row.channel,
                kind=row.kind,
                subject=row.subject,
                text=row.text_body,
                html=row.html_body,
                person_name=person.name,
                email=person.email,
                archived=person.archived_at is not None,
                slack_url=slack_url,
                slack_problem=slack_problem,
                allow_private=organization.allow_private_webhook_urls,
            )
        )
    await session.flush()
    return claims


def _slack_target(organization: Organization) -> tuple[str | None, str | None]:
    try:
        url = slack.webhook_url(organization)
    except (SecretUnreadable, SecretKeyMissing) as exc:
        return None, f"the Slack webhook does not open ({exc}); set it again"
    return url, None if url else NO_SLACK_WEBHOOK


async def deliver(claim: Claim, senders: Senders, at: datetime) -> Outcome:
    """Send one claimed notification; never raises (one bad send must not leave its
    batch unrecorded)."""
    if claim.archived:
        return Outcome("the person is archived", final=True)
    try:
        if claim.channel is Channel.EMAIL:
            return await _email(claim, senders, at)
        if claim.channel is Channel.SLACK:
            return await _slack(claim, senders)
        return Outcome(f"no sender for channel {claim.channel.value}", final=True)
    except Exception as exc:
        log.exception("notification send %s: unexpected error", claim.send_id)
        return Outcome(f"{type(exc).__name__}: {exc}")


async def _email(claim: Claim, senders: Senders, at: datetime) -> Outcome:
    if senders.mailer is None:
        return Outcome(NO_MAILER, final=True)
    mail = Mail(
        send_id=claim.send_id,
        to=address_of(claim.person_name, claim.email),
        subject=claim.subject,
        text=claim.text,
        html=claim.html,
    )
    try:
        await senders.mailer.send(build_message(mail, senders.mail_from, at))
    except MailNotSent as exc:
        return Outcome(str(exc))
    return Outcome()


async def _slack(claim: Claim, senders: Senders) -> Outcome:
    if claim.slack_url is None:
        return Outcome(claim.slack_problem or NO_SLACK_WEBHOOK, final=True)
    body = json.dumps(slack.payload(claim.kind, claim.subject, claim.text, claim.person_name))
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    timeout_s = senders.slack_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            status, excerpt = await post_checked(
                senders.http,
                claim.slack_url,
                body.encode(),
                headers,
                allow_private=claim.allow_private,
                timeout_s=timeout_s,
            )
    except AddressRefused as exc:
        return Outcome(f"Slack webhook: {exc}")
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(f"Slack webhook: timed out after {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return Outcome(f"Slack webhook: {describe_error(exc)}")
    if 200 <= status < 300:
        return Outcome()
    return Outcome(f"Slack webhook: HTTP {status}: {excerpt[:200]}")


async def record_outcome(
    session: AsyncSession, claim: Claim, outcome: Outcome, done: datetime, counts: Counts
) -> None:
    """The send's new state, only while this attempt is its latest (a lease that ran
    out and was taken again belongs to the later attempt)."""
    counts.sent += 1
    values: dict[str, Any]
    if outcome.error is None:
        counts.succeeded += 1
        values = {"status": DeliveryStatus.SUCCEEDED, "sent_at": done, "last_error": None}
    else:
        values = {"last_error": outcome.error[:ERROR_CHARS]}
        if outcome.final:
            values["status"] = DeliveryStatus.GAVE_UP
        else:
            values |= SCHEDULE.after_failure(claim.attempt, done)
        if values["status"] is DeliveryStatus.GAVE_UP:
            counts.gave_up += 1
        else:
            counts.failed += 1
    await session.execute(
        update(NotificationSend)
        .where(
            NotificationSend.org_id == claim.org_id,
            NotificationSend.id == claim.send_id,
            NotificationSend.attempts == claim.attempt,
        )
        .values(**values)
    )
