"""progressChanged relays the worker's committed score changes from Redis: in
process through `schema.subscribe`, and over a real websocket (graphql-transport-ws)
to the app under uvicorn."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import graphql
import pytest
import redis.asyncio as aioredis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.exceptions import ConnectionClosed

from okrgraph.api.app import create_app
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.live import LiveHub
from okrgraph.domain.messages import ProgressChanged, ScoreChange, progress_channel
from okrgraph.domain.models import KeyResult as KeyResultRow
from okrgraph.domain.models.enums import OrgRole, SubjectType
from okrgraph.domain.models.enums import Status as StatusEnum
from okrgraph.schema import schema
from okrgraph.schema.context import Context
from okrgraph.schema.export import sdl
from okrgraph.schema.node import to_global_id
from tests.factories import make_key_result, make_objective, make_org, make_token
from tests.ws import graphql_ws, received, serving, subscribed

SUBSCRIBE = """subscription($ids: [ID!]) {
  progressChanged(ids: $ids) {
    __typename
    subject {
      __typename
      ... on KeyResult { id score status title }
      ... on Objective { id progress status title }
    }
    previousValue previousStatus
  }
}"""


def change(kind: str, id: uuid.UUID, value: float = 0.5) -> ScoreChange:
    return ScoreChange(SubjectType(kind), id, value, StatusEnum.ON_TRACK, 0.1, StatusEnum.AT_RISK)


def message(org: uuid.UUID, *changes: ScoreChange) -> str:
    return ProgressChanged(org, changes).encode()


def principal_of(org: uuid.UUID) -> Principal:
    return Principal(
        org_id=org, token_id=uuid.uuid4(), scopes=frozenset({"read"}),
        person_id=uuid.uuid4(), org_role=OrgRole.MEMBER,
    )  # fmt: skip


async def test_progress_changes_reach_the_subscriber(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession], db: AsyncSession
) -> None:
    org = await make_org(db)
    wanted = await make_objective(db, org.id, progress=0.75, status=StatusEnum.ON_TRACK)
    other = await make_key_result(db, org.id)
    live = LiveHub(redis_client)
    ctx = Context(
        request=None, sessionmaker=sessionmaker, principal=principal_of(org.id), live=live
    )
    wanted_id = to_global_id("Objective", wanted.id)
    stream = await schema.subscribe(
        SUBSCRIBE, context_value=ctx, variable_values={"ids": [wanted_id]}
    )
    first = asyncio.ensure_future(stream.__anext__())
    channel = progress_channel(org.id)
    await subscribed(redis_client, channel)
    # another organisation's channel and an unwanted id are not relayed
    elsewhere = uuid.uuid4()
    await redis_client.publish(
        progress_channel(elsewhere), message(elsewhere, change("OBJECTIVE", wanted.id, 0.9))
    )
    await redis_client.publish(
        channel,
        message(org.id, change("KEY_RESULT", other.id, 0.2), change("OBJECTIVE", wanted.id, 0.75)),
    )
    result = await asyncio.wait_for(first, 5)
    assert result.errors is None
    assert result.data == {
        "progressChanged": {
            "__typename": "ProgressChange",
            "subject": {"__typename": "Objective", "id": wanted_id, "progress": 0.75,
                        "status": "ON_TRACK", "title": wanted.title},
            "previousValue": 0.1, "previousStatus": "AT_RISK",
        }
    }  # fmt: skip
    await stream.aclose()
    await live.aclose()


async def test_the_subject_reads_as_of_delivery_with_fresh_loaders(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession], db: AsyncSession
) -> None:
    """Each event reads its subject anew (no dataloader cache of an earlier event),
    nested fields included, though the subscription holds no transaction."""
    org = await make_org(db)
    kr = await make_key_result(db, org.id, score=0.2)
    live = LiveHub(redis_client)
    ctx = Context(
        request=None, sessionmaker=sessionmaker, principal=principal_of(org.id), live=live
    )
    query = """subscription { progressChanged {
      subject { ... on KeyResult { id score objective { id title } } } } }"""
    stream = await schema.subscribe(query, context_value=ctx)
    results = []
    for score in (0.2, 0.6):
        await db.execute(update(KeyResultRow).where(KeyResultRow.id == kr.id).values(score=score))
        await db.flush()
        pending = asyncio.ensure_future(stream.__anext__())
        await subscribed(redis_client, progress_channel(org.id))
        await redis_client.publish(
            progress_channel(org.id), message(org.id, change("KEY_RESULT", kr.id, score))
        )
        result = await asyncio.wait_for(pending, 5)
        assert result.errors is None, result.errors
        assert result.data is not None
        results.append(result.data["progressChanged"]["subject"])
    assert [r["score"] for r in results] == [0.2, 0.6]
    assert results[1]["objective"]["id"] == to_global_id("Objective", kr.objective_id)
    assert ctx.session is None  # nothing held between events
    await stream.aclose()
    await live.aclose()


def test_the_payload_has_no_id_of_another_type() -> None:
    """Relay normalises any object with an `id` by that id: a ProgressChange carrying
    its subject's id would overwrite the cached subject (issue 7)."""
    sdl_schema = graphql.build_schema(sdl())
    payload = sdl_schema.get_type("ProgressChange")
    assert isinstance(payload, graphql.GraphQLObjectType)
    assert "id" not in payload.fields
    subject = graphql.get_named_type(payload.fields["subject"].type)
    assert isinstance(subject, graphql.GraphQLUnionType)
    assert {t.name for t in subject.types} == {"KeyResult", "Objective"}


def test_the_message_round_trips() -> None:
    sent = ProgressChanged(
        uuid.uuid4(),
        (change("KEY_RESULT", uuid.uuid4(), 0.25), change("OBJECTIVE", uuid.uuid4(), 1.0)),
        datetime(2026, 12, 1, 12, tzinfo=UTC),
    )
    assert ProgressChanged.decode(sent.encode()) == sent


async def test_anonymous_subscription_is_refused(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ctx = Context(
        request=None, sessionmaker=sessionmaker, principal=None, live=LiveHub(redis_client)
    )
    stream = await schema.subscribe(SUBSCRIBE, context_value=ctx)
    result = await stream.__anext__()
    assert result.errors is not None, result
    extensions = result.errors[0].extensions
    assert extensions is not None
    assert extensions["code"] == "UNAUTHENTICATED"


# --- over a real websocket ----------------------------------------------------------


async def test_progress_changes_reach_a_websocket_client(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    db: AsyncSession,
) -> None:
    org = await make_org(db)
    _, token = await make_token(db, org.id, scopes=["read"])
    wanted = await make_objective(db, org.id, progress=0.75, status=StatusEnum.ON_TRACK)
    other = await make_key_result(db, org.id)
    wanted_id = to_global_id("Objective", wanted.id)
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
        changes = (change("KEY_RESULT", other.id, 0.2), change("OBJECTIVE", wanted.id, 0.75))
        await redis_client.publish(channel, message(org.id, *changes))
        assert await received(ws) == {
            "id": "1",
            "type": "next",
            "payload": {"data": {"progressChanged": {
                "__typename": "ProgressChange",
                "subject": {"__typename": "Objective", "id": wanted_id, "progress": 0.75,
                            "status": "ON_TRACK", "title": wanted.title},
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
