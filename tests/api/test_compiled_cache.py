"""Compile outcomes kept between requests (okrgraph/schema/compiled/extension.py): the
same document, operation and variables compile once; anything else compiles anew."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from okrgraph.domain.seed import SeedResult
from okrgraph.schema.compiled import extension
from okrgraph.schema.compiled.compiler import Compiled, compile_query

OBJECTIVES = "query($n: Int!) { objectives(first: $n) { nodes { title } } }"
NOT_COMPILED = "{ objectives(first: 2) { pageInfo { hasNextPage } } }"


async def test_a_repeated_request_is_compiled_once(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[dict[str, Any] | None] = []

    def counted(*args: Any) -> Compiled:
        compiled.append(args[2])
        return compile_query(*args)

    monkeypatch.setattr(extension, "compile_query", counted)
    extension.store.clear()
    headers = {"Authorization": f"Bearer {demo.admin_token}"}

    async def objectives(query: str, n: int | None = None) -> int:
        body = {"query": query, "variables": {"n": n} if n else None}
        answer = (await client.post("/graphql", json=body, headers=headers)).json()
        assert "errors" not in answer, answer
        return len(answer["data"]["objectives"].get("nodes", []))

    assert [await objectives(OBJECTIVES, 1), await objectives(OBJECTIVES, 1)] == [1, 1]
    assert compiled == [{"n": 1}]
    assert [await objectives(OBJECTIVES, 2), await objectives(OBJECTIVES, 1)] == [2, 1]
    assert compiled == [{"n": 1}, {"n": 2}]
    await objectives(NOT_COMPILED)
    await objectives(NOT_COMPILED)  # its refusal is kept too
    assert compiled == [{"n": 1}, {"n": 2}, None]


def test_the_store_is_bounded_by_its_statements_size() -> None:
    store = extension.CompiledStore(max_entries=10, max_chars=1_000)
    statement = Compiled("x" * 300, {}, {})
    for n in range(4):
        store._put((f"q{n}", None, "{}"), statement)
    assert [key[0] for key in store.entries] == ["q1", "q2", "q3"]
    assert store.chars == 3 * (2 + 2 + 300)
