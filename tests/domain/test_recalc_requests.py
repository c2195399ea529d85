"""scores.requests is the one place that decides which recalculation a change asks for:
every column of every model a number depends on is classified there (a new column
fails this test until someone decides), and an edge names the node it feeds."""

from __future__ import annotations

import uuid

import pytest

from okrgraph.domain.models import Alignment, Base, Cycle, KeyResult, Objective
from okrgraph.domain.scores.requests import CYCLE, EFFECTS, FED, SELF, effects_of, targets


@pytest.mark.parametrize("model", list(EFFECTS), ids=lambda m: m.__name__)
def test_every_column_of_the_model_is_classified(model: type[Base]) -> None:
    columns = {c.key for c in model.__mapper__.column_attrs}
    assert set(EFFECTS[model][1]) == columns


def test_an_unclassified_column_is_an_error_not_a_silent_skip() -> None:
    with pytest.raises(KeyError):
        effects_of(KeyResult(), changed=["no_such_column"])


@pytest.mark.parametrize("column", ["contributes", "weight"])
@pytest.mark.parametrize("to_kr", [False, True])
def test_an_alignment_change_names_the_parent_it_feeds(column: str, to_kr: bool) -> None:
    child, parent = uuid.uuid4(), uuid.uuid4()
    edge = Alignment(
        child_objective_id=child,
        parent_objective_id=None if to_kr else parent,
        parent_key_result_id=parent if to_kr else None,
        contributes=False,  # switched off: the child no longer climbs to it
    )
    for effects in (effects_of(edge, changed=[column]), effects_of(edge, removed=True)):
        assert effects == {FED}
        named = targets(edge, effects)
        assert named["key_results" if to_kr else "objectives"] == [parent]
        assert child not in named["objectives"]


def test_what_moves_numbers_and_what_does_not() -> None:
    kr = KeyResult(id=uuid.uuid4())
    assert effects_of(kr, changed=["title", "unit", "owner_person_id"]) == set()
    for column in ("kind", "start_value", "target_value", "weight", "stretch", "state"):
        assert effects_of(kr, changed=[column]) == {SELF}
    assert effects_of(kr, changed=["progress_driver"]) == {SELF}
    objective = Objective(id=uuid.uuid4(), cycle_id=uuid.uuid4())
    assert effects_of(objective, created=True) == {SELF}  # a new objective's status by pace
    assert effects_of(objective, changed=["title", "owner_team_id"]) == set()
    cycle = Cycle(id=uuid.uuid4())
    assert effects_of(cycle, changed=["ends_on"]) == {CYCLE}
    assert targets(cycle, {CYCLE})["cycles"] == [cycle.id]
    assert effects_of(cycle, changed=["name"]) == set()
