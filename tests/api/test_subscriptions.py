"""progressChanged relays the worker's committed score changes from Redis: in
process through `schema.subscribe`, and over a real websocket (graphql-transport-ws)
to the app under uvicorn."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.exceptions import ConnectionClosed

from okrgraph.api.app import create_app
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.live import LiveHub, progress_channel
from okrgraph.domain.models.enums import OrgRole
from okrgraph.schema import schema
from okrgraph.schema.context import Context
from okrgraph.schema.node import to_global_id
from tests.factories import make_org, make_token
from tests.ws import graphql_ws, received, serving, subscribed

SUBSCRIBE = """subscription($ids: [ID!]) {
  progressChanged(ids: $ids) { id subjectType value status previousValue previousStatus }
}"""


def change(kind: str, id: uuid.UUID, value: float) -> dict[str, Any]:
    return {"subjectType": kind, "id": str(id), "value": value, "status": "ON_TRACK",
            "previousValue": 0.1, "previousStatus": "AT_RISK"}  # fmt: skip


async def test_progress_changes_reach_the_subscriber(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    org, wanted, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    principal = Principal(
        org_id=org, token_id=uuid.uuid4(), scopes=frozenset({"read"}),
        person_id=uuid.uuid4(), org_role=OrgRole.MEMBER,
    )  # fmt: skip
    live = LiveHub(redis_client)
    ctx = Context(request=None, sessionmaker=sessionmaker, principal=principal, live=live)
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
    await live.aclose()


async def test_anonymous_subscription_is_refused(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ctx = Context(
        request=None, sessionmaker=sessionmaker, principal=None, live=LiveHub(redis_client)
    )
    stream = await schema.subscribe(SUBSCRIBE, context_value=ctx)
    result = await stream.__anext__()  # type: ignore[union-attr]
    assert result.errors[0].extensions["code"] == "UNAUTHENTICATED"


# --- over a real websocket ----------------------------------------------------------


async def test_progress_changes_reach_a_websocket_client(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    db: AsyncSession,
) -> None:
    org = await make_org(db)
    _, token = await make_token(db, org.id, scopes=["read"])
    wanted = uuid.uuid4()
    wanted_id = to_global_id("Objective", wanted)
    subscribe = {"query": SUBSCRIBE, "variables": {"ids": [wanted_id]}}
    app = create_app(sessionmaker=sessionmaker, queue=redis_client)
    async with (
        serving(app) as url,
        graphql_ws(url, {"Authorization": f"Bearer {token}"}) as ws,
    ):
        assert await received(ws) == {"type": "connection_ack"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        channel = progress_channel(org.id)
        await subscribed(redis_client, channel)
        changes = [change("KEY_RESULT", uuid.uuid4(), 0.2), change("OBJECTIVE", wanted, 0.75)]
        await redis_client.publish(channel, json.dumps({"changes": changes}))
        assert await received(ws) == {
            "id": "1",
            "type": "next",
            "payload": {"data": {"progressChanged": {
                "id": wanted_id, "subjectType": "Objective", "value": 0.75, "status": "ON_TRACK",
                "previousValue": 0.1, "previousStatus": "AT_RISK",
            }}},
        }  # fmt: skip


@pytest.mark.parametrize(
    "init_payload",
    [{"Authorization": "Bearer okr_not_a_real_token"}, {}],
    ids=["bad token", "no token"],
)
async def test_websocket_connection_without_a_valid_token_is_refused(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    init_payload: dict[str, str],
) -> None:
    app = create_app(sessionmaker=sessionmaker, queue=redis_client)
    async with serving(app) as url, graphql_ws(url, init_payload) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await received(ws)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "Forbidden")
