"""Automatic persisted queries (Apollo's protocol, api/persisted.py) over real HTTP
(uvicorn) and graphql-transport-ws: an unknown hash asks for the document, the
hash with its document registers it, a hash that is not the document's is refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.api.persisted import PersistedQueries
from okrgraph.domain.config import Settings
from okrgraph.domain.seed import SeedResult
from tests.ws import acknowledged, received, serving

GRAPHQL_RESPONSE = "application/graphql-response+json"


def persisted(query: str) -> dict[str, Any]:
    sha = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


def unique_query() -> str:
    """A document no earlier test registered (the store lives as long as the process)."""
    return f"query Org_{uuid.uuid4().hex} {{ organization {{ name }} }}"


async def test_a_hash_is_registered_with_its_document_then_runs_alone_over_post_and_get(
    sessionmaker: async_sessionmaker[AsyncSession], demo: SeedResult
) -> None:
    app = create_app(Settings(), sessionmaker=sessionmaker, queue=None)
    query = unique_query()
    headers = {"Authorization": f"Bearer {demo.admin_token}"}
    async with serving(app) as url, httpx.AsyncClient(headers=headers) as client:
        endpoint = url.replace("ws://", "http://")
        hash_only = {"extensions": persisted(query)}
        unknown = await client.post(endpoint, json=hash_only)
        assert unknown.status_code == 200
        assert unknown.json() == {
            "errors": [
                {
                    "message": "PersistedQueryNotFound",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                }
            ]
        }
        strict = await client.post(endpoint, json=hash_only, headers={"Accept": GRAPHQL_RESPONSE})
        assert strict.status_code == 400
        assert strict.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

        registered = await client.post(endpoint, json={"query": query, **hash_only})
        name = registered.json()["data"]["organization"]["name"]
        again = await client.post(endpoint, json=hash_only)
        assert again.json() == {"data": {"organization": {"name": name}}}
        by_get = await client.get(endpoint, params={"extensions": json.dumps(persisted(query))})
        assert by_get.status_code == 200
        assert by_get.json() == {"data": {"organization": {"name": name}}}


async def test_a_hash_that_is_not_the_documents_is_refused_and_registers_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], demo: SeedResult
) -> None:
    app = create_app(Settings(), sessionmaker=sessionmaker, queue=None)
    query, other = unique_query(), unique_query()
    headers = {"Authorization": f"Bearer {demo.admin_token}"}
    async with serving(app) as url, httpx.AsyncClient(headers=headers) as client:
        endpoint = url.replace("ws://", "http://")
        wrong = await client.post(endpoint, json={"query": query, "extensions": persisted(other)})
        assert wrong.status_code == 400
        assert wrong.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert "not the SHA-256" in wrong.json()["errors"][0]["message"]
        for extension in (
            {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
            {"persistedQuery": {"version": 1, "sha256Hash": "not hex"}},
        ):
            bad = await client.post(endpoint, json={"extensions": extension})
            assert bad.status_code == 400, extension
        for sha in (persisted(other), persisted(query)):
            nothing = await client.post(endpoint, json={"extensions": sha})
            assert nothing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_persisted_query_runs_over_the_websocket(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis_client: aioredis.Redis,
    demo: SeedResult,
) -> None:
    app = create_app(Settings(), sessionmaker=sessionmaker, queue=redis_client)
    query, token = unique_query(), demo.admin_token
    assert token is not None
    async with serving(app) as url, acknowledged(url, token) as ws:
        payload: dict[str, Any] = {"extensions": persisted(query)}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        refused = await received(ws)
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        await ws.send(json.dumps({"id": "2", "type": "subscribe",
                                  "payload": {"query": query, **payload}}))  # fmt: skip
        assert (await received(ws))["type"] == "next"
        assert (await received(ws)) == {"id": "2", "type": "complete"}
        await ws.send(json.dumps({"id": "3", "type": "subscribe", "payload": payload}))
        answer = await received(ws)
        assert answer["type"] == "next"
        assert "organization" in answer["payload"]["data"]


def test_the_store_forgets_the_least_recently_used_within_its_bounds() -> None:
    store = PersistedQueries(max_entries=2, max_bytes=10_000)
    documents = ["{ a }", "{ b }", "{ c }"]
    for document in documents[:2]:
        store.resolve(document, persisted(document))
    store.resolve(None, persisted(documents[0]))  # used: now the most recent
    store.resolve(documents[2], persisted(documents[2]))
    assert set(store.documents) == {
        hashlib.sha256(d.encode()).hexdigest() for d in (documents[0], documents[2])
    }
    small = PersistedQueries(max_entries=10, max_bytes=12)
    for document in documents:
        small.resolve(document, persisted(document))
    assert len(small.documents) == 2
    assert small.size <= 12
