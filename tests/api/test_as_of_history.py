"""`asOf` inside the history: a key result's score and its objective's progress as
recorded at or before the instant asked, at the boundaries too."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models.enums import OrgRole
from okrgraph.domain.scores.pending_events import process_pending_events
from okrgraph.schema.node import to_global_id
from tests.factories import make_cycle, make_key_result, make_objective, make_org, make_token
from tests.gql import data

QUERY = """query($kr: ID!, $o: ID!, $at: DateTime!) {
  kr: node(id: $kr) { ... on KeyResult { score(asOf: $at) } }
  o: node(id: $o) { ... on Objective { progress(asOf: $at) } }
}"""


async def test_as_of_answers_what_was_recorded_then(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    org = await make_org(db)
    _, token = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read"])
    cycle = await make_cycle(db, org.id)
    objective = await make_objective(db, org.id, cycle_id=cycle.id)
    # two KRs 0 -> 100 of weight 1: the objective's progress is half the first's score
    kr = await make_key_result(db, org.id, objective_id=objective.id)
    await make_key_result(db, org.id, objective_id=objective.id)
    now = clock.now()
    t1, t2 = now - timedelta(hours=3), now - timedelta(hours=1)
    for at, value in ((t1, 30.0), (t2, 60.0)):
        await record_check_in(
            db, principal=system_principal(org.id), key_result_id=kr.id, value=value, now=at
        )
        await process_pending_events(db, org.id, now=at)
    ids = {"kr": to_global_id("KeyResult", kr.id), "o": to_global_id("Objective", objective.id)}

    async def as_of(at: datetime) -> tuple[float, float]:
        d = await data(client, token, QUERY, at=at.isoformat(), **ids)
        return d["kr"]["score"], d["o"]["progress"]

    minute = timedelta(minutes=1)
    assert await as_of(t1 - minute) == (0.0, 0.0)  # before anything was recorded
    assert await as_of(t1) == pytest.approx((0.3, 0.15))  # at the instant: recorded then
    assert await as_of(t1 + minute) == pytest.approx((0.3, 0.15))
    assert await as_of(t2 - minute) == pytest.approx((0.3, 0.15))
    assert await as_of(t2 + minute) == pytest.approx((0.6, 0.3))
    assert await as_of(now + minute) == pytest.approx((0.6, 0.3))
