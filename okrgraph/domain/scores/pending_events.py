"""Processing the recalculation events the outbox holds for an organisation:
claim a batch, roll up what it names, mark it processed; a batch that fails on
a row is split until the failing events are found and set aside.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.kpis.service import refresh_kpis, sync_kpi_key_results
from okrgraph.domain.outbox.service import (
    Claimed,
    claim_recalc_events,
    mark_failed,
    mark_processed,
)
from okrgraph.domain.scores.queries import CyclePace, cycle_pace, nodes_of_cycles
from okrgraph.domain.scores.rollup import RecalcResult
from okrgraph.domain.scores.service import (
    lock_scores,
    recalculate,
    refresh_key_result_values,
    written_changes,
)

log = logging.getLogger(__name__)

EVENT_BATCH = 5_000


async def process_pending_events(
    session: AsyncSession, org_id: uuid.UUID, *, now: datetime | None = None, wait: bool = True
) -> RecalcResult:
    """Claim the org's pending recalculation events, roll up what they name, mark them.

    Takes the organisation's roll-up lock first (`lock_scores`): two jobs of
    one organisation take turns. With `wait=False` it returns at once with
    `busy` set when another transaction holds the lock. Idempotent: a second
    run finds nothing to do.
    """
    now = now or clock.now()
    if not await lock_scores(session, org_id, wait=wait):
        return RecalcResult(busy=True)
    claimed = await claim_recalc_events(session, org_id, EVENT_BATCH)
    if not claimed.event_ids:
        return RecalcResult()
    pace = await cycle_pace(session, org_id, now)
    result = await _isolating(session, org_id, claimed.events, now, pace)
    result.events = len(claimed.event_ids)
    result.through = claimed.through
    return result


async def _isolating(
    session: AsyncSession,
    org_id: uuid.UUID,
    events: list[Claimed],
    now: datetime,
    pace: CyclePace,
) -> RecalcResult:
    """`_process` the events together in a savepoint; should a row make that fail,
    the two halves apart, down to the single events that fail, which are set aside
    (DESIGN.md section 4: one row that cannot be computed never stops the rest)."""
    batch = Claimed()
    for one in events:
        batch.add(one)
    try:
        async with session.begin_nested():
            return await _process(session, org_id, batch, now, pace)
    except DBAPIError as exc:
        if not _is_data_error(exc):
            raise
        if len(events) == 1:
            await _set_aside(session, org_id, events[0], now, exc)
            # What its service wrote was committed with it: still announced.
            return RecalcResult(changes=written_changes(events[0].written))
    middle = len(events) // 2
    result = await _isolating(session, org_id, events[:middle], now, pace)
    rest = await _isolating(session, org_id, events[middle:], now, pace)
    result.changes.extend(rest.changes)
    result.nodes += rest.nodes
    return result


async def _process(
    session: AsyncSession, org_id: uuid.UUID, claimed: Claimed, now: datetime, pace: CyclePace
) -> RecalcResult:
    """Refresh what the events name, roll it up, mark the events processed.

    Named key results re-derive their current value from their source as the full
    pass does (check-ins, or the linked KPI: a driver may just have changed); a
    named cycle names all its nodes.
    """
    krs, objectives = set(claimed.key_result_ids), set(claimed.objective_ids)
    if claimed.cycle_ids:
        in_cycles = await nodes_of_cycles(session, org_id, claimed.cycle_ids)
        krs |= in_cycles.key_result_ids
        objectives |= in_cycles.objective_ids
    if krs:
        await refresh_key_result_values(session, org_id, krs, pace)
        await sync_kpi_key_results(session, org_id, None, pace.closed_ids, key_result_ids=krs)
    if claimed.kpi_ids:
        await refresh_kpis(session, org_id, claimed.kpi_ids)
        krs.update(await sync_kpi_key_results(session, org_id, claimed.kpi_ids, pace.closed_ids))
    result = await recalculate(
        session, org_id, key_result_ids=krs, objective_ids=objectives, now=now, pace=pace
    )
    result.changes[:0] = written_changes(claimed.written)
    await mark_processed(session, org_id, claimed.event_ids, now)
    return result


def _is_data_error(exc: DBAPIError) -> bool:
    """An error of the rows (a value out of range, a broken rule), not of the connection:
    retrying the events one by one can tell which subject causes it."""
    return not exc.connection_invalidated and not isinstance(exc, OperationalError | InterfaceError)


async def _set_aside(
    session: AsyncSession, org_id: uuid.UUID, claimed: Claimed, now: datetime, exc: DBAPIError
) -> None:
    """Mark a failing event processed with its failure; one concise log line, no SQL."""
    subjects = sorted(
        [f"key result {i}" for i in claimed.key_result_ids]
        + [f"objective {i}" for i in claimed.objective_ids]
        + [f"KPI {i}" for i in claimed.kpi_ids]
    )
    cause = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    failure = f"{', '.join(subjects) or 'nothing'}: {cause}"
    for event_id in claimed.event_ids:
        await mark_failed(session, org_id, event_id, now, failure)
    log.error("roll-up of org %s set aside event %s (%s)", org_id, claimed.event_ids[0], failure)
