"""organizationEvents: the organisation's committed events, live, over a real websocket
(graphql-transport-ws against uvicorn). A check-in is made over HTTP, the webhook
dispatcher's job claims its events and publishes them after its commit, and the
subscription relays the ones it asked for, with the `data` webhooks get; other
organisations' events never arrive, and a revoked token's stream ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from arq import create_pool, func
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection

from okrgraph.api.app import create_app
from okrgraph.domain.db import tenant_session
from okrgraph.domain.messages import (
    EventsRecorded,
    ProgressChanged,
    RecordedEvent,
    decode_org_message,
    events_channel,
    progress_channel,
)
from okrgraph.domain.models import WebhookDelivery
from okrgraph.domain.models.enums import OrgRole, SubjectType
from okrgraph.schema.node import to_global_id
from okrgraph.worker.jobs.events import dispatch_events
from okrgraph.worker.jobs.scores import recalculate_scores
from okrgraph.worker.settings import POLL_DELAY_S
from tests.factories import (
    make_key_result,
    make_org,
    make_person,
    make_token,
    make_webhook_endpoint,
)
from tests.gql import data
from tests.ws import acknowledged, received, send, serving

SUBSCRIBE = """subscription($types: [String!]) {
  organizationEvents(types: $types) { id type occurredAt subjectType subjectId data }
}"""
CHECK_IN = """mutation($kr: ID!, $value: Float!) {
  checkIn(input: {keyResultId: $kr, value: $value}) { __typename }
}"""
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }"


@dataclass
class Org:
    id: uuid.UUID
    writer: str  # owns the key result: checks in over HTTP
    reader: str  # a read-only token, which subscribes
    reader_id: uuid.UUID
    admin: str  # revokes the reader
    kr_id: uuid.UUID


@dataclass
class Live:
    """The app under uvicorn, an HTTP client to it, and the worker's dispatch job."""

    app: Starlette
    url: str
    http: httpx.AsyncClient
    sm: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis

    async def check_in(self, org: Org, value: float) -> None:
        kr = to_global_id("KeyResult", org.kr_id)
        result = await data(self.http, org.writer, CHECK_IN, kr=kr, value=value)
        assert result["checkIn"]["__typename"] == "CheckInSuccess"

    async def dispatch(self, org: Org) -> None:
        """The worker's job: claims the events, publishes them after its commit."""
        await dispatch_events({"sessionmaker": self.sm, "redis": self.redis}, str(org.id))

    async def listening(self, org: Org, count: int) -> None:
        """Returns once `count` subscriptions of the org's event stream are in place."""
        channel = events_channel(org.id)
        for _ in range(500):
            if len(self.app.state.live.subscribers.get(channel, ())) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the subscriptions never registered")


async def new_org(live: Live, *, endpoint: bool = True) -> Org:
    org_id = uuid.uuid4()
    async with tenant_session(live.sm, org_id) as session:
        await make_org(session, id=org_id)
        owner = await make_person(session, org_id)
        _, writer = await make_token(session, org_id, person_id=owner.id)
        reader_row, reader = await make_token(session, org_id, scopes=["read"])
        _, admin = await make_token(
            session, org_id, scopes=["read", "write", "admin"], role=OrgRole.ADMIN
        )
        kr = await make_key_result(session, org_id, owner_person_id=owner.id)
        if endpoint:  # a webhook's body to compare with
            await make_webhook_endpoint(session, org_id, event_types=["*"])
    org = Org(org_id, writer, reader, reader_row.id, admin, kr.id)
    await live.dispatch(org)  # the setup's events are history, not news
    return org


@pytest.fixture
async def live(
    committed: async_sessionmaker[AsyncSession], redis_client: aioredis.Redis
) -> AsyncIterator[Live]:
    app = create_app(sessionmaker=committed, queue=redis_client)
    async with serving(app) as url:
        base = url.replace("ws://", "http://").removesuffix("/graphql")
        async with httpx.AsyncClient(base_url=base) as http:
            yield Live(app, url, http, committed, redis_client)


