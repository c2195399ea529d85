"""A real client's view of issue 7's live item: a websocket subscription with
`ids: [thatKeyResult]` hears a check-in on that key result (the check-in writes the
KR's score itself; the worker's job announces it with the roll-up), once."""

from __future__ import annotations

import json
import uuid

import httpx
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.db import tenant_session
from okrgraph.domain.messages import progress_channel
from okrgraph.domain.models.enums import OrgRole
from okrgraph.schema.node import to_global_id
from okrgraph.worker.jobs.scores import recalculate_scores
from tests.factories import make_cycle, make_key_result, make_objective, make_org, make_token
from tests.ws import graphql_ws, received, serving, subscribed

SUBSCRIBE = """subscription($ids: [ID!]) { progressChanged(ids: $ids) {
  subject { __typename ... on KeyResult { id score current } } previousValue } }"""
CHECK_IN = """mutation($input: CheckInInput!) { checkIn(input: $input) { __typename } }"""


async def test_a_key_result_subscriber_hears_its_check_in(
    redis_client: aioredis.Redis, committed: async_sessionmaker[AsyncSession]
) -> None:
    # Committed data and a real pool: the subscription reads its subject while the
    # job goes on, each on a connection of its own.
    sessionmaker = committed
    org_id = uuid.uuid4()
    async with tenant_session(committed, org_id) as db:
        org = await make_org(db, id=org_id)
        _, token = await make_token(
            db, org.id, role=OrgRole.ADMIN, scopes=["read", "write", "admin"]
        )
        cycle = await make_cycle(db, org.id)
        objective = await make_objective(db, org.id, cycle_id=cycle.id)
        kr = await make_key_result(db, org.id, objective_id=objective.id)  # 0 -> 100
    kr_id = to_global_id("KeyResult", kr.id)
    app = create_app(sessionmaker=sessionmaker, queue=redis_client)
    auth = {"Authorization": f"Bearer {token}"}
    async with serving(app) as url, graphql_ws(url, auth) as ws:
        assert await received(ws) == {"type": "connection_ack"}
        subscribe = {"query": SUBSCRIBE, "variables": {"ids": [kr_id]}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        await subscribed(redis_client, progress_channel(org.id))

        http = url.replace("ws://", "http://")
        async with httpx.AsyncClient() as client:
            response = await client.post(
                http,
                json={
                    "query": CHECK_IN,
                    "variables": {"input": {"keyResultId": kr_id, "value": 40}},
                },
                headers=auth,
            )
        assert response.json()["data"]["checkIn"]["__typename"] == "CheckInSuccess"
        # the worker's job, for real (the API's enqueue is not run by a worker here)
        await recalculate_scores({"sessionmaker": sessionmaker, "redis": redis_client}, str(org.id))

        assert await received(ws) == {
            "id": "1",
            "type": "next",
            "payload": {
                "data": {
                    "progressChanged": {
                        "subject": {"__typename": "KeyResult", "id": kr_id, "score": 0.4,
                                    "current": 40.0},
                        "previousValue": 0.0,
                    }
                }
            },
        }  # fmt: skip
