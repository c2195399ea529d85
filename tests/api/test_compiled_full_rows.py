"""The compiled read path against normal execution on rows where every field the
registry compiles is non-null somewhere: final scores, carried-over links,
corrections (supersedes), archived people, teams and KPIs, closed cycles,
initiative links... The demo data leaves those null, so a compiled column that
disagrees with its resolver only when set would pass test_compiled.py."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.db import set_tenant
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import (
    CheckIn,
    Cycle,
    Initiative,
    KeyResult,
    Kpi,
    Objective,
    Person,
    Team,
)
from okrgraph.domain.models.enums import CycleState
from okrgraph.domain.seed import SeedResult
from okrgraph.schema.compiled.registry import TYPES
from tests.api.test_compiled import IDS, both_ways, ids_by_type, selection
from tests.gql import data


async def _fill(db: AsyncSession, org_id: uuid.UUID) -> None:
    """Give the demo's rows every optional value."""
    await set_tenant(db, org_id)
    now = clock.now()
    objectives = list((await db.execute(select(Objective.id))).scalars())
    krs = list((await db.execute(select(KeyResult.id, KeyResult.progress_driver))).all())
    await db.execute(
        update(Objective)
        .where(Objective.id == objectives[0])
        .values(final_score=0.55, carried_over_from_id=objectives[1])
    )
    await db.execute(
        update(KeyResult)
        .where(KeyResult.id == krs[0].id)
        .values(final_score=0.35, carried_over_from_id=krs[1].id, confidence=4)
    )
    # A correction needs an open key result: not the one given a final score above,
    # nor one in a closed cycle (which one `limit(1)` picks is up to the planner).
    check_in = (
        await db.execute(
            select(CheckIn)
            .join(KeyResult, KeyResult.id == CheckIn.key_result_id)
            .join(Objective, Objective.id == KeyResult.objective_id)
            .join(Cycle, Cycle.id == Objective.cycle_id)
            .where(KeyResult.final_score.is_(None), Cycle.state != CycleState.CLOSED)
            .order_by(CheckIn.id)
            .limit(1)
        )
    ).scalar_one()
    await record_check_in(
        db,
        principal=system_principal(org_id),
        key_result_id=check_in.key_result_id,
        value=check_in.value + 1,
        confidence=9,
        comment="corrected",
        supersedes_id=check_in.id,
        now=now,
    )
    await db.execute(
        update(Person)
        .values(archived_at=now - timedelta(days=1))
        .where(
            Person.id
            == (
                await db.execute(select(Person.id).where(Person.email == "vic@acme.example"))
            ).scalar_one()
        )
    )
    team = (await db.execute(select(Team.id).where(Team.name == "Growth"))).scalar_one()
    await db.execute(update(Team).where(Team.id == team).values(archived_at=now, description="d"))
    kpi = (await db.execute(select(Kpi.id).limit(1))).scalar_one()
    await db.execute(update(Kpi).where(Kpi.id == kpi).values(archived_at=now))
    await db.execute(update(Initiative).values(link="https://example.com/plan"))
    cycle = (await db.execute(select(Cycle.id).limit(1))).scalar_one()
    await db.execute(update(Cycle).where(Cycle.id == cycle).values(closed_at=now))
    await db.flush()


def _nulls(type_name: str, nodes: list[dict[str, Any]]) -> set[str]:
    """Leaves (and one-object relations) null in every row of the type."""
    spec = TYPES[type_name]
    fields = [*spec.leaves, *(n for n, r in spec.relations.items() if r.shape != "connection")]
    return {f for f in fields if all(node.get(f) is None for node in nodes)}


async def test_compiled_equals_executed_on_rows_with_every_field_set(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(db, demo.org_id)
    token = demo.admin_token or ""
    ids = ids_by_type(await data(client, token, IDS))
    still_null: dict[str, set[str]] = {}
    for type_name in TYPES:
        nodes = []
        for id in ids.get(type_name, []):
            query = f"""query($id: ID!) {{ node(id: $id) {{
              ... on {type_name} {{ {selection(type_name)} }} }} }}"""
            compiled, executed = await both_ways(client, token, query, monkeypatch, id=id)
            assert json.dumps(compiled) == json.dumps(executed), (type_name, id)
            nodes.append(compiled["node"])
        still_null[type_name] = _nulls(type_name, nodes)
    assert {t: n for t, n in still_null.items() if n} == {}