async def event(ws: ClientConnection, op_id: str) -> dict[str, Any]:
    message = await received(ws)
    assert (message["id"], message["type"]) == (op_id, "next"), message
    assert "errors" not in message["payload"], message
    result: dict[str, Any] = message["payload"]["data"]["organizationEvents"]
    return result


async def ended_with(ws: ClientConnection, op_id: str) -> str:
    """The code of the error that ended operation `op_id`."""
    message = await received(ws)
    assert message["id"] == op_id, message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    return str(errors[0]["extensions"]["code"])


async def webhook_body(live: Live, org: Org, event_id: str) -> dict[str, Any]:
    async with tenant_session(live.sm, org.id) as session:
        query = select(WebhookDelivery.payload).where(
            WebhookDelivery.event_id == uuid.UUID(event_id)
        )
        body: dict[str, Any] = (await session.execute(query)).scalar_one()
    return body


async def test_a_check_in_reaches_the_subscribers_that_asked_for_its_type(live: Live) -> None:
    org = await new_org(live)
    async with (
        acknowledged(live.url, org.reader) as filtered,
        acknowledged(live.url, org.reader) as everything,
    ):
        await send(filtered, "check-ins", SUBSCRIBE, types=["checkin.*"])
        await send(everything, "all", SUBSCRIBE)
        await live.listening(org, 2)
        await live.check_in(org, 40)
        await live.dispatch(org)

        got = await event(filtered, "check-ins")
        assert got["type"] == "checkin.created"
        assert got["subjectType"] == "KEY_RESULT"
        assert got["subjectId"] == to_global_id("KeyResult", org.kr_id)
        # `data` is exactly a webhook's, `id` its webhook-id (the delivery's event)
        body = await webhook_body(live, org, got["id"])
        assert json.loads(got["data"]) == body["data"]
        assert datetime.fromisoformat(got["occurredAt"]) == datetime.fromisoformat(
            body["timestamp"]
        )
        assert json.loads(got["data"])["value"] == 40

        # the unfiltered stream has the same check-in and the score change it made (one
        # transaction's events share their time: their order is the claim's, by id)
        both = [await event(everything, "all") for _ in range(2)]
        assert {e["type"] for e in both} == {"checkin.created", "score.changed"}
        assert got in both

        # the filtered one skipped score.changed: its next event is the next check-in
        await live.check_in(org, 60)
        await live.dispatch(org)
        again = await event(filtered, "check-ins")
        assert (again["type"], json.loads(again["data"])["value"]) == ("checkin.created", 60)
        assert again["id"] != got["id"]


async def test_another_organisations_events_never_arrive(live: Live) -> None:
    ours, theirs = await new_org(live), await new_org(live)
    async with acknowledged(live.url, ours.reader) as ws:
        await send(ws, "all", SUBSCRIBE, types=["*"])
        await live.listening(ours, 1)
        await live.check_in(theirs, 30)
        await live.dispatch(theirs)
        # their message forged onto our channel is dropped too (the hub checks the org)
        forged = EventsRecorded(
            theirs.id,
            (RecordedEvent(uuid.uuid4(), "checkin.created", None, None, datetime.now(UTC), {}),),
        )
        await live.redis.publish(events_channel(ours.id), forged.encode())
        await live.check_in(ours, 70)
        await live.dispatch(ours)
        # theirs, published first, would come first: the first two are our check-in's
        events = {e["type"]: e for e in [await event(ws, "all") for _ in range(2)]}
        assert set(events) == {"checkin.created", "score.changed"}
        assert {e["subjectId"] for e in events.values()} == {to_global_id("KeyResult", ours.kr_id)}
        assert json.loads(events["checkin.created"]["data"])["value"] == 70


