"""E-mail notifications: the message, and where it goes.

A message is multipart/alternative: the plain text and an HTML part (the send's
`html_body`, or its text escaped into paragraphs). Its Message-ID is derived from
the send's id, so a retried send that did reach the server the first time is the
same message to anyone who dedupes by it.

Where it goes (settings in config.py): `OKR_SMTP_HOST` set: over SMTP with
aiosmtplib (`OKR_SMTP_TLS` starttls, tls or none; a login when
`OKR_SMTP_USERNAME` is set); otherwise `OKR_MAIL_FILE` set: appended to that mbox
file (`okr dev`: nothing leaves the machine, any mail reader opens it); neither:
no mailer, and e-mail sends give up (sending.py).
"""

from __future__ import annotations

import asyncio
import html
import mailbox
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from okrgraph.domain.config import Settings

SMTP_TIMEOUT_S = 30.0
SMTP_CONNECTIONS = 4  # at once per worker: a batch does not open twenty


class MailNotSent(Exception):
    """The message could not be handed on (the send is retried)."""


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Hand the message on; `MailNotSent` when it could not be."""
        ...


@dataclass(frozen=True)
class Mail:
    send_id: uuid.UUID
    to: str
    subject: str
    text: str
    html: str = ""


def html_of(text: str) -> str:
    """The plain text as HTML: escaped, a paragraph per blank-line-separated block."""
    paragraphs = (p for p in text.split("\n\n") if p.strip())
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f"<!DOCTYPE html><html><body>{body}</body></html>"


def build_message(mail: Mail, sender: str, at: datetime) -> EmailMessage:
    """The e-mail for one send, from `sender` (`OKR_SMTP_FROM`), dated `at`."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(at)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "okrgraph"
    message["Message-ID"] = f"<notification-{mail.send_id}@{domain}>"
    message.set_content(mail.text)
    message.add_alternative(mail.html or html_of(mail.text), subtype="html")
    return message


@dataclass
class SmtpMailer:
    host: str
    port: int
    tls: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_s: float = SMTP_TIMEOUT_S
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SMTP_CONNECTIONS))

    async def send(self, message: EmailMessage) -> None:
        async with self._slots:
            try:
                await aiosmtplib.send(
                    message,
                    hostname=self.host,
                    port=self.port,
                    username=self.username,
                    password=self.password,
                    use_tls=self.tls == "tls",
                    start_tls=self.tls == "starttls",
                    timeout=self.timeout_s,
                )
            except (aiosmtplib.SMTPException, OSError) as exc:
                detail = f"{type(exc).__name__}: {exc}"
                raise MailNotSent(f"SMTP {self.host}:{self.port}: {detail}") from exc


@dataclass(frozen=True)
class MboxMailer:
    """Appends to an mbox file: one append at a time in this process, and the file
    locked (another process holding it fails the send, which is retried)."""

    path: Path
    _appending: threading.Lock = field(default_factory=threading.Lock, compare=False)

    async def send(self, message: EmailMessage) -> None:
        try:
            await asyncio.to_thread(self._append, message)
        except (OSError, mailbox.Error) as exc:
            raise MailNotSent(f"mail file {self.path}: {exc}") from exc

    def _append(self, message: EmailMessage) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._appending:
            box = mailbox.mbox(self.path)
            box.lock()
            try:
                box.add(message)
                box.flush()
            finally:
                box.unlock()
                box.close()


def mailer_from(cfg: Settings) -> Mailer | None:
    """The mailer the settings describe; None when e-mail is not configured."""
    if cfg.smtp_host:
        return SmtpMailer(
            host=cfg.smtp_host,
            port=cfg.smtp_port,
            tls=cfg.smtp_tls,
            username=cfg.smtp_username,
            password=cfg.smtp_password.get_secret_value() if cfg.smtp_password else None,
        )
    if cfg.mail_file:
        return MboxMailer(Path(cfg.mail_file).expanduser())
    return None


def address_of(name: str, email: str) -> str:
    """`Name <email>`, quoted and encoded as the name needs."""
    return formataddr((name, email))
