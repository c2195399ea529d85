"""The e-mail and Slack sender against real servers on 127.0.0.1: an aiosmtpd SMTP
server receives each e-mail once with its plain and HTML parts; SMTP down fails
the send and it is retried on the schedule (`now=` steps through it) until it
arrives or gives up; the mbox file of `okr dev`; Slack's JSON (text and blocks)
reaching a real HTTP receiver, through the address guard; two senders at once;
and the whole path from `notify()` through the worker's job."""

from __future__ import annotations

import asyncio
import email
import json
import mailbox
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from arq import func
from arq.connections import ArqRedis
from sqlalchemy import select

from okrgraph.domain import clock
from okrgraph.domain.config import Settings
from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import NotificationSend
from okrgraph.domain.models.enums import Channel, DeliveryStatus, NotificationKind
from okrgraph.domain.notifications import sending
from okrgraph.domain.notifications.mail import MboxMailer, SmtpMailer, mailer_from
from okrgraph.domain.notifications.notify import Note, notify
from okrgraph.domain.notifications.sending import SCHEDULE, Counts, Senders, send_due
from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.domain.webhooks.secrets import keyring
from okrgraph.worker.jobs.notifications import send_notifications, sweep_notifications
from okrgraph.worker.jobs.webhooks import http_client
from okrgraph.worker.settings import WorkerSettings
from tests.factories import make_notification_send, make_org, make_person
from tests.webhook_receiver import Receiver
from tests.worker.conftest import Committed, run_burst

FROM = "okrgraph <notify@okr.example>"


@dataclass
class MailSink:
    """An aiosmtpd handler: keeps every message it accepts."""

    envelopes: list[Envelope] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        async with self.arrived:
            self.arrived.notify_all()
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        out = []
        for e in self.envelopes:
            assert isinstance(e.content, bytes)
            parsed = email.message_from_bytes(e.content, policy=default_policy)
            assert isinstance(parsed, EmailMessage)
            out.append(parsed)
        return out

    async def until(self, count: int, within: float = 10.0) -> None:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: len(self.envelopes) >= count), within
            )


async def start_smtp(sink: MailSink, port: int = 0) -> tuple[asyncio.Server, int]:
    """A real SMTP server (aiosmtpd) in this event loop, on 127.0.0.1."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", port)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[MailSink, int]]:
    sink = MailSink()
    server, port = await start_smtp(sink)
    yield sink, port
    server.close()
    await server.wait_closed()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client() as c:
        yield c


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smtp_senders(client: httpx.AsyncClient, port: int) -> Senders:
    return Senders(client, SmtpMailer("127.0.0.1", port, tls="none", timeout_s=5), FROM)


@dataclass
class Setup:
    org_id: uuid.UUID
    person_id: uuid.UUID
    email: str
    sends: list[uuid.UUID]
    now: datetime


async def setup(
    committed: Committed,
    *,
    channel: Channel = Channel.EMAIL,
    n: int = 1,
    slack_url: str | None = None,
    allow_private: bool = True,
    **send: Any,
) -> Setup:
    now = clock.now()
    async with tenant_session(committed.sessionmaker, None) as s:
        org = await make_org(s, allow_private_webhook_urls=allow_private)
        if slack_url is not None:
            org.slack_webhook_sealed = keyring().seal(slack_url, org.id, org.id)
        person = await make_person(s, org.id, name="Ada Lovelace")
        rows = [
            await make_notification_send(
                s,
                org.id,
                person_id=person.id,
                channel=channel,
                next_attempt_at=now,
                **({"dedup_key": f"test:{i}", "subject": f"Check-in due #{i}"} | send),
            )
            for i in range(n)
        ]
    return Setup(org.id, person.id, person.email, [r.id for r in rows], now)


async def sends(committed: Committed, st: Setup) -> list[NotificationSend]:
    async with tenant_session(committed.sessionmaker, st.org_id) as s:
        rows = {r.id: r for r in await s.scalars(select(NotificationSend))}
    return [rows[i] for i in st.sends]


def parts(message: Message) -> dict[str, str]:
    """The message's text parts by content type."""
    out = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            assert isinstance(part, EmailMessage)
            out[part.get_content_type()] = str(part.get_content()).replace("\r\n", "\n")
    return out


