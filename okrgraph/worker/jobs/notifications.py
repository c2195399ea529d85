"""Notification sending jobs: `send_notifications` sends an organisation's due e-mail
and Slack sends (domain/notifications/sending.py), and the `sweep_notifications`
cron enqueues it for every organisation with sends due, so retries go out on time
and a job lost with Redis is made up by the next sweep. They use the worker's HTTP
client (`ctx["http"]`) and mailer (`ctx["mailer"]`, from the settings), both made
at startup."""

from __future__ import annotations

import uuid
from typing import Any

from okrgraph.domain import clock
from okrgraph.domain.config import settings
from okrgraph.domain.notifications.sending import Senders, orgs_with_due_sends, send_due
from okrgraph.domain.outbox.jobs import Sending


async def send_notifications(ctx: dict[str, Any], org_id: str) -> dict[str, int]:
    """Send the organisation's due notification sends; how many, by outcome."""
    senders = Senders(http=ctx["http"], mailer=ctx.get("mailer"), mail_from=settings.smtp_from)
    counts = await send_due(ctx["sessionmaker"], uuid.UUID(str(org_id)), senders)
    return {
        "sent": counts.sent,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "gave_up": counts.gave_up,
    }


async def sweep_notifications(ctx: dict[str, Any]) -> int:
    """Enqueue `send_notifications` for each organisation with sends due; how many."""
    async with ctx["sessionmaker"]() as session, session.begin():
        orgs = await orgs_with_due_sends(session, clock.now())
    for org in orgs:
        name, kwargs = Sending(org).job()
        await ctx["redis"].enqueue_job(name, **kwargs)
    return len(orgs)
