"""Changes to the graph's structure (edges, weights, cancellations, targets) roll up
like check-ins do: the outbox events they write lead the score pipeline to the
same numbers as a full recalculation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import KeyResult, Objective
from okrgraph.domain.scores.pending_events import process_pending_events
from okrgraph.domain.scores.service import full_recalculation
from okrgraph.domain.seed import SeedResult
from tests.gql import data

IDS = """{ objectives(first: 20) { nodes { id title
  parents { nodes { id } } keyResults { nodes { id title } } } } }"""


async def scores(db: AsyncSession) -> dict[str, float]:
    rows = (await db.execute(select(Objective.title, Objective.progress))).all()
    krs = (await db.execute(select(KeyResult.title, KeyResult.score))).all()
    return {title: round(value, 9) for title, value in [*rows, *krs]}


@pytest.mark.parametrize(
    "change",
    ["align", "reweigh", "unalign", "cancel objective", "cancel key result", "retarget"],
)
async def test_structural_changes_roll_up(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession, change: str
) -> None:
    token = demo.admin_token or ""
    found = (await data(client, token, IDS))["objectives"]["nodes"]
    by_title: dict[str, Any] = {o["title"]: o for o in found}
    company = by_title["Become the launch provider small satellites choose first"]
    eng = by_title["Make every launch boringly reliable"]
    dev = by_title["Ship the new telemetry pipeline"]
    mutations = {
        "align": (
            "mutation($i: AlignObjectiveInput!) { alignObjective(input: $i) { __typename } }",
            {"childId": dev["id"], "parentObjectiveId": company["id"], "weight": 3},
        ),
        "reweigh": (
            "mutation($i: UpdateAlignmentInput!) { updateAlignment(input: $i) { __typename } }",
            {"id": eng["parents"]["nodes"][0]["id"], "weight": 0.1},
        ),
        "unalign": (
            "mutation($i: ID!) { removeAlignment(id: $i) { __typename } }",
            eng["parents"]["nodes"][0]["id"],
        ),
        "cancel objective": (
            "mutation($i: UpdateObjectiveInput!) { updateObjective(input: $i) { __typename } }",
            {"id": eng["id"], "state": "CANCELLED"},
        ),
        "cancel key result": (
            "mutation($i: UpdateKeyResultInput!) { updateKeyResult(input: $i) { __typename } }",
            {"id": eng["keyResults"]["nodes"][0]["id"], "state": "CANCELLED"},
        ),
        "retarget": (
            "mutation($i: UpdateKeyResultInput!) { updateKeyResult(input: $i) { __typename } }",
            {"id": company["keyResults"]["nodes"][0]["id"], "target": 45},
        ),
    }
    query, variables = mutations[change]
    before = await scores(db)
    result = await data(client, token, query, i=variables)
    assert next(iter(result.values()))["__typename"].endswith("Success"), result

    await process_pending_events(db, demo.org_id)  # what the worker's job does
    incremental = await scores(db)
    await full_recalculation(db, demo.org_id)
    assert incremental == await scores(db), "the events missed part of the roll-up"
    assert incremental != before, "the change moved no number"