async def test_an_email_arrives_once_with_its_plain_text_and_html_parts(
    committed: Committed, smtp: tuple[MailSink, int], client: httpx.AsyncClient
) -> None:
    sink, port = smtp
    st = await setup(
        committed,
        subject="Your key results need a check-in",
        text_body="Revenue <EUR> & churn\n\nPlease check in.",
    )
    counts = await send_due(committed.sessionmaker, st.org_id, smtp_senders(client, port), st.now)
    assert (counts.sent, counts.succeeded) == (1, 1)
    again = await send_due(committed.sessionmaker, st.org_id, smtp_senders(client, port), st.now)
    assert again == Counts()  # sent: not due again

    [envelope] = sink.envelopes
    assert envelope.rcpt_tos == [st.email]
    assert envelope.mail_from == "notify@okr.example"
    [message] = sink.messages()
    assert message["Subject"] == "Your key results need a check-in"
    assert message["To"] == f"Ada Lovelace <{st.email}>"
    assert message["From"] == FROM
    assert message["Message-ID"] == f"<notification-{st.sends[0]}@okr.example>"
    assert message.get_content_type() == "multipart/alternative"
    body = parts(message)
    assert body["text/plain"].strip() == "Revenue <EUR> & churn\n\nPlease check in."
    assert "<p>Revenue &lt;EUR&gt; &amp; churn</p><p>Please check in.</p>" in body["text/html"]
    [row] = await sends(committed, st)
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.SUCCEEDED, 1, None)
    assert row.sent_at is not None
    assert row.sent_at >= st.now


async def test_the_html_body_is_sent_as_given(
    committed: Committed, smtp: tuple[MailSink, int], client: httpx.AsyncClient
) -> None:
    sink, port = smtp
    st = await setup(committed, text_body="plain", html_body="<h1>Digest</h1>")
    await send_due(committed.sessionmaker, st.org_id, smtp_senders(client, port), st.now)
    [message] = sink.messages()
    assert parts(message) == {"text/plain": "plain\n", "text/html": "<h1>Digest</h1>\n"}


async def test_smtp_down_fails_the_send_which_is_retried_on_schedule_then_delivered(
    committed: Committed, client: httpx.AsyncClient
) -> None:
    st = await setup(committed)
    port = closed_port()
    first = await send_due(committed.sessionmaker, st.org_id, smtp_senders(client, port), st.now)
    assert (first.sent, first.failed) == (1, 1)
    [row] = await sends(committed, st)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 1)
    assert row.last_error is not None
    assert row.last_error.startswith(f"SMTP 127.0.0.1:{port}: SMTPConnectError")
    delay = row.next_attempt_at - st.now
    low, high = (
        SCHEDULE.delays[0] * (1 - SCHEDULE.jitter),
        SCHEDULE.delays[0] * (1 + SCHEDULE.jitter),
    )
    assert low <= delay <= high + timedelta(seconds=5)
    early = row.next_attempt_at - timedelta(seconds=1)
    nothing = await send_due(committed.sessionmaker, st.org_id, smtp_senders(client, port), early)
    assert nothing == Counts()  # not due yet

    sink = MailSink()
    server, _ = await start_smtp(sink, port)  # the server is back, on its port
    try:
        at = row.next_attempt_at
        done = await send_due(committed.sessionmaker, st.org_id, smtp_senders(client, port), at)
    finally:
        server.close()
        await server.wait_closed()
    assert (done.sent, done.succeeded) == (1, 1)
    assert len(sink.envelopes) == 1
    [row] = await sends(committed, st)
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.SUCCEEDED, 2, None)


