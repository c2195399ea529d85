"""Every mutation that can move a number, in generated sequences through the domain
services: after EACH step the worker's real `recalculate_scores` job runs, and every
score, progress, status and current value then equals what a full recalculation
gives (computed in a transaction that is rolled back, so the next step starts from
what the incremental path left)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain.auth.tokens import Principal, system_principal
from okrgraph.domain.cycles.service import update_cycle
from okrgraph.domain.db import set_tenant, tenant_session
from okrgraph.domain.errors import DomainError
from okrgraph.domain.key_results.definitions import create_key_result, update_key_result
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.kpis.catalog import (
    KpiChanges,
    archive_kpi,
    create_kpi,
    link_kpi,
    unlink_kpi,
    update_kpi,
)
from okrgraph.domain.kpis.service import MeasurementInput, record_kpi_measurements
from okrgraph.domain.models.enums import (
    Direction,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    Level,
    ObjectiveDriver,
    ObjectiveState,
)
from okrgraph.domain.objectives.service import (
    align_objective,
    create_objective,
    remove_alignment,
    update_alignment,
    update_objective,
)
from okrgraph.domain.scores.service import full_recalculation
from okrgraph.worker.jobs.scores import recalculate_scores
from tests.worker.conftest import Committed
from tests.worker.graphs import GraphBuilder

# A long cycle: expected progress moves by ~3e-10 a second, so no status flips
# between the job's clock and the full pass's.
LONG = (date(2000, 1, 1), date(2099, 12, 31))

weights = st.sampled_from([0.0, 0.5, 1.0, 2.0])
index = st.integers(0, 30)
value = st.sampled_from([-10.0, 0.0, 1.0, 25.0, 50.0, 85.0, 100.0, 150.0])

steps = st.one_of(
    st.tuples(
        st.just("check_in"), index, value, st.sampled_from([None, 2, 8]), st.sampled_from([0, 3])
    ),
    st.tuples(st.just("correct"), index, value),
    st.tuples(st.just("measure"), index, value),
    st.tuples(st.just("align"), index, index, st.booleans(), weights, st.booleans()),
    st.tuples(st.just("update_alignment"), index, weights | st.none(), st.booleans() | st.none()),
    st.tuples(st.just("remove_alignment"), index),
    st.tuples(
        st.just("update_objective"),
        index,
        st.sampled_from([None, ObjectiveState.ACTIVE, ObjectiveState.CANCELLED]),
        st.sampled_from([None, *ObjectiveDriver]),
    ),
    st.tuples(st.just("create_objective"), st.sampled_from(ObjectiveDriver)),
    st.tuples(
        st.just("create_key_result"),
        index,
        st.sampled_from(KeyResultKind),
        weights,
        st.sampled_from(KeyResultDriver),
        st.booleans(),
    ),
    st.tuples(
        st.just("update_key_result"),
        index,
        st.sampled_from([None, 60.0, 90.0, 200.0]),
        weights | st.none(),
        st.booleans() | st.none(),
        st.sampled_from([None, *KeyResultDriver]),
        st.sampled_from([None, KeyResultState.ACTIVE, KeyResultState.CANCELLED]),
    ),
    st.tuples(st.just("link_kpi"), index, index),
    st.tuples(st.just("unlink_kpi"), index),
    st.tuples(st.just("update_kpi"), index, st.sampled_from([None, 20.0, 60.0])),
    st.tuples(st.just("archive_kpi"), index),
    st.tuples(st.just("update_cycle"), st.sampled_from([date(2030, 1, 1), date(2099, 12, 31)])),
)


async def ids(session: AsyncSession, table: str) -> list[uuid.UUID]:
    rows = await session.execute(text(f"SELECT id FROM {table} ORDER BY created_at, id"))
    return [r[0] for r in rows]


def pick(items: list[uuid.UUID], i: int) -> uuid.UUID | None:
    return items[i % len(items)] if items else None


async def apply(
    session: AsyncSession, p: Principal, cycle_id: uuid.UUID, step: tuple[Any, ...]
) -> None:
    """One mutation through its domain service (as an admin)."""
    objectives, krs = await ids(session, "objectives"), await ids(session, "key_results")
    kpis, alignments = await ids(session, "kpis"), await ids(session, "alignments")
    name, *args = step
    if name == "check_in" and (kr := pick(krs, args[0])):
        await record_check_in(
            session,
            principal=system_principal(p.org_id),
            key_result_id=kr,
            value=args[1],
            confidence=args[2],
            effective_at=_now() - timedelta(days=args[3]),  # 3: backdated
        )
    elif name == "correct" and (kr := pick(krs, args[0])):
        latest = await session.scalar(
            text(
                "SELECT c.id FROM check_ins c WHERE c.key_result_id = :k AND NOT EXISTS "
                "(SELECT 1 FROM check_ins s WHERE s.supersedes_id = c.id) "
                "ORDER BY c.recorded_at DESC, c.id LIMIT 1"
            ),
            {"k": kr},
        )
        if latest is not None:
            await record_check_in(
                session,
                principal=system_principal(p.org_id),
                key_result_id=kr,
                value=args[1],
                supersedes_id=latest,
            )
    elif name == "measure" and (kpi := pick(kpis, args[0])):
        await record_kpi_measurements(
            session,
            principal=system_principal(p.org_id),
            kpi_id=kpi,
            items=[MeasurementInput(args[1], _now(), "gen", uuid.uuid4().hex)],
        )
    elif name == "align" and objectives:
        child, other, to_kr, w, contributes = args
        child_id = pick(objectives, child)
        assert child_id is not None
        if to_kr and krs:
            await align_objective(
                session,
                p,
                child_id=child_id,
                parent_key_result_id=pick(krs, other),
                weight_value=w,
                contributes=contributes,
            )
        else:
            await align_objective(
                session,
                p,
                child_id=child_id,
                parent_objective_id=pick(objectives, other),
                weight_value=w,
                contributes=contributes,
            )
    elif name == "update_alignment" and (a := pick(alignments, args[0])):
        await update_alignment(session, p, a, weight_value=args[1], contributes=args[2])
    elif name == "remove_alignment" and (a := pick(alignments, args[0])):
        await remove_alignment(session, p, a)
    elif name == "update_objective" and (o := pick(objectives, args[0])):
        await update_objective(session, p, o, state=args[1], progress_driver=args[2])
    elif name == "create_objective":
        await create_objective(
            session, p, cycle_id=cycle_id, title="o", level=Level.COMPANY, progress_driver=args[0]
        )
    elif name == "create_key_result" and (o := pick(objectives, args[0])):
        kind, w, driver, stretch = args[1:]
        start, target = (100.0, 0.0) if kind is KeyResultKind.DECREASE else (0.0, 85.0)
        await create_key_result(
            session,
            p,
            objective_id=o,
            title="kr",
            kind=kind,
            start=start,
            target=target,
            weight_value=w,
            progress_driver=driver,
            stretch=stretch,
        )
    elif name == "update_key_result" and (kr := pick(krs, args[0])):
        target, w, stretch, driver, state = args[1:]
        await update_key_result(
            session,
            p,
            kr,
            target=target,
            weight_value=w,
            stretch=stretch,
            progress_driver=driver,
            state=state,
        )
    elif name == "link_kpi" and (kpi := pick(kpis, args[0])) and (kr := pick(krs, args[1])):
        await link_kpi(session, p, kpi, key_result_id=kr)
    elif name == "unlink_kpi" and (kr := pick(krs, args[0])):
        kpi_id = await session.scalar(
            text("SELECT kpi_id FROM kpi_links WHERE key_result_id = :k"), {"k": kr}
        )
        if kpi_id is not None:
            await unlink_kpi(session, p, kpi_id, key_result_id=kr)
    elif name == "update_kpi" and (kpi := pick(kpis, args[0])):
        await update_kpi(
            session,
            p,
            kpi,
            KpiChanges(warning_threshold=args[1], clear_warning_threshold=args[1] is None),
        )
    elif name == "archive_kpi" and (kpi := pick(kpis, args[0])):
        await archive_kpi(session, p, kpi)
    elif name == "update_cycle":
        await update_cycle(session, p, cycle_id, ends_on=args[0])


def _now() -> datetime:
    return datetime.now(UTC)


SNAPSHOT = """
SELECT 'K' AS kind, id, score AS v, status::text AS s, current_value AS cur, confidence AS conf
FROM key_results
UNION ALL SELECT 'O', id, progress, status::text, NULL, NULL FROM objectives
UNION ALL SELECT 'P', id, latest_value, health::text, NULL, NULL FROM kpis
"""


async def snapshot(session: AsyncSession) -> dict[uuid.UUID, tuple[Any, ...]]:
    rows = await session.execute(text(SNAPSHOT))
    return {
        r.id: (r.kind, None if r.v is None else round(r.v, 9), r.s, r.cur, r.conf) for r in rows
    }


async def setup(sm: async_sessionmaker[AsyncSession]) -> tuple[uuid.UUID, uuid.UUID]:
    org = uuid.uuid4()
    async with tenant_session(sm, org) as session:
        g = await GraphBuilder.create(session, org_id=org)
        cycle = await g.cycle(starts_on=LONG[0], ends_on=LONG[1])
        p = system_principal(org)
        objectives = []
        for driver in (ObjectiveDriver.BOTH, ObjectiveDriver.CHILDREN, ObjectiveDriver.KEY_RESULTS):
            o = await create_objective(
                session, p, cycle_id=cycle, title="o", level=Level.COMPANY, progress_driver=driver
            )
            objectives.append(o.id)
        await align_objective(session, p, child_id=objectives[1], parent_objective_id=objectives[0])
        await align_objective(
            session, p, child_id=objectives[2], parent_objective_id=objectives[1], weight_value=2
        )
        kr = await create_key_result(
            session,
            p,
            objective_id=objectives[2],
            title="k",
            kind=KeyResultKind.INCREASE,
            target=85,
        )
        kpi = await create_kpi(session, p, name="k", direction=Direction.HIGHER_IS_BETTER)
        await record_check_in(
            session, principal=system_principal(org), key_result_id=kr.id, value=40
        )
        await record_kpi_measurements(
            session,
            principal=system_principal(org),
            kpi_id=kpi.id,
            items=[MeasurementInput(30, _now(), "gen", "x")],
        )
        await full_recalculation(session, org)
    return org, cycle


async def full_pass(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> dict[Any, Any]:
    """What a full recalculation gives now, without keeping it."""
    async with sm() as session, session.begin():
        await set_tenant(session, org)
        await full_recalculation(session, org)
        out = await snapshot(session)
        await session.rollback()
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(steps, min_size=1, max_size=12))
async def test_the_incremental_path_equals_a_full_recalculation_after_every_mutation(
    committed: Committed, sequence: list[tuple[Any, ...]]
) -> None:
    sm = committed.sessionmaker
    org, cycle = await setup(sm)
    ctx = {"sessionmaker": sm}
    for n, step in enumerate(sequence):
        try:
            async with tenant_session(sm, org) as session:
                await apply(session, system_principal(org), cycle, step)
        except DomainError:
            continue  # refused: nothing written
        await recalculate_scores(ctx, str(org))
        async with tenant_session(sm, org) as session:
            incremental = await snapshot(session)
        full = await full_pass(sm, org)
        differ = {
            k: (incremental.get(k), full.get(k))
            for k in incremental.keys() | full.keys()
            if incremental.get(k) != full.get(k)
        }
        assert not differ, f"after step {n} {step} of {sequence}: {differ}"
