"""The outbox's webhooks consumer (issue 8): each committed event becomes one delivery
per enabled endpoint that asks for it, once, whoever runs the dispatch and however
often; the follow-up is asked for after commit and the relay makes up for a lost one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.db import tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import OutboxConsumed, OutboxEvent, WebhookDelivery
from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.domain.outbox.consumers import WEBHOOKS, try_lock_consumer
from okrgraph.domain.outbox.jobs import DISPATCH_EVENTS
from okrgraph.domain.outbox.retention import prune_batch
from okrgraph.domain.outbox.service import ROLLUP_RETRY, emit
from okrgraph.worker.jobs.events import dispatch_events
from okrgraph.worker.jobs.outbox import relay_events
from tests.factories import make_webhook_endpoint
from tests.worker.conftest import Committed, Company, build_company


async def _endpoints(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> dict[str, uuid.UUID]:
    async with tenant_session(sm, org) as s:
        made = {
            "all": await make_webhook_endpoint(s, org, event_types=[]),
            "kpis": await make_webhook_endpoint(s, org, event_types=["kpi.*"]),
            "check_ins": await make_webhook_endpoint(s, org, event_types=["checkin.created"]),
            "disabled": await make_webhook_endpoint(s, org, event_types=["*"], enabled=False),
            "later": await make_webhook_endpoint(
                s, org, event_types=["*"], created_at=clock.now() + timedelta(hours=1)
            ),
        }
    return {name: e.id for name, e in made.items()}


async def _deliveries(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> list[Any]:
    async with tenant_session(sm, org) as s:
        rows = await s.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.event_type, WebhookDelivery.payload)
        )
        return list(rows)


async def _company(sm: async_sessionmaker[AsyncSession]) -> Company:
    """A company whose setup events are dispatched already (before any endpoint)."""
    c = await build_company(sm)
    await dispatch_events({"sessionmaker": sm}, str(c.org_id))
    return c


async def _count(sm: async_sessionmaker[AsyncSession], org: uuid.UUID, model: Any) -> int:
    async with tenant_session(sm, org) as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_each_event_becomes_one_delivery_per_endpoint_that_asks_for_it(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    sm = committed.sessionmaker
    c = await _company(sm)
    consumed_before = await _count(sm, c.org_id, OutboxConsumed)
    endpoints = await _endpoints(sm, c.org_id)
    async with unit_of_work(sm, c.org_id, arq_pool) as session:
        check_in = await record_check_in(session, system_principal(c.org_id), c.person_krs[0], 50)
    # The follow-up was asked for after commit.
    queued = [j.function for j in await arq_pool.queued_jobs()]
    assert DISPATCH_EVENTS in queued

    ctx = {"sessionmaker": sm, "redis": arq_pool}
    # Two dispatches at once, then a third: each event is taken once.
    first, second = await asyncio.gather(
        dispatch_events(ctx, str(c.org_id)), dispatch_events(ctx, str(c.org_id))
    )
    again = await dispatch_events(ctx, str(c.org_id))
    assert first["events"] + second["events"] == 2  # checkin.created, score.changed
    assert first["notified_events"] + second["notified_events"] == 2  # the notifier too
    assert again == {"events": 0, "deliveries": 0, "notified_events": 0, "notifications": 0}

    deliveries = await _deliveries(sm, c.org_id)
    by_endpoint: dict[uuid.UUID, list[str]] = {}
    for endpoint_id, event_type, _ in deliveries:
        by_endpoint.setdefault(endpoint_id, []).append(event_type)
    assert {k: sorted(v) for k, v in by_endpoint.items()} == {
        endpoints["all"]: ["checkin.created", "score.changed"],
        endpoints["check_ins"]: ["checkin.created"],
    }
    body = next(p for e, t, p in deliveries if t == "checkin.created" and e == endpoints["all"])
    assert body["type"] == "checkin.created"
    assert body["data"]["check_in_id"] == str(check_in.id)
    assert body["data"]["subject"] == {"type": "KEY_RESULT", "id": str(c.person_krs[0])}
    assert "recalc" not in body["data"]  # the pipeline's bookkeeping stays inside
    assert await _count(sm, c.org_id, OutboxConsumed) == consumed_before + 4  # 2 consumers


async def test_a_dispatch_finding_its_consumer_busy_asks_for_the_next_window(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    """Another job of the organisation holds the webhooks consumer: this one takes
    nothing for it (no waiting on the other's rows), asks for a dispatch after
    commit, and the notifier still runs; the next dispatch takes the events."""
    sm = committed.sessionmaker
    c = await _company(sm)
    async with tenant_session(sm, c.org_id) as s:
        await record_check_in(s, system_principal(c.org_id), c.person_krs[0], 50)
    ctx = {"sessionmaker": sm, "redis": arq_pool}
    async with tenant_session(sm, c.org_id) as holder:
        assert await try_lock_consumer(holder, c.org_id, WEBHOOKS)
        done = await asyncio.wait_for(dispatch_events(ctx, str(c.org_id)), 10)
    assert (done["events"], done["notified_events"]) == (0, 2)
    jobs = [j for j in await arq_pool.queued_jobs() if j.function == DISPATCH_EVENTS]
    assert [j.kwargs["org_id"] for j in jobs] == [str(c.org_id)]
    again = await dispatch_events(ctx, str(c.org_id))
    assert (again["events"], again["notified_events"]) == (2, 0)


async def test_internal_events_are_never_dispatched(committed: Committed) -> None:
    sm = committed.sessionmaker
    c = await _company(sm)
    await _endpoints(sm, c.org_id)
    async with tenant_session(sm, c.org_id) as s:
        await emit(s, org_id=c.org_id, type=ROLLUP_RETRY, payload={"recalc": {}})
    done = await dispatch_events({"sessionmaker": sm}, str(c.org_id))
    assert done == {"events": 0, "deliveries": 0, "notified_events": 0, "notifications": 0}


async def test_the_relay_dispatches_what_no_follow_up_asked_for(
    committed: Committed, arq_pool: ArqRedis
) -> None:
    sm = committed.sessionmaker
    c = await _company(sm)
    async with tenant_session(sm, c.org_id) as s:  # no after-commit drain: as if Redis was down
        await record_check_in(s, system_principal(c.org_id), c.person_krs[0], 50)
    ctx = {"sessionmaker": sm, "redis": arq_pool, "stale_after": timedelta(0)}
    assert await relay_events(ctx) == 1
    jobs = [j for j in await arq_pool.queued_jobs() if j.function == DISPATCH_EVENTS]
    assert [j.kwargs["org_id"] for j in jobs] == [str(c.org_id)]
    await dispatch_events(ctx, str(c.org_id))
    assert await relay_events(ctx) == 0


async def test_retention_keeps_what_the_dispatcher_has_not_taken(committed: Committed) -> None:
    sm = committed.sessionmaker
    c = await _company(sm)
    later = clock.now() + timedelta(days=30)
    async with tenant_session(sm, c.org_id) as s:
        await prune_batch(s, c.org_id, later)  # the setup's events (pending roll-ups stay)
    kept = await _count(sm, c.org_id, OutboxEvent)
    consumed = await _count(sm, c.org_id, OutboxConsumed)
    async with tenant_session(sm, c.org_id) as s:
        await emit(s, org_id=c.org_id, type="objective.changed", payload={})
    async with tenant_session(sm, c.org_id) as s:
        assert await prune_batch(s, c.org_id, later) == 0  # not dispatched yet: kept
    await dispatch_events({"sessionmaker": sm}, str(c.org_id))
    assert await _count(sm, c.org_id, OutboxConsumed) == consumed + 2  # webhooks, notifier
    async with tenant_session(sm, c.org_id) as s:
        assert await prune_batch(s, c.org_id, later) == 1  # taken, no delivery: pruned
    assert await _count(sm, c.org_id, OutboxEvent) == kept
    assert await _count(sm, c.org_id, OutboxConsumed) == consumed  # gone with its event
