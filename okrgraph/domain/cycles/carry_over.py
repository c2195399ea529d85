"""Carrying a closing cycle's missed objectives over into the next cycle.

Each missed objective is copied with its unfinished key results (per
`CarryOverPolicy`), the alignments that still make sense from the next cycle,
and its links to KPIs that are not archived. The copies keep a
`carried_over_from_id` to what they continue.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import scoring
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.service import get_cycle
from okrgraph.domain.key_results.definitions import check_target
from okrgraph.domain.kpis.catalog import link_kpi
from okrgraph.domain.models import (
    Alignment,
    CheckIn,
    Cycle,
    KeyResult,
    Kpi,
    KpiLink,
    Objective,
)
from okrgraph.domain.models.enums import KeyResultDriver, ObjectiveState
from okrgraph.domain.scores.queries import org_timezone

DONE = 1.0 - 1e-9  # a key result at (about) 1.0 is finished and not carried over


class CarryOverPolicy(enum.Enum):
    CARRY_REMAINDER = "CARRY_REMAINDER"  # same start and target; current continues
    REBASELINE = "REBASELINE"  # starts at the old current value, same target
    CLOSE_AS_MISSED = "CLOSE_AS_MISSED"  # nothing carried over


@dataclass(frozen=True)
class CarriedOver:
    """The copies made, keyed by the id of the row each one continues."""

    objectives: dict[uuid.UUID, Objective]
    key_results: dict[uuid.UUID, KeyResult]


async def carry_over(
    session: AsyncSession,
    principal: Principal,
    graded: Sequence[Objective],
    key_results: Sequence[KeyResult],
    policy: CarryOverPolicy,
    cycle: Cycle,
    next_cycle: Cycle,
    now: datetime,
) -> CarriedOver:
    """Copy the MISSED among the graded objectives into `next_cycle` (none under
    CLOSE_AS_MISSED), with their unfinished key results, alignments and KPI links."""
    carried = [o for o in graded if o.state is ObjectiveState.MISSED]
    if policy is CarryOverPolicy.CLOSE_AS_MISSED:
        carried = []
    copies = await _copy_objectives(session, principal, carried, next_cycle)
    kr_copies = await _copy_key_results(
        session, principal, key_results, copies, policy, cycle, next_cycle, now
    )
    await _copy_alignments(session, principal, cycle, next_cycle, copies, kr_copies)
    await _copy_kpi_links(session, principal, copies, kr_copies)
    return CarriedOver(objectives=copies, key_results=kr_copies)


async def _copy_objectives(
    session: AsyncSession, principal: Principal, carried: Sequence[Objective], next_cycle: Cycle
) -> dict[uuid.UUID, Objective]:
    """Copies of valid rows, built directly: one batched INSERT rather than a service
    call each (a service call per copy made closing 1,000 objectives take ~40 s). The
    close's own audit entry and event carry what was copied."""
    copies = {
        old.id: Objective(
            org_id=principal.org_id,
            id=uuid.uuid4(),
            cycle_id=next_cycle.id,
            title=old.title,
            description=old.description,
            level=old.level,
            owner_team_id=old.owner_team_id,
            owner_person_id=old.owner_person_id,
            progress_driver=old.progress_driver,
            state=ObjectiveState.ACTIVE,
            carried_over_from_id=old.id,
        )
        for old in carried
    }
    session.add_all(copies.values())
    await session.flush()
    return copies


