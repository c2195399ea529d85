"""progressChanged relays the worker's committed score changes from Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.live import progress_channel
from okrgraph.domain.models.enums import OrgRole
from okrgraph.schema import schema
from okrgraph.schema.context import Context
from okrgraph.schema.node import to_global_id

SUBSCRIBE = """subscription($ids: [ID!]) {
  progressChanged(ids: $ids) { id subjectType value status previousValue previousStatus }
}"""


def change(kind: str, id: uuid.UUID, value: float) -> dict[str, Any]:
    return {"subjectType": kind, "id": str(id), "value": value, "status": "ON_TRACK",
            "previousValue": 0.1, "previousStatus": "AT_RISK"}  # fmt: skip


async def subscribed(client: aioredis.Redis, channel: str) -> None:
    """Returns once the subscription's Redis listener is in place."""
    for _ in range(500):
        if dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0) >= 1:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscription never subscribed")


async def test_progress_changes_reach_the_subscriber(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    org, wanted, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    principal = Principal(
        org_id=org, token_id=uuid.uuid4(), scopes=frozenset({"read"}),
        person_id=uuid.uuid4(), org_role=OrgRole.MEMBER,
    )  # fmt: skip
    ctx = Context(request=None, sessionmaker=sessionmaker, principal=principal, queue=redis_client)
    wanted_id = to_global_id("Objective", wanted)
    stream = await schema.subscribe(
        SUBSCRIBE, context_value=ctx, variable_values={"ids": [wanted_id]}
    )
    first = asyncio.ensure_future(stream.__anext__())  # type: ignore[union-attr]
    channel = progress_channel(org)
    await subscribed(redis_client, channel)
    # another organisation's channel and an unwanted id are not relayed
    await redis_client.publish(progress_channel(uuid.uuid4()), json.dumps(
        {"changes": [change("OBJECTIVE", wanted, 0.9)]}))  # fmt: skip
    message = {"changes": [change("KEY_RESULT", other, 0.2), change("OBJECTIVE", wanted, 0.75)]}
    await redis_client.publish(channel, json.dumps(message))
    result = await asyncio.wait_for(first, 5)
    assert result.errors is None
    assert result.data == {
        "progressChanged": {
            "id": wanted_id, "subjectType": "Objective", "value": 0.75, "status": "ON_TRACK",
            "previousValue": 0.1, "previousStatus": "AT_RISK",
        }
    }  # fmt: skip
    await stream.aclose()  # type: ignore[union-attr]


async def test_anonymous_subscription_is_refused(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ctx = Context(request=None, sessionmaker=sessionmaker, principal=None, queue=redis_client)
    stream = await schema.subscribe(SUBSCRIBE, context_value=ctx)
    result = await stream.__anext__()  # type: ignore[union-attr]
    assert result.errors[0].extensions["code"] == "UNAUTHENTICATED"