async def test_a_send_gives_up_once_the_schedule_is_used_up(
    committed: Committed, client: httpx.AsyncClient
) -> None:
    st = await setup(committed)
    senders = smtp_senders(client, closed_port())
    at = st.now
    for _ in range(SCHEDULE.max_attempts - 1):
        assert (await send_due(committed.sessionmaker, st.org_id, senders, at)).failed == 1
        [row] = await sends(committed, st)
        at = row.next_attempt_at
    last = await send_due(committed.sessionmaker, st.org_id, senders, at)
    assert (last.sent, last.gave_up) == (1, 1)
    [row] = await sends(committed, st)
    assert (row.status, row.attempts) == (DeliveryStatus.GAVE_UP, SCHEDULE.max_attempts)
    later = await send_due(committed.sessionmaker, st.org_id, senders, at + timedelta(days=2))
    assert later == Counts()


async def test_with_a_mail_file_mail_is_appended_to_an_mbox(
    committed: Committed, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "dev" / "mail.mbox"
    mailer = mailer_from(Settings(mail_file=str(path)))
    assert mailer == MboxMailer(path)
    st = await setup(committed, n=2, text_body="See <this>")
    counts = await send_due(
        committed.sessionmaker, st.org_id, Senders(client, mailer, FROM), st.now
    )
    assert counts.succeeded == 2

    box = mailbox.mbox(path)
    try:
        messages = [email.message_from_bytes(m.as_bytes(), policy=default_policy) for m in box]
    finally:
        box.close()
    assert sorted(str(m["Subject"]) for m in messages) == ["Check-in due #0", "Check-in due #1"]
    for m in messages:
        assert m["To"] == f"Ada Lovelace <{st.email}>"
        assert set(parts(m)) == {"text/plain", "text/html"}
        assert "See &lt;this&gt;" in parts(m)["text/html"]


def test_smtp_wins_over_the_mail_file_and_neither_means_no_mailer() -> None:
    both = mailer_from(Settings(smtp_host="mail.example", smtp_port=2525, mail_file="/tmp/x"))
    assert isinstance(both, SmtpMailer)
    assert (both.host, both.port, both.tls) == ("mail.example", 2525, "starttls")
    assert mailer_from(Settings(smtp_host=None, mail_file=None)) is None


async def test_email_with_no_mailer_configured_gives_up_at_once(
    committed: Committed, client: httpx.AsyncClient
) -> None:
    st = await setup(committed)
    counts = await send_due(committed.sessionmaker, st.org_id, Senders(client, None, FROM), st.now)
    assert counts.gave_up == 1
    [row] = await sends(committed, st)
    assert (row.status, row.last_error) == (DeliveryStatus.GAVE_UP, sending.NO_MAILER)


async def test_a_slack_notification_posts_text_and_blocks_to_the_webhook(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(
        committed,
        channel=Channel.SLACK,
        slack_url=receiver.url_for("/services/T1/B2/secret"),
        kind=NotificationKind.KPI_CRITICAL,
        subject="Churn is CRITICAL",
        text_body="Churn is 9% (critical above 8%) <now>",
    )
    counts = await send_due(committed.sessionmaker, st.org_id, Senders(client, None, FROM), st.now)
    assert (counts.sent, counts.succeeded) == (1, 1)

    [request] = receiver.requests
    assert request.path == "/services/T1/B2/secret"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.body)
    assert body["text"] == "Churn is CRITICAL: Churn is 9% (critical above 8%) <now>"
    section, context = body["blocks"]
    assert section == {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*Churn is CRITICAL*\nChurn is 9% (critical above 8%) &lt;now&gt;",
        },
    }
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == "For Ada Lovelace · okrgraph · KPI_CRITICAL"
    [row] = await sends(committed, st)
    assert row.status is DeliveryStatus.SUCCEEDED


