"""The document cache (okrgraph/schema/documents.py): a repeated request skips the
per-request limits only with variables it already passed with; the cache stays bounded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import parse, validate

from okrgraph.domain.seed import SeedResult
from okrgraph.schema import documents
from okrgraph.schema.documents import MAX_PASSES, DocumentStore

PAGE = "query($n: Int) { objectives(first: $n) { nodes { title } } }"


async def test_the_limits_run_again_for_variables_not_yet_passed(
    client: httpx.AsyncClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[object] = []

    def counted(*args: Any) -> Any:
        runs.append(args[2])
        return validate(*args)

    monkeypatch.setattr(documents, "validate", counted)
    documents.store.clear()
    headers = {"Authorization": f"Bearer {demo.admin_token}"}

    async def codes(n: int) -> list[str]:
        body = {"query": PAGE, "variables": {"n": n}}
        answer = (await client.post("/graphql", json=body, headers=headers)).json()
        return [e["extensions"]["code"] for e in answer.get("errors", [])]

    assert await codes(100) == []  # validated in full (not counted: validate_document)
    assert (await codes(100), len(runs)) == ([], 0)  # passed before with n=100
    assert (await codes(101), len(runs)) == (["PAGE_SIZE_TOO_LARGE"], 1)
    assert (await codes(101), len(runs)) == (["PAGE_SIZE_TOO_LARGE"], 2)  # never remembered
    assert (await codes(99), len(runs)) == ([], 3)
    assert (await codes(99), await codes(100), len(runs)) == ([], [], 3)


def test_remembered_variables_count_in_the_bound() -> None:
    store = DocumentStore(max_entries=10, max_bytes=200)
    query = "{ __typename }"
    store.put(query, parse(query), valid=True)
    for n in range(MAX_PASSES + 5):
        store.passed(query, f'{{"n":{n:03}}}')
    entry = store.get(query)
    assert entry is not None
    assert list(entry.passes)[0] == '{"n":005}'  # the oldest went first
    assert len(entry.passes) == MAX_PASSES
    assert store.size == len(query) + MAX_PASSES * len('{"n":000}')
    store.passed(query, "x" * 200)  # over the bound: the document goes, with its variables
    assert (store.get(query), store.size) == (None, 0)
