"""The outbox retention sweep, run as a real arq job: old events no consumer
needs are deleted (unconsumed kinds such as `score.changed` and `cycle.closed`,
processed and set-aside recalculation events), in every organisation and in
batches; pending recalculation events, events a webhook delivery names, events
a registered consumer still needs and recent events all stay."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from arq import func
from arq.connections import ArqRedis
from sqlalchemy import select

from okrgraph.domain.db import tenant_session
from okrgraph.domain.models import OutboxEvent
from okrgraph.domain.outbox import retention
from okrgraph.worker.jobs.retention import prune_outbox
from okrgraph.worker.settings import WorkerSettings
from tests.factories import (
    make_org,
    make_outbox_consumed,
    make_outbox_event,
    make_webhook_delivery,
)
from tests.worker.conftest import Committed, run_burst

RETENTION_H = 24.0


@pytest.fixture
def custom_consumer() -> Iterator[retention.Consumer]:
    """A later consumer (as issue 8's will be) that still needs `custom.*` events."""
    consumer = retention.Consumer("test-custom", "e.type LIKE 'custom.%'")
    retention.register_consumer(consumer)
    yield consumer
    retention._consumers.pop(consumer.name)


async def run_prune(pool: ArqRedis, committed: Committed, batch: int) -> int:
    job = await pool.enqueue_job("prune_outbox")
    assert job is not None
    await run_burst(
        pool,
        [func(prune_outbox, name="prune_outbox")],
        sessionmaker=committed.sessionmaker,
        outbox_retention_hours=RETENTION_H,
        outbox_prune_batch=batch,
    )
    return int(await job.result(timeout=5))


def test_the_sweep_is_a_cron_of_the_worker() -> None:
    names = [c.name for c in WorkerSettings.cron_jobs]
    assert any("prune_outbox" in n for n in names), names


async def test_a_real_job_prunes_only_what_no_consumer_needs(
    committed: Committed, arq_pool: ArqRedis, custom_consumer: retention.Consumer
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(hours=RETENTION_H + 1)
    recent = now - timedelta(hours=RETENTION_H - 1)
    kept: dict[uuid.UUID, set[str]] = {}
    gone: dict[uuid.UUID, set[str]] = {}
    recalc = {"recalc": {"key_results": [str(uuid.uuid4())]}}
    for _ in range(2):  # every organisation is swept
        async with tenant_session(committed.sessionmaker, None) as s:
            org = await make_org(s)

            async def event(
                label: str, org_id: uuid.UUID = org.id, dispatched: bool = True, **fields: object
            ) -> str:
                e = await make_outbox_event(s, org_id, **fields)
                if dispatched:  # the webhook dispatcher and the notifier have taken it
                    for consumer in ("webhooks", "notifier"):
                        await make_outbox_consumed(s, org_id, event_id=e.id, consumer=consumer)
                return f"{label}:{e.id}"

            doomed = {
                await event("score.changed", type="score.changed", created_at=old),
                await event("cycle.closed", type="cycle.closed", created_at=old),
                await event(
                    "processed recalc",
                    type="checkin.created",
                    payload=recalc,
                    created_at=old,
                    processed_at=old,
                ),
                await event(
                    "set-aside recalc",
                    type="checkin.created",
                    payload=recalc,
                    created_at=old,
                    processed_at=old,
                    failed_at=old,
                    failure="boom",
                ),
            }
            doomed |= {
                await event(f"old {i}", type="kpi.measured", created_at=old) for i in range(7)
            }
            staying = {
                await event(
                    "pending recalc", type="checkin.created", payload=recalc, created_at=old
                ),
                await event("recent", type="score.changed", created_at=recent),
                await event("custom consumer's", type="custom.thing", created_at=old),
                await event(
                    "not dispatched", type="kpi.measured", created_at=old, dispatched=False
                ),
            }
            delivered = await make_outbox_event(s, org.id, type="objective.updated", created_at=old)
            await make_webhook_delivery(s, org.id, event_id=delivered.id)
            staying.add(f"has a delivery:{delivered.id}")
            unnotified = await make_outbox_event(s, org.id, type="kpi.measured", created_at=old)
            await make_outbox_consumed(s, org.id, event_id=unnotified.id, consumer="webhooks")
            staying.add(f"not taken by the notifier:{unnotified.id}")
        kept[org.id], gone[org.id] = staying, doomed

    # Batches of 3: eleven prunable events per organisation take several statements.
    pruned = await run_prune(arq_pool, committed, batch=3)
    assert pruned == sum(len(v) for v in gone.values())

    for org_id in kept:
        async with tenant_session(committed.sessionmaker, org_id) as s:
            left = set((await s.execute(select(OutboxEvent.id))).scalars())
        assert left == {uuid.UUID(x.split(":")[1]) for x in kept[org_id]}, kept[org_id]

    # Once the consumer is done (it no longer needs the event), the next run prunes it.
    retention._consumers.pop(custom_consumer.name)
    retention.register_consumer(retention.Consumer(custom_consumer.name, "false"))
    assert await run_prune(arq_pool, committed, batch=3) == 2  # one per organisation
    assert await run_prune(arq_pool, committed, batch=3) == 0  # a second run: nothing