async def _copy_key_results(
    session: AsyncSession,
    principal: Principal,
    key_results: Sequence[KeyResult],
    copies: dict[uuid.UUID, Objective],
    policy: CarryOverPolicy,
    cycle: Cycle,
    next_cycle: Cycle,
    now: datetime,
) -> dict[uuid.UUID, KeyResult]:
    """Copies of the carried objectives' unfinished key results, per policy."""
    tz = await org_timezone(session, principal.org_id)
    next_start, _ = scoring.cycle_bounds(next_cycle.starts_on, next_cycle.ends_on, tz)
    kr_copies: dict[uuid.UUID, KeyResult] = {}
    check_ins: list[CheckIn] = []
    for old in key_results:
        if old.objective_id not in copies or old.score >= DONE:
            continue
        start = old.start_value
        if policy is CarryOverPolicy.REBASELINE and old.current_value is not None:
            start = old.current_value
        check_target(old.kind, start, old.target_value)  # a rebaselined start, too
        new = KeyResult(
            org_id=principal.org_id,
            id=uuid.uuid4(),
            objective_id=copies[old.objective_id].id,
            title=old.title,
            kind=old.kind,
            unit=old.unit,
            start_value=start,
            target_value=old.target_value,
            weight=old.weight,
            owner_person_id=old.owner_person_id,
            progress_driver=old.progress_driver,
            stretch=old.stretch,
            carried_over_from_id=old.id,
        )
        kr_copies[old.id] = new
        carry_value = (
            policy is CarryOverPolicy.CARRY_REMAINDER
            and old.current_value is not None
            and old.progress_driver is KeyResultDriver.CHECK_INS
        )
        if carry_value:
            # at the next cycle's start, unless that is still ahead (no future check-ins)
            effective_at = min(next_start, now)
            check_ins.append(
                CheckIn(
                    org_id=principal.org_id,
                    id=uuid.uuid4(),
                    key_result_id=new.id,
                    value=old.current_value,
                    confidence=old.confidence,
                    comment=f"Carried over from {cycle.name}",
                    author_person_id=principal.person_id,
                    effective_at=effective_at,
                    recorded_at=now,
                )
            )
            new.current_value, new.confidence = old.current_value, old.confidence
            new.last_check_in_at = now
    session.add_all(kr_copies.values())
    await session.flush()  # the key results before the check-ins that reference them
    session.add_all(check_ins)
    await session.flush()
    return kr_copies


async def _enclosing_cycles(session: AsyncSession, cycle: Cycle) -> set[uuid.UUID]:
    """The cycle and every cycle containing it (a quarter's year)."""
    out = {cycle.id}
    parent_id = cycle.parent_cycle_id
    while parent_id is not None and parent_id not in out:
        out.add(parent_id)
        parent_id = (await get_cycle(session, parent_id)).parent_cycle_id
    return out


async def _copy_alignments(
    session: AsyncSession,
    principal: Principal,
    cycle: Cycle,
    next_cycle: Cycle,
    copies: dict[uuid.UUID, Objective],
    kr_copies: dict[uuid.UUID, KeyResult],
) -> None:
    """A copy supports its parent's copy when the parent was carried over too, or the
    same parent when that lives in a cycle containing the next one; else nothing."""
    if not copies:
        return
    reachable = await _enclosing_cycles(session, next_cycle)
    edges = (
        await session.execute(
            select(Alignment, Objective.cycle_id)
            .join(
                KeyResult,
                KeyResult.id == Alignment.parent_key_result_id,
                isouter=True,
            )
            .join(
                Objective,
                Objective.id.in_([Alignment.parent_objective_id, KeyResult.objective_id]),
            )
            .where(Alignment.child_objective_id.in_(list(copies)))
            .order_by(Alignment.created_at, Alignment.id)
        )
    ).all()
    for edge, parent_cycle_id in edges:
        parent_objective_id, parent_kr_id = edge.parent_objective_id, edge.parent_key_result_id
        if parent_objective_id in copies:
            parent_objective_id = copies[parent_objective_id].id
        elif parent_kr_id in kr_copies:
            parent_kr_id = kr_copies[parent_kr_id].id
        elif parent_cycle_id == cycle.id or parent_cycle_id not in reachable:
            continue
        session.add(
            Alignment(
                org_id=principal.org_id,
                id=uuid.uuid4(),
                child_objective_id=copies[edge.child_objective_id].id,
                parent_objective_id=parent_objective_id,
                parent_key_result_id=parent_kr_id,
                weight=edge.weight,
                contributes=edge.contributes,
            )
        )
    await session.flush()


async def _copy_kpi_links(
    session: AsyncSession,
    principal: Principal,
    copies: dict[uuid.UUID, Objective],
    kr_copies: dict[uuid.UUID, KeyResult],
) -> None:
    """The copies follow the same (not archived) KPIs: a KPI-driven key result's value
    keeps coming from its KPI, and an objective keeps its health metrics."""
    if not copies:
        return
    links = (
        await session.execute(
            select(KpiLink)
            .join(Kpi, Kpi.id == KpiLink.kpi_id)
            .where(
                or_(
                    KpiLink.key_result_id.in_(list(kr_copies)),
                    KpiLink.objective_id.in_(list(copies)),
                ),
                Kpi.archived_at.is_(None),
            )
            .order_by(KpiLink.id)
        )
    ).scalars()
    for link in list(links):
        new_kr = kr_copies.get(link.key_result_id) if link.key_result_id else None
        new_objective = copies.get(link.objective_id) if link.objective_id else None
        await link_kpi(
            session,
            principal,
            link.kpi_id,
            key_result_id=new_kr.id if new_kr else None,
            objective_id=new_objective.id if new_objective else None,
        )
