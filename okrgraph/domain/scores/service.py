"""The score roll-up (DESIGN.md sections 3 and 4), set-based, bottom-up.

`recalculate` takes what changed (key results and/or objectives), finds every
ancestor through key results -> objectives -> contributing alignments (one
recursive CTE), and recomputes level by level (rollup.py: one UPDATE per level
and kind, never a statement per row, only changed values written). Frozen items
(final score set, or cycle CLOSED) never change. `full_recalculation` runs the
same statements over every node of the organisation, after re-deriving current
values from the logs; pending_events.py processes the outbox's recalculation
events. Callers run inside one tenant-scoped transaction; nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.kpis.service import refresh_kpis, sync_kpi_key_results
from okrgraph.domain.messages import ScoreChange
from okrgraph.domain.outbox.service import consume_all_pending
from okrgraph.domain.scores import sql
from okrgraph.domain.scores.full_pass import roll_up_all
from okrgraph.domain.scores.queries import CyclePace, cycle_pace, levels_above
from okrgraph.domain.scores.rollup import RecalcResult, roll_up

FULL_PASS_TIMEOUT_S = 280  # under the worker's job_timeout (300 s)

# Current value, confidence and last check-in of the check-in driven KRs named
# (:ids), from the log (the full pass folds it into its leaves' statement,
# full_pass.py). One statement per use, never "(:all OR k.id = ANY(:ids))": a
# generic plan of that (the incremental path forces them, PostgreSQL may pick one
# after five runs) cannot look the ids up, and read every key result of the
# organisation (issue 11: 262 ms at 300k KRs, 0.37 ms custom).
# tests/domain/test_incremental_plans.py holds the incremental path to it.
_NAMED = "AND k.id = ANY(CAST(:ids AS uuid[]))"
_REFRESH_FROM_CHECK_INS = f"""
WITH t AS (
    SELECT k.id, k.xmin AS version FROM key_results k
    JOIN objectives o ON o.org_id = k.org_id AND o.id = k.objective_id
    WHERE k.org_id = CAST(:org AS uuid) AND k.progress_driver = 'CHECK_INS'
      AND k.final_score IS NULL AND o.cycle_id <> ALL(CAST(:closed AS uuid[])) {_NAMED}
),
{sql.CHECK_IN_LOG}
UPDATE key_results k
SET current_value = latest.value, confidence = latest.confidence, last_check_in_at = last.at
FROM latest JOIN last ON last.id = latest.id JOIN t ON t.id = latest.id
WHERE k.org_id = CAST(:org AS uuid) AND k.id = latest.id
  AND k.xmin = t.version  -- else a check-in committed meanwhile and wrote them itself
  AND (k.current_value IS DISTINCT FROM latest.value
       OR k.confidence IS DISTINCT FROM latest.confidence
       OR k.last_check_in_at IS DISTINCT FROM last.at)
