"""A real server and a real websocket client for tests: the app under uvicorn in
the test's event loop, graphql-transport-ws connections to it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from okrgraph.embedded import free_port


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """The app under a real uvicorn server in this event loop; yields its websocket URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    serve = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or serve.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await serve  # raises what made a failed start fail


@asynccontextmanager
async def graphql_ws(
    url: str, init_payload: dict[str, str], headers: dict[str, str] | None = None
) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection that has sent its connection_init."""
    # max_queue=None: a test that leaves messages unread must not stall the close handshake
    async with connect(
        url,
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers=headers,
        max_queue=None,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": init_payload}))
        yield ws


@asynccontextmanager
async def acknowledged(url: str, token: str) -> AsyncIterator[ClientConnection]:
    """A connection authenticated in connection_init and acknowledged."""
    async with graphql_ws(url, {"Authorization": f"Bearer {token}"}) as ws:
        assert await received(ws) == {"type": "connection_ack"}
        yield ws


async def received(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return message


async def send(ws: ClientConnection, op_id: str, query: str, **variables: Any) -> None:
    """Start an operation (query, mutation or subscription) on the socket."""
    payload = {"query": query, "variables": variables}
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))


async def subscribed(client: aioredis.Redis, channel: str, count: int = 1) -> None:
    """Returns once `count` Redis listeners are on the channel."""
    for _ in range(500):
        if dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscription never subscribed")
