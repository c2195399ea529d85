"""Apollo Client works against the API (issue 7): the real `@apollo/client` (3.x)
in Node, with an InMemoryCache whose connections merge by `relayStylePagination`,
an HttpLink with the Bearer token and a GraphQLWsLink (graphql-ws) for
`progressChanged`, against the app under a real uvicorn server with the demo
organisation.

The script (tests/e2e/apollo_client.cjs) pages objectives with fetchMore, checks
in on a key result, and subscribes to that key result's progress; the test
publishes the change on the organisation's Redis channel as the worker does, and
asserts on what the client's normalised cache shows at each step. The npm
packages are installed into a temporary directory within the test run
(tests/e2e/npm.py).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from arq.connections import ArqRedis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.domain.db import tenant_session
from okrgraph.domain.messages import ProgressChanged, ScoreChange, progress_channel
from okrgraph.domain.models import KeyResult as KeyResultRow
from okrgraph.domain.models.enums import Status, SubjectType
from okrgraph.domain.seed import SeedResult
from okrgraph.schema.node import from_global_id
from tests.conftest import Servers
from tests.e2e.npm import NODE, npm_install, skip_without_npm
from tests.ws import serving, subscribed

skip_without_npm()

PACKAGES = ("@apollo/client@3.14.1", "graphql@16.15.0", "graphql-ws@6.4.2", "ws@8.23.0")
SCRIPT = Path(__file__).with_name("apollo_client.cjs")
PAGE_SIZE = 2

ALL_OBJECTIVES = "{ objectives(first: 100) { edges { cursor node { id } } } }"


async def next_event(stream: asyncio.StreamReader) -> Any:
    """The script's next JSON line (an `error` event fails the test)."""
    line = await asyncio.wait_for(stream.readline(), 50)
    assert line, "the script ended without its result"
    event = json.loads(line)
    assert event["event"] != "error", event["message"]
    return event


async def test_apollo_client_pages_mutates_and_subscribes(
    tmp_path: Path,
    servers: Servers,
    redis_client: aioredis.Redis,
    sessionmaker: async_sessionmaker[AsyncSession],
    demo: SeedResult,
) -> None:
    assert demo.admin_token is not None
    npm_install(tmp_path, *PACKAGES)
    shutil.copy(SCRIPT, tmp_path / SCRIPT.name)
    queue = ArqRedis.from_url(servers.redis_url)
    app = create_app(sessionmaker=sessionmaker, queue=queue)
    auth = {"Authorization": f"Bearer {demo.admin_token}"}
    try:
        async with serving(app) as ws_url:
            http_url = ws_url.replace("ws://", "http://")
            async with httpx.AsyncClient(headers=auth) as http:
                reference = await http.post(http_url, json={"query": ALL_OBJECTIVES})
            edges = reference.json()["data"]["objectives"]["edges"]
            assert len(edges) > PAGE_SIZE
            assert NODE is not None
            node = await asyncio.create_subprocess_exec(
                NODE, SCRIPT.name, http_url, ws_url, demo.admin_token, str(PAGE_SIZE),
                cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert node.stdout is not None
            assert node.stderr is not None
            try:
                subscribing = await next_event(node.stdout)
                assert subscribing["event"] == "subscribing"
                kr_id = subscribing["keyResultId"]
                await subscribed(redis_client, progress_channel(demo.org_id))
                # the worker's roll-up: commit the score, then announce it
                row_id = from_global_id(kr_id)
                assert row_id is not None
                async with tenant_session(sessionmaker, demo.org_id) as s:
                    row = (
                        await s.execute(select(KeyResultRow).where(KeyResultRow.id == row_id[1]))
                    ).scalar_one()
                    previous = (row.score, row.status)
                    await s.execute(
                        update(KeyResultRow)
                        .where(KeyResultRow.id == row.id)
                        .values(score=0.125, status=Status.OFF_TRACK)
                    )
                change = ScoreChange(
                    SubjectType.KEY_RESULT,
                    row_id[1],
                    0.125,
                    Status.OFF_TRACK,
                    previous[0],
                    previous[1],
                )
                await redis_client.publish(
                    progress_channel(demo.org_id),
                    ProgressChanged(demo.org_id, (change,)).encode(),
                )
                done = await next_event(node.stdout)
            finally:
                try:
                    stderr = await asyncio.wait_for(node.stderr.read(), 10)
                    await asyncio.wait_for(node.wait(), 10)
                finally:
                    if node.returncode is None:
                        node.kill()
                        await node.wait()
            assert node.returncode == 0, stderr.decode()[-4000:]
    finally:
        await queue.aclose()

    # (1) pages of 2, the second after the first's endCursor; fetchMore merged them
    first, second = done["pages"]
    all_ids = [e["node"]["id"] for e in edges]
    assert first["ids"] == all_ids[:PAGE_SIZE]
    assert second["ids"] == all_ids[PAGE_SIZE : 2 * PAGE_SIZE]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["endCursor"] == first["cursors"][-1]
    assert done["merged"]["ids"] == first["ids"] + second["ids"]
    assert done["merged"]["cursors"] == first["cursors"] + second["cursors"]
    assert done["merged"]["pageInfo"]["startCursor"] == first["pageInfo"]["startCursor"]
    assert done["merged"]["pageInfo"]["endCursor"] == second["pageInfo"]["endCursor"]
    assert done["merged"]["pageInfo"]["hasNextPage"] == (len(all_ids) > 2 * PAGE_SIZE)

    # (2) the check-in's key result, normalised as KeyResult:<id>, shows the new score
    check_in = done["checkIn"]
    result = check_in["result"]
    assert result["__typename"] == "CheckInSuccess", result
    written = result["checkIn"]["keyResult"]
    assert written["id"] == kr_id
    assert written["current"] == check_in["value"]
    before, after = check_in["before"], check_in["after"]
    assert before["cacheId"] == after["cacheId"] == f"KeyResult:{kr_id}"
    assert written["score"] != before["score"]
    assert after["score"] == written["score"]
    assert after["current"] == check_in["value"]
    assert after["title"] == before["title"]  # fields of the earlier query kept
    assert check_in["inPage"]["score"] == written["score"]  # the paged list reads it too

    # (3) the subscription's subject updated the same cached KeyResult in place
    (event,) = done["subscription"]["events"]
    subject = event["data"]["progressChanged"]["subject"]
    assert subject == {"__typename": "KeyResult", "id": kr_id, "score": 0.125,
                       "status": "OFF_TRACK"}  # fmt: skip
    assert event["data"]["progressChanged"]["previousValue"] == previous[0]
    live = done["subscription"]["after"]
    assert live["cacheId"] == f"KeyResult:{kr_id}"
    assert (live["score"], live["status"]) == (0.125, "OFF_TRACK")
    assert (live["title"], live["current"]) == (before["title"], check_in["value"])
    assert done["subscription"]["inPage"]["score"] == 0.125
    assert done["subscription"]["inPage"]["status"] == "OFF_TRACK"
