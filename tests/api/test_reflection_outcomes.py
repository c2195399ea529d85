"""The default outcome on both sides of 0.7, with numbers worked out by hand: the
reflection written at grading (no outcome given) and the grade closeCycle gives.

Two key results 0 -> 100 with weights w1, w2 and check-ins v1, v2: the objective's
progress is (w1 * v1 + w2 * v2) / (100 * (w1 + w2)). Exactly 0.7 counts as achieved
in both places (0.7 is a good stretch result), even where the float arithmetic of
a weighted mean lands a hair below it (70 and 70 weighted 1 and 2).
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import Cycle, Objective, Reflection
from okrgraph.domain.models.enums import CycleState, ObjectiveState, OrgRole
from okrgraph.domain.scores.service import full_recalculation
from okrgraph.schema.node import to_global_id
from tests.factories import make_cycle, make_key_result, make_objective, make_org, make_token
from tests.gql import data

REFLECT = """mutation($input: WriteReflectionInput!) { writeReflection(input: $input) {
  __typename ... on ReflectionSuccess { reflection { finalScore outcome } } } }"""
CLOSE = """mutation($input: CloseCycleInput!) { closeCycle(input: $input) {
  __typename ... on CloseCycleSuccess { summary { objectives { finalScore outcome } } } } }"""


@pytest.mark.parametrize(
    ("values", "weights", "progress", "outcome"),
    [
        ((71, 71), (1, 1), 0.71, "ACHIEVED"),
        ((69, 69), (1, 1), 0.69, "MISSED"),
        ((80, 60), (1, 1), 0.70, "ACHIEVED"),  # (80 + 60) / 200
        ((70, 70), (1, 2), 0.70, "ACHIEVED"),  # (70 + 140) / 300
        ((70, 69), (1, 1), 0.695, "MISSED"),
        ((100, 55), (1, 1), 0.775, "ACHIEVED"),
    ],
)
async def test_the_default_outcome_at_grading_and_at_close(
    client: httpx.AsyncClient,
    db: AsyncSession,
    values: tuple[int, int],
    weights: tuple[int, int],
    progress: float,
    outcome: str,
) -> None:
    org = await make_org(db)
    _, token = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read", "write", "admin"])
    cycle = await make_cycle(db, org.id)
    cycle_id = cycle.id
    objective = await make_objective(db, org.id, cycle_id=cycle_id)
    objective_id = objective.id
    for value, weight in zip(values, weights, strict=True):
        kr = await make_key_result(db, org.id, objective_id=objective_id, weight=float(weight))
        await record_check_in(
            db, principal=system_principal(org.id), key_result_id=kr.id, value=float(value)
        )
    await full_recalculation(db, org.id)
    stored = await db.scalar(select(Objective.progress).where(Objective.id == objective_id))
    assert stored == pytest.approx(progress, abs=1e-12)

    await db.execute(update(Cycle).where(Cycle.id == cycle_id).values(state=CycleState.GRADING))
    await db.flush()
    reflect = {"objectiveId": to_global_id("Objective", objective_id), "whatWorked": "w"}
    written = (await data(client, token, REFLECT, input=reflect))["writeReflection"]
    assert written["reflection"] == {"finalScore": pytest.approx(progress), "outcome": outcome}

    closed = await data(client, token, CLOSE, input={"id": to_global_id("Cycle", cycle_id)})
    (graded,) = closed["closeCycle"]["summary"]["objectives"]
    assert graded["finalScore"] == pytest.approx(progress)
    # a missed objective is carried over by the default policy; an achieved one is not
    assert graded["outcome"] == ("ACHIEVED" if outcome == "ACHIEVED" else "CARRIED_OVER")
    db.expire_all()
    state = await db.scalar(select(Objective.state).where(Objective.id == objective_id))
    assert state is (ObjectiveState.ACHIEVED if outcome == "ACHIEVED" else ObjectiveState.MISSED)
    kept = await db.scalar(
        select(Reflection.outcome).where(Reflection.objective_id == objective_id)
    )
    assert kept is not None
    assert kept.value == graded["outcome"]
