"""Webhook jobs: `deliver_webhooks` sends an organisation's due deliveries
(domain/webhooks/delivery.py), and the `sweep_webhooks` cron enqueues it for every
organisation with deliveries due, so retries go out on time and a job lost with
Redis is made up by the next sweep. Both share the worker's one HTTP client
(`ctx["http"]`, made at startup)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from okrgraph.domain import clock
from okrgraph.domain.outbox.jobs import Delivery
from okrgraph.domain.webhooks.delivery import SEND_TIMEOUT_S, deliver_due, orgs_with_due_deliveries


def http_client() -> httpx.AsyncClient:
    """The worker's client for webhook receivers: no redirects followed, no proxy
    from the environment (the sender connects to the address it checked)."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=SEND_TIMEOUT_S,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


async def deliver_webhooks(ctx: dict[str, Any], org_id: str) -> dict[str, int]:
    """Send the organisation's due webhook deliveries; how many, by outcome."""
    counts = await deliver_due(
        ctx["sessionmaker"], uuid.UUID(str(org_id)), ctx["http"], queue=ctx.get("redis")
    )
    return {
        "sent": counts.sent,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "gave_up": counts.gave_up,
        "disabled": len(counts.disabled),
    }


async def sweep_webhooks(ctx: dict[str, Any]) -> int:
    """Enqueue `deliver_webhooks` for each organisation with deliveries due; how many."""
    async with ctx["sessionmaker"]() as session, session.begin():
        orgs = await orgs_with_due_deliveries(session, clock.now())
    for org in orgs:
        name, kwargs = Delivery(org).job()
        await ctx["redis"].enqueue_job(name, **kwargs)
    return len(orgs)
