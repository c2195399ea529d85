"""The full pass's climb (full_pass.py): each node is recomputed after all its children,
however long the longest path up from a leaf, and a loop in the alignments ends."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.models import KeyResult, Objective
from okrgraph.domain.models.enums import KeyResultDriver, ObjectiveDriver
from okrgraph.domain.outbox.service import SCORE_CHANGED
from okrgraph.domain.scores.service import full_recalculation
from tests.worker.graphs import MIDWAY, GraphBuilder


async def progress(db: AsyncSession, oid: uuid.UUID) -> float:
    return float(await db.scalar(select(Objective.progress).where(Objective.id == oid)) or 0.0)


async def test_a_parent_waits_for_its_longest_path(db: AsyncSession) -> None:
    """`top` reads `leaf` directly (level 2 by that edge) and through `mid` and the
    CHILDREN-driven key result `via` (level 4): computed at 2, it would read `mid`'s
    and `via`'s old 0 and get 1/3, not 1."""
    g = await GraphBuilder.create(db)
    top = await g.objective(ObjectiveDriver.CHILDREN)
    holder = await g.objective(ObjectiveDriver.KEY_RESULTS)
    via = await g.kr(holder, driver=KeyResultDriver.CHILDREN)
    mid = await g.objective(ObjectiveDriver.CHILDREN)
    leaf = await g.objective()
    done = await g.kr(leaf)
    await g.align(leaf, parent_objective=top)
    await g.align(leaf, parent_objective=mid)
    await g.align(mid, parent_kr=via)
    await g.align(holder, parent_objective=top)
    await g.align(mid, parent_objective=top)
    await record_check_in(
        db, principal=system_principal(g.org_id), key_result_id=done, value=100, now=MIDWAY
    )
    result = await full_recalculation(db, g.org_id, now=MIDWAY)
    assert await progress(db, leaf) == 1.0
    assert await progress(db, mid) == 1.0
    assert await db.scalar(select(KeyResult.score).where(KeyResult.id == via)) == 1.0
    assert await progress(db, holder) == 1.0
    assert await progress(db, top) == 1.0
    assert result.nodes == 6  # one leaf key result, 5 nodes with children
    # Run again: nothing left to change.
    assert (await full_recalculation(db, g.org_id, now=MIDWAY)).changes == []


@pytest.mark.parametrize("size", [2, 3])
async def test_a_loop_in_the_alignments_ends(db: AsyncSession, size: int) -> None:
    """Objectives aligned in a ring climb a round at a time until MAX_DEPTH, then
    stop: the pass completes (the ring's numbers are whatever its levels give)."""
    g = await GraphBuilder.create(db)
    ring = [await g.objective(ObjectiveDriver.BOTH) for _ in range(size)]
    for child, parent in zip(ring, ring[1:] + ring[:1], strict=True):
        await g.align(child, parent_objective=parent)
    kr = await g.kr(ring[0])
    await record_check_in(
        db, principal=system_principal(g.org_id), key_result_id=kr, value=50, now=MIDWAY
    )
    result = await full_recalculation(db, g.org_id, now=MIDWAY)
    assert result.nodes == 1 + size
    assert await progress(db, ring[0]) > 0.0  # its key result's term at least


async def test_the_pass_writes_time_ordered_ids(db: AsyncSession) -> None:
    """The pass's history rows and events (the objectives': the check-in wrote its key
    result's itself) have UUIDv7 ids (sql.NEW_ID) of the pass's wall-clock
    millisecond, so they append to their primary keys in order."""
    g = await GraphBuilder.create(db)
    parent = await g.objective(ObjectiveDriver.CHILDREN)
    child = await g.objective()
    kr = await g.kr(child)
    await g.align(child, parent_objective=parent)
    await record_check_in(
        db, principal=system_principal(g.org_id), key_result_id=kr, value=40, now=MIDWAY
    )
    before = time.time_ns() // 1_000_000
    await full_recalculation(db, g.org_id, now=MIDWAY)
    after = time.time_ns() // 1_000_000
    rows = await db.execute(
        text(
            "SELECT id FROM score_history WHERE subject_type = 'OBJECTIVE' UNION ALL "
            "SELECT id FROM outbox_events WHERE type = :t AND subject_type = 'OBJECTIVE'"
        ),
        {"t": SCORE_CHANGED},
    )
    ids = [i for (i,) in rows.all()]
    assert len(ids) == 4  # parent and child: a history row and an event each
    for i in ids:
        assert i.version == 7
        assert i.variant == uuid.RFC_4122
        assert before <= i.int >> 80 <= after
