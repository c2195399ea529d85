"""Property: on random graphs after random check-ins and measurements, the incremental
path, the full recalculation and the row-by-row Python reference give the same numbers."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.errors import DomainError
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.kpis.service import MeasurementInput, record_kpi_measurements
from okrgraph.domain.models import Kpi, KpiLink
from okrgraph.domain.models.enums import (
    CycleState,
    Direction,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    ObjectiveDriver,
    ObjectiveState,
)
from okrgraph.domain.scores.pending_events import process_pending_events
from okrgraph.domain.scores.service import full_recalculation
from tests.domain.score_model import model
from tests.worker.graphs import MIDWAY, GraphBuilder

END = MIDWAY + timedelta(hours=1)
weights = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])


@dataclass
class KrSpec:
    kind: KeyResultKind
    driver: KeyResultDriver
    weight: float
    stretch: bool
    cancelled: bool
    frozen: bool  # a final score (0.9) unlike its stored score (0.2)


@dataclass
class ObjSpec:
    driver: ObjectiveDriver
    cancelled: bool
    frozen: bool  # in a closed cycle, final score 0.42 unlike its stored progress 0.17
    krs: list[KrSpec]
    cycle: CycleState  # ACTIVE, GRADING or PLANNING (frozen ones: CLOSED)


kr_spec = st.builds(
    KrSpec,
    st.sampled_from(KeyResultKind),
    st.sampled_from(
        [KeyResultDriver.CHECK_INS] * 3 + [KeyResultDriver.KPI, KeyResultDriver.CHILDREN]
    ),
    weights,
    st.booleans(),
    st.integers(0, 9).map(lambda i: i == 0),
    st.integers(0, 9).map(lambda i: i == 0),
)
obj_spec = st.builds(
    ObjSpec,
    st.sampled_from(ObjectiveDriver),
    st.integers(0, 9).map(lambda i: i == 0),
    st.integers(0, 9).map(lambda i: i == 0),
    st.lists(kr_spec, max_size=3),
    st.sampled_from([CycleState.ACTIVE] * 3 + [CycleState.GRADING, CycleState.PLANNING]),
)
# Values a check-in or measurement may carry: the documented bounds (+-1e15), the
# usual range, and a few beyond the bounds, which must be refused.
BOUND = 1e15
values = st.one_of(
    *[st.floats(-50, 150, allow_nan=False)] * 4,
    st.floats(-BOUND, BOUND, allow_nan=False),
    st.sampled_from([-BOUND, BOUND, 0.0, 1.0, 100.0]),
    st.sampled_from([BOUND * 1.0000001, -BOUND * 2, float("inf"), float("nan")]),
)
ZONES = ["UTC", "Pacific/Kiritimati", "America/Los_Angeles", "Europe/Berlin", "Asia/Kathmandu"]


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    objs = draw(st.lists(obj_spec, min_size=1, max_size=7))
    edges = []
    for child in range(1, len(objs)):
        for parent in draw(st.sets(st.integers(0, child - 1), max_size=4)):
            to_kr = draw(st.integers(0, len(objs[parent].krs))) if objs[parent].krs else 0
            edges.append((child, parent, to_kr, draw(weights), draw(st.integers(0, 4)) > 0))
    steps = draw(
        st.lists(
            st.one_of(
                st.tuples(
                    st.just("check_in"),
                    st.integers(0, 50),
                    values,
                    st.integers(0, 10) | st.none(),
                    st.integers(0, 3),
                    st.integers(0, 4).map(bool),  # mostly at a key result that takes check-ins
                ),
                st.tuples(st.just("measure"), values),
                st.just(("process",)),
            ),
            max_size=25,
        )
    )
    return {"objs": objs, "edges": edges, "steps": steps, "zone": draw(st.sampled_from(ZONES))}


async def build(db: AsyncSession, sc: dict[str, Any]) -> tuple[GraphBuilder, list[Any], Any]:
    g = await GraphBuilder.create(db, timezone=sc["zone"])
    closed = await g.cycle(state=CycleState.CLOSED)
    cycles = {
        CycleState.ACTIVE: g.cycle_id,
        CycleState.GRADING: await g.cycle(state=CycleState.GRADING),
        CycleState.PLANNING: await g.cycle(state=CycleState.PLANNING),
    }
    kpi = Kpi(org_id=g.org_id, id=uuid.uuid4(), name="kpi", direction=Direction.HIGHER_IS_BETTER)
    db.add(kpi)
    await db.flush()
    obj_ids, krs = [], []
    for spec in sc["objs"]:
        oid = await g.objective(
            spec.driver,
            state=ObjectiveState.CANCELLED if spec.cancelled else ObjectiveState.ACTIVE,
            cycle_id=closed if spec.frozen else cycles[spec.cycle],
            final_score=0.42 if spec.frozen else None,
            progress=0.17 if spec.frozen else 0.0,
        )
        ids = []
        for k in spec.krs:
            target = 1.0 if k.kind is KeyResultKind.MILESTONE else 100.0
            start = 100.0 if k.kind is KeyResultKind.DECREASE else 0.0
            if k.kind is KeyResultKind.DECREASE:
                target = 0.0
            kid = await g.kr(
                oid,
                k.kind,
                start=start,
                target=target,
                weight=k.weight,
                driver=k.driver,
                stretch=k.stretch,
                state=KeyResultState.CANCELLED if k.cancelled else KeyResultState.ACTIVE,
                final_score=0.9 if k.frozen else None,
                score=0.2 if k.frozen else 0.0,
            )
            if k.driver is KeyResultDriver.KPI:
                db.add(KpiLink(org_id=g.org_id, kpi_id=kpi.id, key_result_id=kid))
            ids.append(kid)
            open_ = not (spec.frozen or k.frozen or k.cancelled)
            krs.append((kid, open_ and k.driver is KeyResultDriver.CHECK_INS))
        obj_ids.append((oid, ids))
    for child, parent, to_kr, weight, contributes in sc["edges"]:
        parent_oid, parent_krs = obj_ids[parent]
        if to_kr:
            await g.align(
                obj_ids[child][0],
                parent_kr=parent_krs[to_kr - 1],
                weight=weight,
                contributes=contributes,
            )
        else:
            await g.align(
                obj_ids[child][0],
                parent_objective=parent_oid,
                weight=weight,
                contributes=contributes,
            )
    await db.flush()
    return g, krs, kpi


async def snapshot(db: AsyncSession, org: uuid.UUID) -> dict[uuid.UUID, tuple[float, str]]:
    rows = await db.execute(
        text(
            "SELECT id, score AS v, status FROM key_results WHERE org_id = :o "
            "UNION ALL SELECT id, progress, status FROM objectives WHERE org_id = :o"
        ),
        {"o": org},
    )
    return {r.id: (r.v, r.status) for r in rows}


def assert_same(
    a: dict[uuid.UUID, tuple[float, str]], b: dict[uuid.UUID, tuple[float, str]]
) -> None:
    assert a.keys() == b.keys()
    for key, (value, status) in a.items():
        assert abs(value - b[key][0]) < 1e-9, key
        assert status == b[key][1], key


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(scenarios())
async def test_incremental_full_and_reference_agree(db: AsyncSession, sc: dict[str, Any]) -> None:
    async with db.begin_nested() as savepoint:
        g, krs, kpi = await build(db, sc)
        # A consistent start (what creating the nodes leaves once rolled up), then
        # only the incremental path keeps it so.
        await full_recalculation(db, g.org_id, now=END)
        accepted = refused = 0
        for i, step in enumerate(sc["steps"]):
            now = MIDWAY + timedelta(seconds=i)
            if step[0] == "process":
                await process_pending_events(db, g.org_id, now=END)
            elif step[0] == "measure":
                item = MeasurementInput(step[1], now, "prop", f"m{i}")
                try:
                    await record_kpi_measurements(
                        db,
                        principal=system_principal(g.org_id),
                        kpi_id=kpi.id,
                        items=[item],
                        now=now,
                    )
                except DomainError:
                    assert not _in_bounds(step[1]), step
                else:
                    assert _in_bounds(step[1]), step
            elif krs:
                _, which, value, confidence, back, aim_open = step
                targets = [kr for kr in krs if kr[1]] if aim_open else []
                kr_id, open_ = (targets or krs)[which % len(targets or krs)]
                try:
                    await record_check_in(
                        db,
                        principal=system_principal(g.org_id),
                        key_result_id=kr_id,
                        value=value,
                        confidence=confidence,
                        effective_at=now - timedelta(days=back),
                        now=now,
                    )
                except DomainError:
                    # cancelled, frozen, not check-in driven, or out of bounds: nothing written
                    assert not (open_ and _in_bounds(value)), step
                    refused += 1
                else:
                    assert open_, step
                    assert _in_bounds(value), step
                    accepted += 1
        await process_pending_events(db, g.org_id, now=END)
        incremental = await snapshot(db, g.org_id)
        reference = await model(db, g.org_id, END)

        result = await full_recalculation(db, g.org_id, now=END)
        full = await snapshot(db, g.org_id)
        assert_same(incremental, reference)
        assert_same(full, incremental)
        assert all(abs(c.value - c.previous_value) < 1e-9 for c in result.changes)
        await savepoint.rollback()
    _landed.append((accepted, refused))  # per step predicted above; here, how many


def _in_bounds(value: float) -> bool:
    return math.isfinite(value) and abs(value) <= BOUND


_landed: list[tuple[int, int]] = []


def test_many_check_ins_of_the_property_landed() -> None:
    """Runs after the property (file order). Each step's acceptance was predicted
    there (every check-in at a key result that takes them, within bounds, landed);
    here: such check-ins were a good share of all, so the property did exercise the
    check-in path and an always-refusing record_check_in cannot pass it."""
    if not _landed:
        pytest.skip("the property did not run in this session")
    accepted = sum(a for a, _ in _landed)
    refused = sum(r for _, r in _landed)
    # Every predicted acceptance was checked step by step; this only makes sure the
    # draws exercised the check-in path at all. A share (it was "10 and a quarter")
    # is a property of the random draws, and failed CI on one in a few runs.
    assert accepted >= 1, (accepted, refused)


async def test_a_backdated_check_in_recorded_last_is_not_current(db: AsyncSession) -> None:
    """80 now, then 20 recorded a second later but effective a day earlier: the current
    value stays 80 (latest effective_at), through the check-in, a job and a full pass."""
    g = await GraphBuilder.create(db)
    oid = await g.objective()
    kid = await g.kr(oid)  # 0 -> 100
    for i, (value, back) in enumerate([(80.0, 0), (20.0, 1)]):
        now = MIDWAY + timedelta(seconds=i)
        await record_check_in(
            db,
            principal=system_principal(g.org_id),
            key_result_id=kid,
            value=value,
            effective_at=now - timedelta(days=back),
            now=now,
        )
    reference = await model(db, g.org_id, END)
    assert reference[kid][0] == pytest.approx(0.8)
    await process_pending_events(db, g.org_id, now=END)
    assert_same(await snapshot(db, g.org_id), reference)
    await full_recalculation(db, g.org_id, now=END)
    assert_same(await snapshot(db, g.org_id), reference)
