"""Every committed score change of a key result or an objective is announced exactly
once on the organisation's progress channel, whoever wrote it: a check-in writes its
key result's score itself (the roll-up then finds it current), the roll-up writes the
ancestors, a full pass consumes pending check-ins and announces them too."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.db import tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.messages import ProgressChanged, progress_channel
from okrgraph.worker.jobs.scores import full_recalculation, recalculate_scores
from tests.worker.conftest import Committed, build_company


@pytest.fixture
async def redis(worker_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(worker_redis_url)
    yield client
    await client.aclose()


async def announced(pubsub: Any, expect: int) -> Counter[uuid.UUID]:
    """The subjects of the next `expect` messages, counted; then no further message."""
    seen: Counter[uuid.UUID] = Counter()
    got = 0
    while got < expect:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None, f"{got} of {expect} messages arrived"
        got += 1
        seen.update(c.subject_id for c in ProgressChanged.decode(message["data"]).changes)
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    return seen


async def test_a_check_in_announces_its_key_result_once_with_its_ancestors(
    committed: Committed, redis: aioredis.Redis
) -> None:
    sm = committed.sessionmaker
    c = await build_company(sm)
    pubsub = redis.pubsub()
    await pubsub.subscribe(progress_channel(c.org_id))
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    ctx = {"sessionmaker": sm, "redis": redis}

    async with tenant_session(sm, c.org_id) as session:
        await record_check_in(
            session, principal=system_principal(c.org_id), key_result_id=c.person_krs[0], value=50
        )
    await recalculate_scores(ctx, str(c.org_id))
    seen = await announced(pubsub, 1)
    assert seen[c.person_krs[0]] == 1, "the key result the check-in moved was not announced"
    assert seen[c.person] == seen[c.team] == seen[c.company] == 1
    assert set(seen) == {c.person_krs[0], c.person, c.team, c.company}

    # Nothing left to announce: a second job and a full pass say nothing.
    await recalculate_scores(ctx, str(c.org_id))
    await full_recalculation(ctx, str(c.org_id))
    assert await announced(pubsub, 0) == Counter()

    # A full pass that consumes a pending check-in announces its key result too, once.
    async with tenant_session(sm, c.org_id) as session:
        await record_check_in(
            session, principal=system_principal(c.org_id), key_result_id=c.team_kr, value=20
        )
    await full_recalculation(ctx, str(c.org_id))
    await recalculate_scores(ctx, str(c.org_id))
    seen = await announced(pubsub, 1)
    assert seen == Counter({c.team_kr: 1, c.team: 1, c.company: 1})
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_two_check_ins_in_one_job_are_two_announced_changes(
    committed: Committed, redis: aioredis.Redis
) -> None:
    """Each committed value was current for a while: both changes are announced."""
    sm = committed.sessionmaker
    c = await build_company(sm)
    pubsub = redis.pubsub()
    await pubsub.subscribe(progress_channel(c.org_id))
    await pubsub.get_message(timeout=1)
    for value in (30, 60):
        async with tenant_session(sm, c.org_id) as session:
            await record_check_in(
                session,
                principal=system_principal(c.org_id),
                key_result_id=c.person_krs[1],
                value=value,
            )
    await recalculate_scores({"sessionmaker": sm, "redis": redis}, str(c.org_id))
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    assert message is not None
    changes = [
        c2 for c2 in ProgressChanged.decode(message["data"]).changes
        if c2.subject_id == c.person_krs[1]
    ]  # fmt: skip
    assert [(x.previous_value, x.value) for x in changes] == [(0.0, 0.3), (0.3, 0.6)]
    await pubsub.aclose()  # type: ignore[no-untyped-call]