async def test_a_revoked_tokens_stream_ends(live: Live) -> None:
    org = await new_org(live)
    async with acknowledged(live.url, org.reader) as ws:
        await send(ws, "live", SUBSCRIBE)
        await live.listening(org, 1)
        revoked = await data(
            live.http, org.admin, REVOKE, id=to_global_id("ApiToken", org.reader_id)
        )
        assert revoked["revokeApiToken"]["__typename"] == "ApiTokenSuccess"
        assert await ended_with(ws, "live") == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("types", "code"),
    [(["checkin created"], "INVALID_FORMAT"), ([f"t{i}.*" for i in range(51)], "TOO_MANY")],
    ids=["malformed", "too many"],
)
async def test_a_bad_filter_is_refused(live: Live, types: list[str], code: str) -> None:
    org = await new_org(live)
    async with acknowledged(live.url, org.reader) as ws:
        await send(ws, "bad", SUBSCRIBE, types=types)
        message = await received(ws)
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert errors[0]["extensions"]["userErrorCode"] == code


# --- through a running worker ------------------------------------------------------


@pytest.fixture
async def job_queue(servers: Any) -> AsyncIterator[ArqRedis]:
    """An arq pool on a Redis database of its own (pub/sub channels span databases)."""
    url = make_url(servers.redis_url).set(database=str(random.randint(1, 15)))
    pool = await create_pool(RedisSettings.from_dsn(url.render_as_string(hide_password=False)))
    await pool.flushdb()
    yield pool
    await pool.flushdb()
    await pool.aclose()


async def test_check_ins_reach_the_stream_through_the_worker(
    committed: async_sessionmaker[AsyncSession], job_queue: ArqRedis
) -> None:
    """The whole way: the API's after-commit enqueue, arq's dispatch job in a running
    worker, its publish, the hub. Logs the latencies (`--log-cli-level=INFO`)."""
    worker = Worker(
        functions=[func(dispatch_events, keep_result=0), func(recalculate_scores, keep_result=0)],
        redis_pool=job_queue,
        poll_delay=POLL_DELAY_S,
        handle_signals=False,
        ctx={"sessionmaker": committed},
    )
    running = asyncio.create_task(worker.async_run())
    app = create_app(sessionmaker=committed, queue=job_queue)
    try:
        async with serving(app) as url:
            base = url.replace("ws://", "http://").removesuffix("/graphql")
            async with httpx.AsyncClient(base_url=base) as http:
                live = Live(app, url, http, committed, job_queue)
                org = await new_org(live, endpoint=False)
                async with acknowledged(url, org.reader) as ws:
                    await send(ws, "check-ins", SUBSCRIBE, types=["checkin.created"])
                    await live.listening(org, 1)
                    latencies = []
                    for value in range(1, 21):
                        started = time.perf_counter()
                        await live.check_in(org, value)
                        got = await event(ws, "check-ins")
                        latencies.append((time.perf_counter() - started) * 1000)
                        assert json.loads(got["data"])["value"] == value
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    latencies.sort()
    logging.getLogger(__name__).info(
        "check-in request start -> event: p50 %.0f ms, max %.0f ms over %d",
        latencies[len(latencies) // 2], latencies[-1], len(latencies),
    )  # fmt: skip


# --- the message --------------------------------------------------------------------


def test_the_message_round_trips_and_is_read_by_its_channel() -> None:
    org = uuid.uuid4()
    sent = EventsRecorded(
        org,
        (
            RecordedEvent(
                uuid.uuid4(), "checkin.created", SubjectType.KEY_RESULT, uuid.uuid4(),
                datetime(2026, 12, 7, 10, tzinfo=UTC), {"value": 1.5, "subject": {"id": "x"}},
            ),
            RecordedEvent(uuid.uuid4(), "cycle.closed", None, None, datetime.now(UTC), {}),
        ),
    )  # fmt: skip
    assert decode_org_message(events_channel(org), sent.encode()) == sent
    progress = ProgressChanged(org, ())
    assert decode_org_message(progress_channel(org), progress.encode()) == progress
    with pytest.raises(ValueError, match="no messages"):
        decode_org_message(f"okr:org:{org}:gossip", sent.encode())
