"""OKR quality checks appear as warnings on objectives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models.enums import KeyResultKind, Level
from okrgraph.domain.objectives.quality import QualityFacts, warnings
from okrgraph.domain.seed import SeedResult
from okrgraph.schema.node import to_global_id
from tests.factories import make_cycle, make_key_result, make_objective, make_person
from tests.gql import data

QUERY = "query($id: ID!) { node(id: $id) { ... on Objective { warnings { code } } } }"


def codes(facts: QualityFacts) -> set[str]:
    return {w.code for w in warnings(facts)}


def test_rules() -> None:
    good = QualityFacts(
        "TEAM",
        owner_objectives=3,
        key_results=3,
        without_target=0,
        without_owner=0,
        silent=0,
        parents=1,
    )
    assert codes(good) == set()
    assert codes(QualityFacts("TEAM", 6, 1, 1, 1, 1, 0)) == {
        "TOO_MANY_OBJECTIVES",
        "TOO_FEW_KEY_RESULTS",
        "KEY_RESULT_WITHOUT_TARGET",
        "KEY_RESULT_WITHOUT_OWNER",
        "STALE_KEY_RESULT",
        "NOT_ALIGNED",
    }
    assert codes(QualityFacts("COMPANY", 5, 6, 0, 0, 0, 0)) == {"TOO_MANY_KEY_RESULTS"}


async def test_warnings_from_the_database(
    client: httpx.AsyncClient, demo: SeedResult, db: AsyncSession
) -> None:
    person = await make_person(db, demo.org_id)
    cycle = await make_cycle(db, demo.org_id)
    objectives = [
        await make_objective(
            db,
            demo.org_id,
            cycle_id=cycle.id,
            level=Level.INDIVIDUAL,
            owner_person_id=person.id,
            owner_team_id=None,
        )
        for _ in range(6)
    ]
    old = datetime.now(UTC) - timedelta(days=30)
    await make_key_result(
        db,
        demo.org_id,
        objective_id=objectives[0].id,
        kind=KeyResultKind.ABOVE,
        target_value=None,
        owner_person_id=None,
        created_at=old,
    )
    result = await data(
        client, demo.admin_token, QUERY, id=to_global_id("Objective", objectives[0].id)
    )
    assert {w["code"] for w in result["node"]["warnings"]} == {
        "TOO_MANY_OBJECTIVES",
        "TOO_FEW_KEY_RESULTS",
        "KEY_RESULT_WITHOUT_TARGET",
        "KEY_RESULT_WITHOUT_OWNER",
        "STALE_KEY_RESULT",
        "NOT_ALIGNED",
    }