"""

_SETTINGS = (
    "SELECT set_config('plan_cache_mode', :plans, true), set_config('enable_seqscan', :seq, true)"
)


async def recalculate(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    key_result_ids: Collection[uuid.UUID] = (),
    objective_ids: Collection[uuid.UUID] = (),
    now: datetime | None = None,
    pace: CyclePace | None = None,
) -> RecalcResult:
    """Recompute the given nodes and every ancestor, bottom-up."""
    now = now or clock.now()
    if not key_result_ids and not objective_ids:
        return RecalcResult()
    # A few ids, again and again: PostgreSQL's custom plan for these statements
    # costs 3-4 ms each to make, its cached generic plan nothing (a leaf's four
    # levels on 133k nodes: 17-20 ms -> 6 ms in a fresh connection). The full pass,
    # with 100k ids, keeps custom plans sized to its lists.
    # Every read here is a lookup by key, and a generic plan is kept for the
    # connection's life: one made while score_history was nearly empty (a new
    # deployment) read the whole history per changed row by a sequential scan
    # ever after. Without sequential scans the plan takes the index whatever the
    # table's size when it was made.
    await session.execute(text(_SETTINGS), {"plans": "force_generic_plan", "seq": "off"})
    levels = await levels_above(session, org_id, key_result_ids, objective_ids)
    result = await roll_up(session, org_id, levels.levels, now, pace)
    await session.execute(text(_SETTINGS), {"plans": "auto", "seq": "on"})
    return result


async def full_recalculation(
    session: AsyncSession, org_id: uuid.UUID, *, now: datetime | None = None
) -> RecalcResult:
    """Everything of the organisation, from the check-in and measurement logs up."""
    now = now or clock.now()
    await lock_scores(session, org_id)
    # A big organisation's pass writes 100k+ rows per statement: more than the
    # app's per-statement timeout allows; the job's own timeout still bounds it.
    # Restored afterwards: a close runs this pass inside a request's transaction.
    prior = (await session.execute(text("SHOW statement_timeout"))).scalar_one()
    prior_mem = (await session.execute(text("SHOW work_mem"))).scalar_one()
    await session.execute(text(f"SET LOCAL statement_timeout = '{FULL_PASS_TIMEOUT_S}s'"))
    await session.execute(text("SET LOCAL work_mem = '64MB'"))  # sorts of whole logs
    # Before the pass, so that it covers them: an incremental job must not find
    # them pending after a full pass published the numbers that include them.
    consumed = await consume_all_pending(session, org_id, now)
    pace = await cycle_pace(session, org_id, now)
    await refresh_kpis(session, org_id, None)
    await sync_kpi_key_results(session, org_id, None, pace.closed_ids)
    result = await roll_up_all(session, org_id, now, pace)
    result.changes[:0] = written_changes(consumed.written)
    result.events, result.through = len(consumed.event_ids), consumed.through
    await session.execute(
        text("SELECT set_config('statement_timeout', :t, true), set_config('work_mem', :m, true)"),
        {"t": prior, "m": prior_mem},
    )
    return result


def written_changes(records: list[object]) -> list[ScoreChange]:
    """The changes consumed events wrote themselves (requests.py), to announce."""
    return [c for c in map(ScoreChange.from_json, records) if c is not None]


async def sync_kpis(
    session: AsyncSession, org_id: uuid.UUID, *, now: datetime | None = None
) -> RecalcResult:
    """All KPIs' latest values and health, into the KRs that follow them, rolled up."""
    now = now or clock.now()
    await lock_scores(session, org_id)
    pace = await cycle_pace(session, org_id, now)
    await refresh_kpis(session, org_id, None)
    changed = await sync_kpi_key_results(session, org_id, None, pace.closed_ids)
    return await recalculate(session, org_id, key_result_ids=changed, now=now, pace=pace)


def scores_lock_key(org_id: uuid.UUID) -> str:
    """The advisory lock key that serialises an organisation's roll-ups (lock_scores;
    the close job holds it at session level across its recalculation and close)."""
    return f"okr.scores:{org_id}"


async def lock_scores(session: AsyncSession, org_id: uuid.UUID, *, wait: bool = True) -> bool:
    """Serialise the organisation's roll-ups until the transaction ends.

    Two roll-ups of one organisation at once could each compute a parent from
    a snapshot the other is changing; with this lock the second one starts
    its statements after the first committed, and reads its results. With
    `wait=False`, returns False instead of waiting when the lock is taken.
    """
    # (JIT is off for every app connection, domain/db.py: it cost ~0.8 s a roll-up.)
    fn = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = await session.scalar(
        text(f"SELECT {fn}(hashtextextended(:key, 0))::text"), {"key": scores_lock_key(org_id)}
    )
    return wait or got == "true"


async def refresh_key_result_values(
    session: AsyncSession,
    org_id: uuid.UUID,
    key_result_ids: Collection[uuid.UUID],
    pace: CyclePace,
) -> None:
    """Re-derive current value and confidence of the named check-in driven KRs from
    their log."""
    params = {"org": org_id, "closed": pace.closed_ids, "ids": list(key_result_ids)}
    await session.execute(text(_REFRESH_FROM_CHECK_INS), params)
