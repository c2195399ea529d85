"""Issue 12, finding 2: one row cannot stop the organisation's roll-up.

A real `okr worker` process rolls up check-ins while two key results hold data
stored past the input checks (written as the owner, like rows from before the
bounds): one spans -1e308..1e308 (whose arithmetic overflowed), and one no
statement can update (a trigger raises "value out of range", standing for any
row that still cannot be computed). Every other check-in converges; the
poisoned one is set aside, recorded and logged in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from okrgraph.domain.db import async_url, tenant_session
from okrgraph.domain.messages import progress_channel
from okrgraph.domain.models import KeyResult, OutboxEvent
from okrgraph.domain.models.enums import SubjectType
from okrgraph.domain.outbox.jobs import recalculation_job
from okrgraph.domain.scores.requests import request_recalculation
from tests.worker.conftest import Committed, build_company
from tests.worker.test_jobs import check_in, count, pending, progress
from tests.worker.test_processes import next_change, processes  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e

_POISON = (
    """CREATE FUNCTION okr_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = 'value out of range: overflow';
    END $$""",
    """CREATE TRIGGER okr_test_poison BEFORE UPDATE ON key_results
    FOR EACH ROW WHEN (NEW.id = '{kr}') EXECUTE FUNCTION okr_test_poison()""",
)


async def test_a_poisoned_subject_is_set_aside_and_the_rest_converges(
    committed: Committed,
    worker_redis_url: str,
    processes: Callable[..., Any],  # noqa: F811
    arq_pool: Any,
    tmp_path: Path,
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm, person_krs=3)
    wide, poisoned, plain = c.person_krs
    owner = create_async_engine(async_url(committed.url))
    redis = aioredis.Redis.from_url(worker_redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(progress_channel(c.org_id))
    try:
        async with owner.begin() as conn:  # old data: no input check saw it
            await conn.execute(
                text(
                    "UPDATE key_results SET start_value = -1e308, target_value = 1e308"
                    " WHERE id = :id"
                ),
                {"id": wide},
            )
        for kr, value in [
            (wide, 0),
            (poisoned, 80),
            (plain, 40),
            (c.team_kr, 50),
            (c.company_kr, 20),
        ]:
            await check_in(sm, c.org_id, kr, value)
        async with owner.begin() as conn:
            # The roll-up must write the poisoned KR again, and cannot.
            await conn.execute(
                text("UPDATE key_results SET score = 0, current_value = NULL WHERE id = :id"),
                {"id": poisoned},
            )
            for statement in _POISON:
                await conn.execute(text(statement.format(kr=poisoned)))
        async with tenant_session(sm, c.org_id) as session:
            # A check-in's roll-up starts at the objective (the write scored its key
            # result); a change of the key result itself names it, as an edit does.
            row = (
                await session.execute(select(KeyResult).where(KeyResult.id == poisoned))
            ).scalar_one()
            await request_recalculation(
                session,
                c.org_id,
                row,
                type="key_result.updated",
                subject_type=SubjectType.KEY_RESULT,
                subject_id=poisoned,
                changed=["target_value"],
            )

        processes(["worker"], committed.url, worker_redis_url)
        name, kwargs = recalculation_job(c.org_id)
        await arq_pool.enqueue_job(name, **kwargs)
        change = await next_change(pubsub, c.company)

        # person = mean(0.5, 0 (set aside), 0.4); team = (0.5 + person) / 2;
        # company = (0.2 + 2 team + person) / 4
        assert change["value"] == pytest.approx(0.325)
        assert await progress(sm, c.org_id, c.person) == pytest.approx(0.3)
        assert await progress(sm, c.org_id, c.team) == pytest.approx(0.4)
        assert await count(sm, c.org_id, pending()) == 0
        async with tenant_session(sm, c.org_id) as session:
            rows = await session.execute(select(KeyResult.id, KeyResult.score))
            scores = {r.id: r.score for r in rows}
            failed = (
                await session.execute(
                    select(OutboxEvent.subject_id, OutboxEvent.failure).where(
                        OutboxEvent.failed_at.is_not(None)
                    )
                )
            ).all()
        assert scores[wide] == 0.5  # -1e308..1e308 at 0: half way, no overflow
        assert scores[plain] == pytest.approx(0.4)
        assert scores[poisoned] == 0  # left as it was
        assert [(s, str(poisoned) in (f or "")) for s, f in failed] == [(poisoned, True)]
        assert "value out of range" in (failed[0][1] or "")
        log = (tmp_path / "worker.log").read_text()
        lines = [line for line in log.splitlines() if "set aside" in line]
        assert len(lines) == 1
        assert str(poisoned) in lines[0]
        assert "UPDATE key_results" not in log  # no SQL dump
    finally:
        await pubsub.aclose()
        await redis.aclose()
        await owner.dispose()
