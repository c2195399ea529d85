"""An explanation's rule text never shows a client Python's None, nan or inf: every
rule path (each kind, each driver, frozen, objectives) with missing and non-finite
numbers, directly and through GraphQL."""

from __future__ import annotations

import itertools
import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.models import KeyResult
from okrgraph.domain.models.enums import KeyResultDriver, KeyResultKind, ObjectiveDriver, OrgRole
from okrgraph.schema.node import to_global_id
from okrgraph.schema.okrs.key_result_types import score_rule, shown
from tests.factories import make_alignment, make_key_result, make_objective, make_org, make_token
from tests.gql import data

PYTHON_WORDS = re.compile(r"\b(None|nan|inf|NaN|Infinity)\b", re.IGNORECASE)
NUMBERS = [None, 0.0, 40.0, 85.0, 1e15, -1e15, float("nan"), float("inf"), float("-inf")]


def test_shown_numbers() -> None:
    assert shown(None) == "(no value yet)"
    assert shown(85.0) == "85"
    assert shown(0.1) == "0.1"
    assert shown(1e15) == "1e+15"
    for odd in (float("nan"), float("inf"), float("-inf")):
        assert shown(odd) == "(not a finite number)"


@pytest.mark.parametrize("kind", list(KeyResultKind))
def test_every_key_result_rule_reads_without_python_values(kind: KeyResultKind) -> None:
    for current, start, target in itertools.product(NUMBERS, NUMBERS[:4], NUMBERS):
        kr = KeyResult(kind=kind, current_value=current, start_value=start, target_value=target)
        rule = score_rule(kr)
        assert not PYTHON_WORDS.search(rule), rule
        assert rule.startswith(kind.value)


EXPLAIN = """query($id: ID!) { node(id: $id) {
  ... on KeyResult { explanation { rule value } }
  ... on Objective { explanation { rule value } }
} }"""


async def test_rules_through_graphql(client: httpx.AsyncClient, db: AsyncSession) -> None:
    org = await make_org(db)
    _, token = await make_token(db, org.id, role=OrgRole.ADMIN, scopes=["read"])
    ids = []
    for driver in ObjectiveDriver:
        objective = await make_objective(db, org.id, progress_driver=driver)
        ids.append(to_global_id("Objective", objective.id))
        for kind in KeyResultKind:  # none checked in: current is missing
            kr = await make_key_result(db, org.id, objective_id=objective.id, kind=kind)
            ids.append(to_global_id("KeyResult", kr.id))
        target_less = await make_key_result(
            db, org.id, objective_id=objective.id, kind=KeyResultKind.ABOVE, target_value=None
        )
        ids.append(to_global_id("KeyResult", target_less.id))
    parent = await make_key_result(db, org.id, progress_driver=KeyResultDriver.CHILDREN)
    await make_alignment(db, org.id, parent_key_result_id=parent.id)
    frozen = await make_key_result(db, org.id, final_score=0.4)
    kpi_driven = await make_key_result(db, org.id, progress_driver=KeyResultDriver.KPI)
    ids += [to_global_id("KeyResult", k.id) for k in (parent, frozen, kpi_driven)]
    for node_id in ids:
        rule = (await data(client, token, EXPLAIN, id=node_id))["node"]["explanation"]["rule"]
        assert rule, node_id
        assert not PYTHON_WORDS.search(rule), rule
    rule = (await data(client, token, EXPLAIN, id=ids[1]))["node"]["explanation"]["rule"]
    assert "current (no value yet)" in rule