async def test_a_slack_webhook_failing_is_retried(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, channel=Channel.SLACK, slack_url=receiver.url)
    receiver.plan.append(500)
    senders = Senders(client, None, FROM)
    assert (await send_due(committed.sessionmaker, st.org_id, senders, st.now)).failed == 1
    [row] = await sends(committed, st)
    assert row.status is DeliveryStatus.FAILED
    assert row.last_error is not None
    assert row.last_error.startswith("Slack webhook: HTTP 500: answer 500")
    assert (
        await send_due(committed.sessionmaker, st.org_id, senders, row.next_attempt_at)
    ).succeeded == 1
    assert len(receiver.requests) == 2


async def test_a_private_slack_url_is_refused_at_send_time_unless_allowed(
    committed: Committed, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, channel=Channel.SLACK, slack_url=receiver.url, allow_private=False)
    counts = await send_due(committed.sessionmaker, st.org_id, Senders(client, None, FROM), st.now)
    assert counts.failed == 1
    assert receiver.requests == []
    [row] = await sends(committed, st)
    assert (row.status, row.last_error) == (
        DeliveryStatus.FAILED,
        "Slack webhook: address not allowed",
    )


async def test_slack_without_a_webhook_gives_up_with_the_reason(
    committed: Committed, client: httpx.AsyncClient
) -> None:
    st = await setup(committed, channel=Channel.SLACK)
    counts = await send_due(committed.sessionmaker, st.org_id, Senders(client, None, FROM), st.now)
    assert counts.gave_up == 1
    [row] = await sends(committed, st)
    assert (row.status, row.last_error) == (DeliveryStatus.GAVE_UP, "no Slack webhook configured")


async def test_two_senders_at_once_send_each_notification_once(
    committed: Committed, smtp: tuple[MailSink, int], client: httpx.AsyncClient
) -> None:
    sink, port = smtp
    st = await setup(committed, n=30)
    senders = smtp_senders(client, port)
    results = await asyncio.gather(
        *(send_due(committed.sessionmaker, st.org_id, senders, st.now, batch=5) for _ in range(2))
    )
    assert sum(c.succeeded for c in results) == 30
    subjects = sorted(str(m["Subject"]) for m in sink.messages())
    assert subjects == sorted(f"Check-in due #{i}" for i in range(30))


async def test_notify_to_the_inbox_of_an_smtp_server_through_the_worker(
    committed: Committed,
    smtp: tuple[MailSink, int],
    client: httpx.AsyncClient,
    arq_pool: ArqRedis,
) -> None:
    """notify() asks for send_notifications after commit; the worker sends it."""
    sink, port = smtp
    async with tenant_session(committed.sessionmaker, None) as s:
        org = await make_org(s)
        person = await make_person(s, org.id)
    async with unit_of_work(committed.sessionmaker, org.id, arq_pool) as s:
        note = Note(NotificationKind.CHECK_IN_DUE, "Time to check in", "Two are due.", "due:1")
        assert await notify(s, org.id, [person.id], note) == 2  # inbox + e-mail
    await run_burst(
        arq_pool,
        [func(send_notifications)],
        sessionmaker=committed.sessionmaker,
        http=client,
        mailer=SmtpMailer("127.0.0.1", port, tls="none"),
    )
    [message] = sink.messages()
    assert message["Subject"] == "Time to check in"
    assert sink.envelopes[0].rcpt_tos == [person.email]


async def test_the_sweep_enqueues_organisations_with_sends_due(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    st = await setup(committed)
    assert (
        await sweep_notifications({"sessionmaker": committed.sessionmaker, "redis": arq_pool}) >= 1
    )
    queued = await arq_pool.queued_jobs()
    assert any(
        j.function == "send_notifications" and j.kwargs["org_id"] == str(st.org_id) for j in queued
    )


def test_the_worker_runs_the_sender_and_its_sweep() -> None:
    names = {getattr(f, "name", getattr(f, "__name__", "")) for f in WorkerSettings.functions}
    assert "send_notifications" in names
    crons = {c.name for c in WorkerSettings.cron_jobs}
    assert "cron:sweep_notifications" in crons
