"""Attacks over a real websocket (graphql-transport-ws against uvicorn): a token
that lost its rights while its socket stays open, operations pipelined on one
socket, and many subscriptions against one Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from okrgraph.api.app import create_app
from okrgraph.api.websocket import REVOKED_CLOSE
from okrgraph.domain.db import tenant_session
from okrgraph.domain.live import MAX_SUBSCRIPTIONS_PER_TOKEN
from okrgraph.domain.messages import ProgressChanged, ScoreChange, progress_channel
from okrgraph.domain.models import ApiToken, CheckIn
from okrgraph.domain.models.enums import OrgRole, Status, SubjectType
from okrgraph.schema.node import to_global_id
from tests.factories import make_key_result, make_objective, make_org, make_person, make_token
from tests.gql import data
from tests.ws import acknowledged, graphql_ws, received, send, serving, subscribed

SUBSCRIBE = "subscription { progressChanged { subject { ... on Objective { id progress } } } }"
CREATE_TOKEN = """mutation($name: String!) {
  createApiToken(input: {name: $name, scopes: ["read"]}) {
    __typename ... on CreateApiTokenSuccess { secret }
  }
}"""
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }"
ARCHIVE = "mutation($id: ID!) { archivePerson(id: $id) { __typename } }"
CHECK_IN = """mutation($kr: ID!, $value: Float!) {
  checkIn(input: {keyResultId: $kr, value: $value}) {
    __typename ... on CheckInSuccess { checkIn { value } }
  }
}"""


@dataclass
class World:
    org_id: uuid.UUID
    victim: ApiToken  # an admin person's admin token, whose socket stays open
    victim_secret: str
    admin_secret: str  # another admin, who revokes and archives
    objective_id: uuid.UUID  # whose progress changes are published


@pytest.fixture
async def world(db: AsyncSession) -> World:
    org = await make_org(db)
    victim_person = await make_person(db, org.id, role=OrgRole.ADMIN)
    victim, victim_secret = await make_token(
        db, org.id, scopes=["read", "write", "admin"], person_id=victim_person.id
    )
    _, admin_secret = await make_token(
        db, org.id, scopes=["read", "write", "admin"], role=OrgRole.ADMIN
    )
    objective = await make_objective(db, org.id)
    return World(org.id, victim, victim_secret, admin_secret, objective.id)


@asynccontextmanager
async def http_client(ws_url: str) -> AsyncIterator[httpx.AsyncClient]:
    base = ws_url.replace("ws://", "http://").removesuffix("/graphql")
    async with httpx.AsyncClient(base_url=base) as client:
        yield client


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """The close code and reason, once the server closes the socket."""
    with pytest.raises(ConnectionClosed) as closed:
        await drain(ws)
    assert closed.value.rcvd is not None, "the connection dropped without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def drain(ws: ClientConnection) -> None:
    while True:
        await received(ws)


async def publish_change(
    redis_client: aioredis.Redis, org_id: uuid.UUID, objective_id: uuid.UUID
) -> None:
    change = ScoreChange(
        SubjectType.OBJECTIVE, objective_id, 0.5, Status.ON_TRACK, 0.1, Status.AT_RISK
    )
    message = ProgressChanged(org_id, (change,))
    await redis_client.publish(progress_channel(org_id), message.encode())


async def revoke(http: httpx.AsyncClient, world: World, db: AsyncSession) -> None:
    token_id = to_global_id("ApiToken", world.victim.id)
    result = await data(http, world.admin_secret, REVOKE, id=token_id)
    assert result["revokeApiToken"]["__typename"] == "ApiTokenSuccess"


async def archive(http: httpx.AsyncClient, world: World, db: AsyncSession) -> None:
    assert world.victim.person_id is not None
    person_id = to_global_id("Person", world.victim.person_id)
    result = await data(http, world.admin_secret, ARCHIVE, id=person_id)
    assert result["archivePerson"]["__typename"] == "PersonSuccess"


async def expire(http: httpx.AsyncClient, world: World, db: AsyncSession) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    await db.execute(update(ApiToken).where(ApiToken.id == world.victim.id).values(expires_at=past))
    await db.flush()


LOSSES: dict[str, Callable[[httpx.AsyncClient, World, AsyncSession], Awaitable[None]]] = {
    "revoked": revoke,
    "person archived": archive,
    "expired": expire,
}


async def token_count(db: AsyncSession, world: World) -> int:
    return int(
        (await db.execute(select(func.count()).where(ApiToken.org_id == world.org_id))).scalar_one()
    )


@pytest.mark.parametrize("loss", list(LOSSES))
async def test_a_socket_can_do_nothing_once_its_token_lost_its_rights(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    db: AsyncSession,
    world: World,
    loss: str,
) -> None:
    app = create_app(sessionmaker=sessionmaker, queue=redis_client)
    async with serving(app) as url, http_client(url) as http:
        async with acknowledged(url, world.victim_secret) as ws:
            await send(ws, "before", CREATE_TOKEN, name="allowed")  # the control
            message = await received(ws)
            assert message["payload"]["data"]["createApiToken"]["secret"].startswith("okr_")
            assert await received(ws) == {"id": "before", "type": "complete"}
            tokens = await token_count(db, world)

            await LOSSES[loss](http, world, db)
            await send(ws, "after", CREATE_TOKEN, name="must not exist")
            assert await closed_with(ws) == REVOKED_CLOSE
        assert await token_count(db, world) == tokens


async def test_a_demoted_admin_loses_admin_rights_on_an_open_socket(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    assert world.victim.person_id is not None
    demote = """mutation($id: ID!) {
      updatePerson(input: {id: $id, orgRole: MEMBER}) { __typename }
    }"""
    admin_only = "mutation($id: ID!) { archivePerson(id: $id) { __typename } }"
    app = create_app(sessionmaker=sessionmaker, queue=redis_client)
    async with serving(app) as url, http_client(url) as http:
        async with acknowledged(url, world.victim_secret) as ws:
            person_id = to_global_id("Person", world.victim.person_id)
            result = await data(http, world.admin_secret, demote, id=person_id)
            assert result["updatePerson"]["__typename"] == "PersonSuccess"
            someone = to_global_id("Person", uuid.uuid4())
            await send(ws, "1", admin_only, id=someone)
            message = await received(ws)
            assert message["payload"]["data"]["archivePerson"]["__typename"] == "Forbidden"


@pytest.mark.parametrize("loss", ["revoked", "person archived"])
async def test_open_subscriptions_end_when_their_token_loses_its_rights(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    db: AsyncSession,
    world: World,
    loss: str,
) -> None:
    """Two API processes on one Redis: the revocation is made through the other one."""
    here = create_app(sessionmaker=sessionmaker, queue=redis_client)
    there = create_app(sessionmaker=sessionmaker, queue=redis_client)
    async with serving(here) as url, serving(there) as other_url, http_client(other_url) as http:
        async with acknowledged(url, world.victim_secret) as ws:
            await send(ws, "live", SUBSCRIBE)
            await subscribed(redis_client, progress_channel(world.org_id))
            await LOSSES[loss](http, world, db)
            ended = await received(ws)
            assert ended["id"] == "live"
            errors = ended["payload"] if ended["type"] == "error" else ended["payload"]["errors"]
            assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
            # and nothing more arrives for it: the next thing is its completion, if anything
            await publish_change(redis_client, world.org_id, world.objective_id)
            if ended["type"] == "next":
                assert await received(ws) == {"id": "live", "type": "complete"}


async def test_a_subscription_ends_when_its_token_expires(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession], db: AsyncSession
) -> None:
    org = await make_org(db)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    _, secret = await make_token(db, org.id, scopes=["read"], expires_at=soon)
    app = create_app(sessionmaker=sessionmaker, queue=redis_client)
    async with serving(app) as url, acknowledged(url, secret) as ws:
        await send(ws, "live", SUBSCRIBE)
        ended = await received(ws)
        errors = ended["payload"] if ended["type"] == "error" else ended["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "expired" in errors[0]["message"]


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer okr_not_a_token"}, {"Authorization": "Bearer x"}]
)
async def test_a_bad_token_in_the_upgrade_request_is_refused_cleanly(
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    headers: dict[str, str],
) -> None:
    app = create_app(sessionmaker=sessionmaker, queue=redis_client)
    async with serving(app) as url, graphql_ws(url, {}, headers=headers) as ws:
        assert await closed_with(ws) == (4403, "Forbidden")


async def test_a_good_token_in_the_upgrade_request_is_enough(
    redis_client: aioredis.Redis, sessionmaker: async_sessionmaker[AsyncSession], world: World
) -> None:
    app = create_app(sessionmaker=sessionmaker, queue=redis_client)
    headers = {"Authorization": f"Bearer {world.victim_secret}"}
    async with serving(app) as url, graphql_ws(url, {}, headers=headers) as ws:
        assert await received(ws) == {"type": "connection_ack"}
        await send(ws, "1", "{ viewer { scopes } }")
        assert (await received(ws))["payload"]["data"]["viewer"]["scopes"] == [
            "admin", "read", "write",
        ]  # fmt: skip


# --- committed data, for operations that run at once (each has its own transaction) ---


async def test_pipelined_operations_on_one_socket_each_get_their_own_transaction(
    redis_client: aioredis.Redis, committed: async_sessionmaker[AsyncSession]
) -> None:
    org_id = uuid.uuid4()
    async with tenant_session(committed, org_id) as session:
        await make_org(session, id=org_id)
        person = await make_person(session, org_id, role=OrgRole.ADMIN)
        _, secret = await make_token(
            session, org_id, scopes=["read", "write", "admin"], person_id=person.id
        )
        kr = await make_key_result(session, org_id, owner_person_id=person.id)
    kr_id = to_global_id("KeyResult", kr.id)
    app = create_app(sessionmaker=committed, queue=redis_client)
    async with serving(app) as ws_url, acknowledged(ws_url, secret) as ws:
        for i in range(20):
            await send(ws, f"c{i}", CHECK_IN, kr=kr_id, value=float(i))
            await send(ws, f"q{i}", "{ viewer { scopes } }")
        results: dict[str, dict[str, Any]] = {}
        while len(results) < 40:
            message = await received(ws)
            if message["type"] != "complete":
                results[message["id"]] = message
    failed = [m for m in results.values() if m["type"] == "error" or m["payload"].get("errors")]
    assert failed == []
    values = sorted(
        m["payload"]["data"]["checkIn"]["checkIn"]["value"]
        for key, m in results.items()
        if key.startswith("c")
    )
    assert values == [float(i) for i in range(20)]
    async with tenant_session(committed, org_id) as session:
        count = select(func.count()).where(CheckIn.key_result_id == kr.id)
        assert (await session.execute(count)).scalar_one() == 20


# --- many subscriptions, one Redis connection per process; a cap per token ---------


async def test_many_subscriptions_share_one_redis_subscription_and_a_token_is_capped(
    redis_client: aioredis.Redis, committed: async_sessionmaker[AsyncSession]
) -> None:
    org_id = uuid.uuid4()
    async with tenant_session(committed, org_id) as session:
        await make_org(session, id=org_id)
        _, secret = await make_token(session, org_id, scopes=["read"])
        _, other_secret = await make_token(session, org_id, scopes=["read"])
        subject = (org_id, (await make_objective(session, org_id)).id)
    channel = progress_channel(org_id)
    app = create_app(sessionmaker=committed, queue=redis_client)
    async with (
        serving(app) as url,
        acknowledged(url, secret) as first,
        acknowledged(url, secret) as second,
        acknowledged(url, other_secret) as third,
    ):
        clients_before = len(await redis_client.client_list())
        half = MAX_SUBSCRIPTIONS_PER_TOKEN // 2
        for i in range(half):
            await send(first, f"a{i}", SUBSCRIBE)
        for i in range(MAX_SUBSCRIPTIONS_PER_TOKEN - half):
            await send(second, f"b{i}", SUBSCRIBE)
        await send(third, "other", SUBSCRIBE)
        # every subscription is in place once each has received a change
        await subscribed(redis_client, channel)
        want = {"other", *(f"a{i}" for i in range(half)),
                *(f"b{i}" for i in range(MAX_SUBSCRIPTIONS_PER_TOKEN - half))}  # fmt: skip
        assert await ids_reached(redis_client, subject, [first, second, third], want) == want
        # all of them, of both tokens, are served by one Redis subscription
        assert dict(await redis_client.pubsub_numsub(channel))[channel.encode()] == 1
        assert len(await redis_client.client_list()) <= clients_before + 1
        # the token's next subscription, on either socket, is refused; the other token's is not
        await send(second, "over", SUBSCRIBE)
        refused = await received(second)
        while refused["id"] != "over":  # changes published above may still be in flight
            assert refused["type"] == "next", refused
            refused = await received(second)
        errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
        assert f"already has {MAX_SUBSCRIPTIONS_PER_TOKEN}" in errors[0]["message"]
        await send(third, "other-2", SUBSCRIBE)
        want = {"other", "other-2"}
        assert await ids_reached(redis_client, subject, [third], want) == want


async def ids_reached(
    redis_client: aioredis.Redis,
    subject: tuple[uuid.UUID, uuid.UUID],
    sockets: list[ClientConnection],
    want: set[str],
) -> set[str]:
    """The operation ids that receive a published change, publishing until all of
    `want` have (a subscription registers a moment after its `subscribe` message)."""
    got: set[str] = set()
    for _ in range(50):
        await publish_change(redis_client, *subject)
        for ws in sockets:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.3):
                    while not want <= got:
                        got.add((await received(ws))["id"])
        if want <= got:
            break
    return got


async def test_subscriptions_survive_a_lost_redis_connection(
    redis_client: aioredis.Redis, committed: async_sessionmaker[AsyncSession]
) -> None:
    org_id = uuid.uuid4()
    async with tenant_session(committed, org_id) as session:
        await make_org(session, id=org_id)
        _, secret = await make_token(session, org_id, scopes=["read"])
        subject = (org_id, (await make_objective(session, org_id)).id)
    channel = progress_channel(org_id)
    app = create_app(sessionmaker=committed, queue=redis_client)
    async with serving(app) as url, acknowledged(url, secret) as ws:
        await send(ws, "live", SUBSCRIBE)
        await subscribed(redis_client, channel)
        assert await redis_client.client_kill_filter(_type="pubsub") >= 1
        # the hub reconnects and re-subscribes: a change published afterwards arrives
        assert await ids_reached(redis_client, subject, [ws], {"live"}) == {"live"}
        assert dict(await redis_client.pubsub_numsub(channel))[channel.encode()] == 1
